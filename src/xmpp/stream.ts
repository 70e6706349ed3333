/**
 * One client stream, from connect to teardown: TLS-only (RFC 6120 §5), certificate
 * checked against the XMPP domain, SCRAM preferred and its server proof checked, ready
 * once XEP-0198 is settled. It never reconnects: it reports `down` with the fault once,
 * after destroying its sockets, and the delivery loop decides what comes next.
 */
import { EventEmitter } from "node:events";
import type { Element } from "@xmpp/xml";
import { xml } from "@xmpp/xml";
import type { Logger } from "pino";
import type { XmppSettings } from "../config/index.ts";
import type { Clock, Timer } from "../core/clock.ts";
import type { StreamFault } from "../delivery/port.ts";
import { composeClient, MECHANISMS } from "./client.ts";
import { type EarlyCause, explainEarlyFailure, silenceFault } from "./diagnose.ts";
import { advertisedMaxBytes, faultOf, type Refusal, serverAt, serviceUri } from "./faults.ts";
import { DEFAULT_LIVENESS, isSilentTooLong, type Liveness } from "./liveness.ts";
import { serverProofMatches } from "./scram.ts";

const NS_SM = "urn:xmpp:sm:3";

/**
 * With stream management on, an `<r/>` after this many stanzas. xmpp.js asks for an ack
 * only 250 ms after the last stanza sent (a debounce), so under steady load it never
 * asks: its queue of unacknowledged stanzas, which it keeps for a resume, grew by every
 * message sent (the bench's 200,000-message phase: RSS to 413 MB), and direct messages,
 * which only an ack confirms, waited for a pause in the load.
 */
export const ACK_REQUEST_EVERY = 64;
const NS_STREAM = "http://etherx.jabber.org/streams";
/** Longest wait for each step of the open (xmpp.js's `timeout`), within `openTimeoutMs`. */
const STEP_TIMEOUT_MS = 10_000;
/** Longest wait for the probe that tells a port's TLS mode after a failed open. */
const PROBE_TIMEOUT_MS = 3000;

export { DEFAULT_LIVENESS, isSilentTooLong, type Liveness } from "./liveness.ts";

/** What a stream reports. */
export interface StreamEvents {
  stanza: [stanza: Element];
  /** The server acknowledged this stanza (XEP-0198 §4): it took responsibility for it. */
  acked: [stanza: Element];
  /** The stream is gone; reported once, after its sockets were destroyed. */
  down: [fault: StreamFault];
}

/** An open, authenticated, bound stream. */
export interface Stream extends EventEmitter<StreamEvents> {
  /** XEP-0478 `max-bytes` of the last stream features, if advertised. */
  readonly maxStanzaBytes: number | undefined;
  /** True when XEP-0198 is enabled: sent stanzas get `acked`. */
  readonly acks: boolean;
  /** Writes a stanza; a failed write takes the stream down. */
  send(stanza: Element, bytes?: number): void;
  /** Sends an iq and resolves with its result (rejects on an error reply or time-out). */
  request(iq: Element, timeoutMs?: number): Promise<Element>;
  /** Closes politely within `ms`, then destroys; no `down` follows. */
  close(ms: number): Promise<void>;
}

/** A failed open, carrying its fault. */
export class StreamOpenError extends Error {
  readonly fault: StreamFault;
  constructor(fault: StreamFault) {
    super(fault.text);
    this.fault = fault;
    this.name = "StreamOpenError";
  }
}

