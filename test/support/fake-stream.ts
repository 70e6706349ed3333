// A fake XMPP stream for exact stanza-transcript unit tests of the session and the rooms:
// it records what is written, answers iq requests from a script, and lets the test push
// stanzas, acknowledgements and the stream's end, all synchronously.
import { EventEmitter } from "node:events";
import { type Element, xml } from "@xmpp/xml";
import pino, { type Logger } from "pino";
import type { XmppSettings } from "../../src/config/index.ts";
import type { SessionInfo, StreamFault } from "../../src/delivery/port.ts";
import { createSession, type Session, type SessionReport } from "../../src/xmpp/session.ts";
import type { openStream, Stream, StreamEvents } from "../../src/xmpp/stream.ts";
import { StreamOpenError } from "../../src/xmpp/stream.ts";
import { type FakeClock, fakeClock } from "./fake-clock.ts";

/** An error reply to an iq, shaped like xmpp.js's StanzaError. */
export class FakeStanzaError extends Error {
  readonly condition: string;
  readonly type: string;
  readonly text: string | undefined;
  constructor(condition: string, type = "cancel", text?: string) {
    super(text ?? condition);
    this.name = "StanzaError";
    this.condition = condition;
    this.type = type;
    this.text = text;
  }
}

/**
 * How the fake answers one request: a result element, an error, a function of the iq
 * (it may push stanzas first, as a server sends MAM results before the iq result), or
 * `"hang"` (no answer ever).
 */
export type Answer =
  | Element
  | FakeStanzaError
  | "hang"
  | ((iq: Element, stream: FakeStream) => Element | FakeStanzaError | "hang");

/** A fake stream: a `Stream`, plus what the test reads and drives. */
export interface FakeStream extends Stream {
  /** Every stanza written (`send` and `request`), as `toString()`, in order. */
  readonly sent: string[];
  /** The iqs requested, in order. */
  readonly requests: Element[];
  /** Answers for the next requests, consumed in order; then `otherwise`. */
  readonly answers: Answer[];
  otherwise: Answer;
  /** The `close(ms)` calls. */
  readonly closes: number[];
  /** Pushes an incoming stanza, as the server would. */
  push(stanza: Element): void;
  /** The server acknowledges the next `count` stanzas written (XEP-0198). */
  ack(count?: number): void;
  /** The stream is gone. */
  drop(fault?: StreamFault): void;
}

/** Creates a fake stream; `acks` says whether XEP-0198 is enabled. */
export function fakeStream(opts: { acks?: boolean; maxStanzaBytes?: number } = {}): FakeStream {
  const events = new EventEmitter<StreamEvents>();
  const sent: string[] = [];
  const requests: Element[] = [];
  const unacked: Element[] = [];
  const closes: number[] = [];
  let closed = false;
  const write = (stanza: Element) => {
    sent.push(stanza.toString());
    unacked.push(stanza);
  };
  const fake: FakeStream = Object.assign(events, {
    maxStanzaBytes: opts.maxStanzaBytes,
    acks: opts.acks ?? true,
    sent,
    requests,
    answers: [] as Answer[],
    otherwise: "hang" as Answer,
    closes,
    send(stanza: Element) {
      if (!closed) write(stanza);
    },
    request(iq: Element): Promise<Element> {
      if (closed) return Promise.reject(new Error("the stream is closed"));
      write(iq);
      requests.push(iq);
      let answer = fake.answers.length > 0 ? fake.answers.shift() : fake.otherwise;
      if (typeof answer === "function") answer = answer(iq, fake);
      if (answer === "hang" || answer === undefined) return new Promise<Element>(() => {});
      if (answer instanceof FakeStanzaError) return Promise.reject(answer);
      return Promise.resolve(answer);
    },
    async close(ms: number) {
      closes.push(ms);
      closed = true;
    },
    push(stanza: Element) {
      events.emit("stanza", stanza);
    },
    ack(count = 1) {
      for (const stanza of unacked.splice(0, count)) events.emit("acked", stanza);
    },
    drop(fault: StreamFault = { kind: "network", text: "the XMPP server closed the connection" }) {
      closed = true;
      events.emit("down", fault);
    },
  });
  return fake;
}

/** A fake `openStream`: each call takes the next scripted result, or waits for the test. */
export interface FakeOpener {
  readonly open: typeof openStream;
  /** One per call: its resource, and how to settle it while it is pending. */
  readonly calls: Array<{ resource: string; resolve(s: Stream): void; reject(e: Error): void }>;
}

/** Scripts the results of successive opens: a stream, or a failure. */
export function fakeOpener(...results: Array<FakeStream | StreamOpenError>): FakeOpener {
  const calls: FakeOpener["calls"] = [];
  const open: typeof openStream = (deps) =>
    new Promise<Stream>((resolve, reject) => {
      calls.push({ resource: deps.resource, resolve, reject });
      const next = results.shift();
      if (next instanceof StreamOpenError) reject(next);
      else if (next !== undefined) resolve(next);
    });
  return { open, calls };
}

/** A failed open, as `openStream` rejects. */
export function openError(text = "cannot reach the XMPP server"): StreamOpenError {
  return new StreamOpenError({ kind: "network", text });
}

/** Every fact a session reported, in order, as `[name, ...args]`. */
export type Fact = [keyof SessionReport, ...unknown[]];

