/**
 * The one seam around xmpp.js: a client connection that is TLS-only (RFC 6120 §5),
 * verifies the certificate against the XMPP domain, prefers SCRAM over PLAIN, and only
 * reports itself ready once XEP-0198 stream management is settled.
 */
import { EventEmitter, once } from "node:events";
import { type Client, client, xml } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import type { Logger } from "pino";
import type { XmppSettings } from "../config/index.ts";
import { type BackoffOptions, backoffDelay, DEFAULT_BACKOFF } from "../core/backoff.ts";
import { type ServerProof, scramMechanism, serverProofMatches } from "./scram.ts";

/** XEP-0198 namespace. */
const NS_SM = "urn:xmpp:sm:3";
/** XEP-0478 Stream Limits Advertisement namespace. */
const NS_LIMITS = "urn:xmpp:stream-limits:0";

/** What a connection reports to its owner. */
export interface ConnectionEvents {
  /**
   * The stream is authenticated, bound and (where offered) stream management enabled.
   * `resumed` is true when XEP-0198 resumed the previous session: room membership and
   * unacknowledged stanzas survived, so nothing must be rejoined or resent.
   */
  ready: [resumed: boolean];
  /** The stream is gone; the connection reconnects by itself with backoff. */
  down: [reason: string];
  stanza: [stanza: Element];
  /** The server acknowledged this stanza (XEP-0198 §4): it took responsibility for it. */
  acked: [stanza: Element];
}

/** A TLS-protected, authenticated client stream that reconnects by itself. */
export interface Connection extends EventEmitter<ConnectionEvents> {
  /** True between `ready` and `down`. */
  readonly ready: boolean;
  /** The last connection problem, in words an operator can act on. */
  readonly lastError: string | undefined;
  /** True when XEP-0198 stream management is enabled: sent stanzas get `acked`. */
  readonly acks: boolean;
  /**
   * The largest stanza the server accepts on this stream, in bytes, as advertised in the
   * last stream features (XEP-0478 `max-bytes`); undefined when it does not say.
   */
  readonly maxStanzaBytes: number | undefined;
  send(stanza: Element): Promise<void>;
  /** Sends an iq and resolves with the result (rejects on error or timeout). */
  request(iq: Element, timeoutMs?: number): Promise<Element>;
  /** Connects; resolves at the first `ready`, rejects if this first attempt fails. */
  start(): Promise<void>;
  /** Drops the stream (e.g. when it is found dead); reconnection follows with backoff. */
  drop(reason: string): void;
  /** Closes the stream and stops reconnecting. */
  stop(): Promise<void>;
}

/** Timing of reconnects and liveness checks, injectable so tests can be fast and exact. */
export interface ConnectionTiming {
  readonly backoff: BackoffOptions;
  readonly random: () => number;
  /** Interval of XEP-0199 pings when stream management is not available. */
  readonly pingIntervalMs: number;
  /** A ping or stream-management ack not answered within this drops the stream. */
  readonly pingTimeoutMs: number;
}

