/**
 * The one seam around xmpp.js: a client connection that is TLS-only (RFC 6120 §5),
 * verifies the certificate against the XMPP domain, prefers SCRAM over PLAIN, and only
 * reports itself ready once XEP-0198 stream management is settled.
 */
import { EventEmitter, once } from "node:events";
import { type Client, client } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import type { Logger } from "pino";
import type { XmppSettings } from "../config/index.ts";

/** XEP-0198 namespace. */
const NS_SM = "urn:xmpp:sm:3";

/** What a connection reports to its owner. */
export interface ConnectionEvents {
  /** The stream is authenticated, bound and (where offered) stream management enabled. */
  ready: [];
  /** The stream is gone; xmpp.js reconnects by itself. */
  down: [reason: string];
  stanza: [stanza: Element];
}

/** A TLS-protected, authenticated client stream that reconnects by itself. */
export interface Connection extends EventEmitter<ConnectionEvents> {
  /** True between `ready` and `down`. */
  readonly ready: boolean;
  send(stanza: Element): Promise<void>;
  /** Sends an iq and resolves with the result (rejects on error or timeout). */
  request(iq: Element, timeoutMs?: number): Promise<Element>;
  /** Connects; resolves at the first `ready`, rejects if the first attempt fails. */
  start(): Promise<void>;
  /** Closes the stream and stops reconnecting. */
  stop(): Promise<void>;
}

/** Which service URI to connect to: `XMPP_HOST`/`XMPP_PORT` override DNS SRV. */
export function serviceUri(s: XmppSettings): string {
  if (s.tls === "direct") return `xmpps://${s.host ?? s.domain}:${s.port ?? 5223}`;
  if (s.host !== undefined || s.port !== undefined) {
    return `xmpp://${s.host ?? s.domain}:${s.port ?? 5222}`;
  }
  return s.domain; // xmpp.js resolves _xmpp-client._tcp / _xmpps-client._tcp SRV records
}

/** Explains a TLS failure in words an operator can act on. */
export function describeConnectError(err: unknown, s: XmppSettings): string {
  const e = err as NodeJS.ErrnoException & { condition?: string };
  const code = e?.code ?? "";
  if (/CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS_CERT_ALTNAME/.test(code)) {
    return `TLS certificate of ${s.domain} is not trusted (${code}: ${e.message}); refusing to connect. Set XMPP_CA_FILE to the PEM of the CA that signed it`;
  }
  if (e?.condition === "not-authorized") {
    return `authentication failed for ${s.jid}: not-authorized — check JID_FROM_PASS`;
  }
  if (code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "ETIMEDOUT") {
    return `cannot reach the XMPP server of ${s.domain} (${code}); check XMPP_HOST / XMPP_PORT`;
  }
  return e?.message ?? String(err);
}

/** Creates (but does not start) a connection for `settings` with the given resource. */
export function createConnection(
  settings: XmppSettings,
  resource: string,
  log: Logger,
): Connection {
  const [local] = settings.jid.split("@");
  const xmpp: Client = client({
    service: serviceUri(settings),
    domain: settings.domain,
    resource,
    timeout: 10_000,
    credentials: async (authenticate, mechanisms, _fast, entity) => {
      // RFC 6120 §5.3.1: never authenticate over a stream that TLS does not protect,
      // whatever the server offers; xmpp.js alone would go on in plaintext.
      if (!entity.isSecure()) {
        throw new Error(
          `the server of ${settings.domain} did not offer STARTTLS; refusing to log in without TLS`,
        );
      }
      const mechanism = ["SCRAM-SHA-1", "PLAIN"].find((m) => mechanisms.includes(m));
      if (!mechanism) throw new Error(`no supported SASL mechanism among ${mechanisms.join(", ")}`);
      await authenticate({ username: local ?? "", password: settings.password }, mechanism);
    },
  });

  // Direct TLS: verify the certificate against the XMPP domain even when XMPP_HOST is
  // an address (XEP-0368 §2), and never accept less than TLS 1.2.
  const baseParams = xmpp.socketParameters.bind(xmpp);
  xmpp.socketParameters = (service) => {
    const params = baseParams(service);
    if (params && service.startsWith("xmpps:")) {
      return { ...params, servername: settings.domain, minVersion: "TLSv1.2" };
    }
    return params;
  };

  const events = new EventEmitter<ConnectionEvents>();
  let ready = false;
  let smOffered = false;
  let lastError: unknown;
  let reconnecting = true; // xmpp.js's reconnect module starts attached

  const becomeReady = () => {
    if (ready) return;
    ready = true;
    events.emit("ready");
  };

  xmpp.on("nonza", (el: Element) => {
    if (el.is("features", "http://etherx.jabber.org/streams") && el.getChild("sm", NS_SM)) {
      smOffered = true;
    }
    // XEP-0198 §3: sending before <enabled/> makes Prosody drop the stream.
    if ((el.is("enabled", NS_SM) || el.is("failed", NS_SM)) && xmpp.status === "online")
      becomeReady();
  });
  xmpp.on("online", () => {
    if (!smOffered || xmpp.streamManagement.enabled) becomeReady();
  });
  xmpp.on("status", (status: string) => {
    log.debug({ status }, "xmpp status");
    if (status === "disconnect" || status === "offline") {
      smOffered = false;
      if (ready) {
        ready = false;
        events.emit("down", status);
      }
    }
  });
  xmpp.on("error", (err: unknown) => {
    lastError = err;
    log.warn({ err: describeConnectError(err, settings) }, "xmpp connection error");
  });
  xmpp.on("stanza", (stanza: Element) => events.emit("stanza", stanza));
  if (log.isLevelEnabled("trace")) {
    // SASL elements carry credentials: they are never logged.
    const secret = (el: Element) => el.attrs.xmlns?.startsWith("urn:ietf:params:xml:ns:xmpp-sasl");
    xmpp.on("send", (el: Element) => secret(el) || log.trace({ out: el.toString() }, "xmpp out"));
    xmpp.on("element", (el: Element) => secret(el) || log.trace({ in: el.toString() }, "xmpp in"));
  }

  // A getter, not a value: Object.assign would copy `ready` once and freeze it.
  Object.defineProperty(events, "ready", { get: () => ready, enumerable: true });
  return Object.assign(events as EventEmitter<ConnectionEvents> & { readonly ready: boolean }, {
    send: (stanza: Element) => xmpp.send(stanza),
    request: (iq: Element, timeoutMs = 10_000) => xmpp.iqCaller.request(iq, timeoutMs),
    async start() {
      const first = once(events, "ready");
      if (!reconnecting) {
        xmpp.reconnect.start();
        reconnecting = true;
      }
      try {
        await xmpp.start();
      } catch (err) {
        // The caller decides when to try again; xmpp.js must not race it.
        xmpp.reconnect.stop();
        reconnecting = false;
        await xmpp.stop().catch(() => {});
        throw new Error(describeConnectError(lastError ?? err, settings), { cause: err });
      }
      await first;
    },
    async stop() {
      xmpp.reconnect.stop();
      reconnecting = false;
      ready = false;
      await xmpp.stop().catch(() => {});
    },
  });
}