/** A report that records its facts. */
export function recordingReport(): { report: SessionReport; facts: Fact[] } {
  const facts: Fact[] = [];
  const report: SessionReport = {
    up: (info: SessionInfo) => facts.push(["up", info]),
    down: (fault) => facts.push(["down", fault]),
    joined: (room, found) => facts.push(["joined", room, [...found].sort()]),
    left: (room, fault) => facts.push(["left", room, fault]),
    confirmed: (to, id) => facts.push(["confirmed", to, id]),
    refused: (to, id, fault) => facts.push(["refused", to, id, fault]),
  };
  return { report, facts };
}

export const SETTINGS: XmppSettings = {
  jid: "gw@example.org",
  password: "secret",
  domain: "example.org",
  host: undefined,
  port: undefined,
  tls: "starttls",
  caFile: undefined,
  logLevel: "silent",
};

/** Lets pending promise callbacks (the open, the archive pages) run. */
export const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A session on a fake stream, connected, with its clock and facts. */
export async function connectedSession(
  opts: {
    nick?: string;
    acks?: boolean;
    selfPingMs?: number;
    streams?: FakeStream[];
    log?: Logger;
  } = {},
): Promise<{
  session: Session;
  stream: FakeStream;
  opener: FakeOpener;
  clock: FakeClock;
  facts: Fact[];
}> {
  const streams = opts.streams ?? [fakeStream({ acks: opts.acks })];
  const opener = fakeOpener(...streams);
  const clock = fakeClock();
  const { report, facts } = recordingReport();
  const session = createSession({
    settings: SETTINGS,
    nick: opts.nick ?? "bot",
    log: opts.log ?? pino({ level: "silent" }),
    clock,
    selfPingMs: opts.selfPingMs ?? 0,
    report,
    open: opener.open,
  });
  session.connect();
  await flush();
  facts.splice(0); // the `up`; tests of connecting look at it themselves
  return { session, stream: streams[0] as FakeStream, opener, clock, facts };
}

// Stanzas a MUC service sends (XEP-0045), from the room `room` to the gateway.
const MUC_USER = "http://jabber.org/protocol/muc#user";
const STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";

/** The presence of `room/nick`; `codes` are its status codes (110: it is ours). */
export function occupantPresence(
  room: string,
  nick: string,
  codes: number[],
  opts: { type?: string; role?: string; destroy?: boolean } = {},
): Element {
  return xml(
    "presence",
    { from: `${room}/${nick}`, to: "gw@example.org/r", type: opts.type },
    xml(
      "x",
      { xmlns: MUC_USER },
      xml("item", { affiliation: "none", role: opts.role ?? "participant" }),
      opts.destroy ? xml("destroy", {}) : null,
      ...codes.map((code) => xml("status", { code: String(code) })),
    ),
  );
}

/** The `<error/>` of an error stanza (RFC 6120 §8.3). */
export function errorChild(type: string, condition: string, text?: string): Element {
  return xml(
    "error",
    { type },
    xml(condition, { xmlns: STANZAS }),
    text === undefined ? null : xml("text", { xmlns: STANZAS }, text),
  );
}

/** The room subject, which ends the history (XEP-0045 §7.2.15). */
export function subject(room: string, text = "Ops"): Element {
  return xml("message", { from: room, type: "groupchat" }, xml("subject", {}, text));
}

/** A groupchat message from `room/nick` with XEP-0359 origin-id; `delayed` for history. */
export function roomMessage(
  room: string,
  nick: string,
  id: string,
  opts: { body?: string; delayed?: string } = {},
): Element {
  return xml(
    "message",
    { from: `${room}/${nick}`, type: "groupchat", id },
    xml("body", {}, opts.body ?? `text of ${id}`),
    xml("origin-id", { xmlns: "urn:xmpp:sid:0", id }),
    opts.delayed
      ? xml("delay", { xmlns: "urn:xmpp:delay", from: room, stamp: opts.delayed })
      : null,
  );
}

/**
 * An answer to one MAM query (XEP-0313 §4.2): pushes `messages` (from `room/nick`, with
 * origin-id) as results of the query, then the `<fin/>` with RSM `last` (XEP-0059).
 */
export function archivePage(
  room: string,
  messages: Array<{ nick: string; id: string }>,
  fin: { last?: string; complete?: boolean } = {},
): Answer {
  return (iq, stream) => {
    const queryid = iq.getChild("query", "urn:xmpp:mam:2")?.attrs.queryid;
    for (const m of messages) {
      const message = xml(
        "message",
        { from: `${room}/${m.nick}`, type: "groupchat", id: m.id },
        xml("body", {}, `text of ${m.id}`),
        xml("origin-id", { xmlns: "urn:xmpp:sid:0", id: m.id }),
      );
      stream.push(
        xml(
          "message",
          { from: room, to: "gw@example.org/r" },
          xml(
            "result",
            { xmlns: "urn:xmpp:mam:2", queryid, id: `a-${m.id}` },
            xml("forwarded", { xmlns: "urn:xmpp:forward:0" }, message),
          ),
        ),
      );
    }
    const set = xml(
      "set",
      { xmlns: "http://jabber.org/protocol/rsm" },
      fin.last ? xml("last", {}, fin.last) : null,
    );
    const complete = fin.complete ? "true" : undefined;
    return xml(
      "iq",
      { type: "result", from: room, id: iq.attrs.id },
      xml("fin", { xmlns: "urn:xmpp:mam:2", complete }, set),
    );
  };
}