/** Defaults: reconnect after 1 s doubling to 60 s; ping every 30 s, dead after 20 s. */
export const DEFAULT_TIMING: ConnectionTiming = {
  backoff: DEFAULT_BACKOFF,
  random: Math.random,
  pingIntervalMs: 30_000,
  pingTimeoutMs: 20_000,
};

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
  timing: ConnectionTiming = DEFAULT_TIMING,
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
      // Strongest first (RFC 7677 before RFC 5802); PLAIN only inside TLS, checked above.
      const mechanism = ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"].find((m) =>
        mechanisms.includes(m),
      );
      scramProof.expected = undefined;
      if (!mechanism) throw new Error(`no supported SASL mechanism among ${mechanisms.join(", ")}`);
      await authenticate({ username: local ?? "", password: settings.password }, mechanism);
    },
  });
  // SCRAM on node:crypto (fast PBKDF2, server signature checked) ahead of xmpp.js's own:
  // the factory creates the first registered mechanism of a name.
  const scramProof: ServerProof = { expected: undefined };
  xmpp.saslFactory._mechs.unshift(
    { name: "SCRAM-SHA-256", mech: scramMechanism("sha256", scramProof) },
    { name: "SCRAM-SHA-1", mech: scramMechanism("sha1", scramProof) },
  );
  // Reconnection is ours (jittered backoff); xmpp.js's fixed one-second loop is detached.
  xmpp.reconnect.stop();
  // XEP-0198 §5: ask for acks; a stream that does not answer in time is dead.
  xmpp.streamManagement.timeout = timing.pingTimeoutMs;
  xmpp.streamManagement.requestAckInterval = timing.pingIntervalMs;

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
  let maxStanzaBytes: number | undefined;
  let lastError: string | undefined;
  /** Why we refused the server ourselves: outranks the socket errors that follow. */
  let refusal: string | undefined;
  let running = false; // between start() and stop(): reconnect when the stream drops
  let attempt = 0;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let pingTimer: NodeJS.Timeout | undefined;

  const becomeReady = (resumed: boolean) => {
    if (ready) return;
    ready = true;
    attempt = 0;
    lastError = undefined;
    refusal = undefined;
    events.emit("ready", resumed);
    if (!xmpp.streamManagement.enabled) schedulePing();
  };

  // XEP-0199: without stream management, a server ping is the only liveness check.
  const schedulePing = () => {
    clearTimeout(pingTimer);
    pingTimer = setTimeout(async () => {
      if (!ready || xmpp.streamManagement.enabled) return;
      try {
        await xmpp.iqCaller.request(
          xml("iq", { type: "get", to: settings.domain }, xml("ping", { xmlns: "urn:xmpp:ping" })),
          timing.pingTimeoutMs,
        );
        schedulePing();
      } catch (err) {
        // An error reply still proves the stream alive; only silence means dead.
        if ((err as { name?: string }).name === "StanzaError") schedulePing();
        else drop(`no answer to ping within ${timing.pingTimeoutMs} ms`);
      }
    }, timing.pingIntervalMs);
  };

  const scheduleReconnect = () => {
    if (!running || reconnectTimer) return;
    const delay = backoffDelay(attempt++, timing.random, timing.backoff);
    log.info({ delayMs: delay, attempt }, `reconnecting to ${settings.domain} in ${delay} ms`);
    reconnectTimer = setTimeout(async () => {
      reconnectTimer = undefined;
      if (!running) return;
      try {
        // connect + open: stream features resume the XEP-0198 session where possible.
        await xmpp.reconnect.reconnect();
      } catch (err) {
        lastError = refusal ?? describeConnectError(err, settings);
        if (xmpp.status === "disconnect" || xmpp.status === "offline") scheduleReconnect();
        else xmpp.disconnect().catch(() => scheduleReconnect());
      }
    }, delay);
  };

  const drop = (reason: string) => {
    log.warn({ reason }, `dropping the stream to ${settings.domain}: ${reason}`);
    xmpp.disconnect().catch(() => {});
  };

  xmpp.on("nonza", (el: Element) => {
    // RFC 5802 §5.1: the server proves it knows the password too, or the session is refused.
    if (el.is("success", "urn:ietf:params:xml:ns:xmpp-sasl") && scramProof.expected !== undefined) {
      const final = Buffer.from(el.text(), "base64").toString("utf8");
      if (!serverProofMatches(scramProof, final)) {
        refusal = `the server of ${settings.domain} did not prove it knows the password (SCRAM server signature mismatch); refusing the session`;
        lastError = refusal;
        log.error(refusal);
        xmpp.disconnect().catch(() => {});
        return;
      }
    }
    if (el.is("features", "http://etherx.jabber.org/streams") && el.getChild("sm", NS_SM)) {
      smOffered = true;
    }
    // XEP-0478: each stream's features (before and after auth) say its own limit.
    if (el.is("features", "http://etherx.jabber.org/streams")) {
      maxStanzaBytes = advertisedMaxBytes(el);
    }
    // XEP-0198 §3: sending before <enabled/> makes Prosody drop the stream.
    if ((el.is("enabled", NS_SM) || el.is("failed", NS_SM)) && xmpp.status === "online") {
      becomeReady(false);
    }
  });
  xmpp.on("online", () => {
    if (!smOffered || xmpp.streamManagement.enabled) becomeReady(false);
  });
  xmpp.streamManagement.on("resumed", () => becomeReady(true));
  xmpp.streamManagement.on("ack", (stanza: Element) => events.emit("acked", stanza));
  xmpp.on("status", (status: string) => {
    log.debug({ status }, "xmpp status");
    // Nagle's algorithm holds small writes for the previous segment's ACK: 20-40 ms per
    // message on an otherwise idle stream (BENCHMARKS.md). Stanzas are sent whole anyway.
    if (status === "connect" || status === "open") xmpp.socket?.socket?.setNoDelay?.(true);
    if (status === "disconnect" || status === "offline") {
      smOffered = false;
      clearTimeout(pingTimer);
      if (ready) {
        ready = false;
        events.emit("down", status);
      }
      if (status === "disconnect") scheduleReconnect();
    }
  });
  xmpp.on("error", (err: unknown) => {
    lastError = refusal ?? describeConnectError(err, settings);
    log.warn({ err: lastError }, "xmpp connection error");
  });
  xmpp.on("stanza", (stanza: Element) => events.emit("stanza", stanza));
  if (log.isLevelEnabled("trace")) {
    // SASL elements carry credentials: they are never logged; room passwords are censored.
    // SASL2 (XEP-0388) carries the same initial response, and its success a FAST token
    // (XEP-0484), when a server offers them (xmpp.js 0.14 uses both).
    const secret = (el: Element) =>
      /^(urn:ietf:params:xml:ns:xmpp-sasl|urn:xmpp:sasl:|urn:xmpp:fast:)/.test(
        el.attrs.xmlns ?? "",
      );
    const text = (el: Element) =>
      el.toString().replace(/<password>[^<]*<\/password>/g, "<password>[redacted]</password>");
    xmpp.on("send", (el: Element) => secret(el) || log.trace({ out: text(el) }, "xmpp out"));
    xmpp.on("element", (el: Element) => secret(el) || log.trace({ in: text(el) }, "xmpp in"));
  }

  // Getters, not values: Object.assign would copy them once.
  Object.defineProperty(events, "ready", { get: () => ready, enumerable: true });
  Object.defineProperty(events, "lastError", { get: () => lastError, enumerable: true });
  Object.defineProperty(events, "acks", {
    get: () => xmpp.streamManagement.enabled,
    enumerable: true,
  });
  Object.defineProperty(events, "maxStanzaBytes", { get: () => maxStanzaBytes, enumerable: true });
  return Object.assign(
    events as EventEmitter<ConnectionEvents> & {
      readonly ready: boolean;
      readonly lastError: string | undefined;
      readonly acks: boolean;
      readonly maxStanzaBytes: number | undefined;
    },
    {
      send: (stanza: Element) => xmpp.send(stanza),
      request: (iq: Element, timeoutMs = 10_000) => xmpp.iqCaller.request(iq, timeoutMs),
      drop,
      async start() {
        const first = once(events, "ready");
        try {
          await xmpp.start();
        } catch (err) {
          lastError = refusal ?? describeConnectError(lastError ?? err, settings);
          await xmpp.stop().catch(() => {});
          throw new Error(lastError, { cause: err });
        }
        await first;
        running = true;
      },
      async stop() {
        running = false;
        clearTimeout(reconnectTimer);
        clearTimeout(pingTimer);
        ready = false;
        await xmpp.stop().catch(() => {});
      },
    },
  );
}

/**
 * XEP-0478: `<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>N</max-bytes></limits>`
 * in stream features; undefined when absent or not a positive integer.
 */
export function advertisedMaxBytes(features: Element): number | undefined {
  const text = features.getChild("limits", NS_LIMITS)?.getChildText("max-bytes")?.trim();
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n > 0 && Number.isSafeInteger(n) ? n : undefined;
}