/** Opens a stream as `settings.jid` with `resource`; rejects with StreamOpenError. */
export function openStream(deps: {
  settings: XmppSettings;
  resource: string;
  log: Logger;
  clock: Clock;
  liveness?: Liveness;
}): Promise<Stream> {
  const { settings, log, clock } = deps;
  const live = deps.liveness ?? DEFAULT_LIVENESS;
  // xmpp.js's time-out of each step (stream header, each negotiation answer).
  const stepMs = Math.min(STEP_TIMEOUT_MS, live.openTimeoutMs);
  const [local] = settings.jid.split("@");
  const refusal: Refusal = { text: undefined };
  const c = composeClient({
    service: serviceUri(settings),
    domain: settings.domain,
    resource: deps.resource,
    timeoutMs: stepMs,
    async credentials(authenticate, mechanisms, entity) {
      // RFC 6120 §5.3.1: never authenticate over a stream TLS does not protect.
      if (!entity.isSecure()) {
        refusal.text = `the server of ${settings.domain} did not offer STARTTLS; refusing to log in without TLS`;
        throw new Error(refusal.text);
      }
      const mechanism = MECHANISMS.find((m) => mechanisms.includes(m));
      if (!mechanism) throw new Error(`no supported SASL mechanism among ${mechanisms.join(", ")}`);
      await authenticate({ username: local ?? "", password: settings.password }, mechanism);
    },
  });
  const { entity } = c;
  // Liveness is ours (it allows for a shaper); xmpp.js's ack time-out would cut a busy stream.
  c.streamManagement.timeout = 0;
  c.streamManagement.requestAckInterval = live.idleMs;

  const events = new EventEmitter<StreamEvents>();
  let ready = false;
  let over = false;
  let smOffered = false;
  /** Stanzas sent since our last `<r/>`. */
  let unacked = 0;
  let maxStanzaBytes: number | undefined;
  let lastInbound = clock.now();
  let unanswered = 0;
  let pinging = false;
  let liveTimer: Timer | undefined;
  let settle: { resolve(s: Stream): void; reject(e: Error): void } | undefined;

  const teardown = (fault: StreamFault, cause: EarlyCause = {}) => {
    if (over) return;
    over = true;
    clock.clearTimeout(liveTimer);
    clock.clearTimeout(openTimer);
    c.destroy();
    log.debug({ fault }, "stream down");
    if (ready) {
      events.emit("down", fault);
      return;
    }
    // Before a stream header, a probe of the port in the other TLS mode may say more.
    const probeMs = Math.min(PROBE_TIMEOUT_MS, live.openTimeoutMs);
    explainEarlyFailure(fault, cause, c.progress, settings.domain, probeMs)
      .catch(() => fault)
      .then((f) => settle?.reject(new StreamOpenError(f)));
  };
  const fail = (err: unknown) => {
    const e = (err ?? {}) as { name?: string; code?: string };
    if (e.name === "TimeoutError" && !ready && refusal.text === undefined)
      teardown(silenceFault(c.progress, serverAt(settings), stepMs));
    else teardown(faultOf(err, settings, refusal), { code: e.code });
  };

  const openTimer = clock.setTimeout(
    () => teardown(silenceFault(c.progress, serverAt(settings), live.openTimeoutMs)),
    live.openTimeoutMs,
  );

  const checkLiveness = () => {
    if (over) return;
    const silent = clock.now() - lastInbound;
    if (silent >= live.idleMs && !pinging) {
      pinging = true;
      unanswered += 100;
      c.iqCaller
        .request(
          xml("iq", { type: "get", to: settings.domain }, xml("ping", { xmlns: "urn:xmpp:ping" })),
          600_000,
        )
        .catch(() => {}) // an error reply proves life too; silence is judged below
        .finally(() => {
          pinging = false;
        });
    }
    if (isSilentTooLong({ silentMs: silent, unansweredBytes: unanswered }, live)) {
      teardown({
        kind: "liveness",
        text: `no answer from the XMPP server for ${Math.round(silent / 1000)} s`,
      });
      return;
    }
    liveTimer = clock.setTimeout(
      checkLiveness,
      Math.max(250, Math.min(live.idleMs, live.timeoutMs) / 2),
    );
  };

  const becomeReady = () => {
    if (ready || over) return;
    ready = true;
    clock.clearTimeout(openTimer);
    lastInbound = clock.now();
    checkLiveness();
    settle?.resolve(stream);
  };

  entity.on("error", (err: unknown) => {
    const e = err as { name?: string; code?: string };
    // Middleware handler errors are not the stream's; everything else is fatal.
    if (
      ready &&
      e.name !== "StreamError" &&
      e.code === undefined &&
      !/XML|Parse/i.test(e.name ?? "")
    ) {
      log.warn({ err: String(err) }, "xmpp: error while handling a stanza");
      return;
    }
    fail(err);
  });
  entity.on("close", () =>
    teardown({ kind: "network", text: "the XMPP server closed the stream" }, { closed: true }),
  );
  entity.on("disconnect", () =>
    teardown({ kind: "network", text: "the XMPP server closed the connection" }, { closed: true }),
  );
  entity.on("element", () => {
    lastInbound = clock.now();
    unanswered = 0;
  });
  entity.on("status", (status: string) => {
    if (status === "open") c.progress.header = true;
    // Nagle's algorithm holds small writes for the previous segment's ACK: 20-40 ms per
    // message on an otherwise idle stream (BENCHMARKS.md). Stanzas are written whole.
    if (status === "connect" || status === "open") {
      const s = entity.socket as {
        setNoDelay?(v: boolean): void;
        socket?: { setNoDelay?(v: boolean): void };
      } | null;
      (s?.socket ?? s)?.setNoDelay?.(true);
    }
  });
  entity.on("nonza", (el: Element) => {
    // RFC 5802 §5.1: the server proves it knows the password too, or the session is refused.
    if (
      el.is("success", "urn:ietf:params:xml:ns:xmpp-sasl") &&
      c.scramProof.expected !== undefined
    ) {
      const final = Buffer.from(el.text(), "base64").toString("utf8");
      if (!serverProofMatches(c.scramProof, final)) {
        refusal.text = `the server of ${settings.domain} did not prove it knows the password (SCRAM server signature mismatch); refusing the session`;
        teardown({ kind: "security", text: refusal.text });
        return;
      }
    }
    if (el.is("features", NS_STREAM)) {
      // XEP-0478: each stream's features (before and after auth) say its own limit.
      maxStanzaBytes = advertisedMaxBytes(el);
      smOffered = el.getChild("sm", NS_SM) !== undefined;
    }
    // XEP-0198 §3: sending before <enabled/> makes Prosody drop the stream.
    if ((el.is("enabled", NS_SM) || el.is("failed", NS_SM)) && entity.status === "online")
      becomeReady();
  });
  entity.on("online", () => {
    if (!smOffered) becomeReady();
  });
  entity.on("stanza", (stanza: Element) => {
    try {
      events.emit("stanza", stanza);
    } catch (err) {
      // A listener's bug must not become an exception inside the socket's data handler.
      log.error({ err }, "xmpp: a stanza listener threw");
    }
  });
  c.streamManagement.on("ack", (stanza: Element) => events.emit("acked", stanza));
  if (log.isLevelEnabled("trace")) traceElements(entity, log);

  const stream = Object.assign(events, {
    send(stanza: Element, bytes = 0) {
      if (over) return;
      unanswered += bytes;
      entity.send(stanza).catch(fail);
      if (!c.streamManagement.enabled || ++unacked < ACK_REQUEST_EVERY) return;
      unacked = 0;
      entity.send(xml("r", { xmlns: NS_SM })).catch(fail);
    },
    request: (iq: Element, timeoutMs = 10_000) => c.iqCaller.request(iq, timeoutMs),
    async close(ms: number) {
      if (over) return;
      over = true;
      clock.clearTimeout(liveTimer);
      let timer: Timer | undefined;
      await Promise.race([
        entity.stop().catch(() => {}),
        new Promise<void>((r) => {
          timer = clock.setTimeout(r, ms);
        }),
      ]);
      clock.clearTimeout(timer);
      c.destroy();
    },
  }) as Stream;
  Object.defineProperty(stream, "maxStanzaBytes", { get: () => maxStanzaBytes, enumerable: true });
  Object.defineProperty(stream, "acks", {
    get: () => c.streamManagement.enabled,
    enumerable: true,
  });

  return new Promise<Stream>((resolve, reject) => {
    settle = { resolve, reject };
    c.start().catch(fail);
  });
}

/** Logs every element at trace, except SASL (credentials) and room passwords. */
function traceElements(entity: import("@xmpp/client-core").Client, log: Logger): void {
  const secret = (el: Element) => /^urn:ietf:params:xml:ns:xmpp-sasl/.test(el.attrs.xmlns ?? "");
  const text = (el: Element) =>
    el.toString().replace(/<password>[^<]*<\/password>/g, "<password>[redacted]</password>");
  entity.on("send", (el: Element) => secret(el) || log.trace({ out: text(el) }, "xmpp out"));
  entity.on("element", (el: Element) => secret(el) || log.trace({ in: text(el) }, "xmpp in"));
}
