// A carrier the test drives: it records every command the loop gives it, in order, and
// reports only the facts the test emits. Nothing happens by itself.
import type {
  Carrier,
  CarrierEvents,
  LookFor,
  RoomFault,
  SendExtras,
  SessionInfo,
  StanzaFault,
  StreamFault,
} from "../../src/delivery/port.ts";
import type { Lane } from "../../src/spool/types.ts";

type Listener = (...args: unknown[]) => void;

/** A carrier that records commands and emits facts on request. */
export interface FakeCarrier extends Carrier {
  /**
   * Every command so far, in order: `connect bot`, `join r@c bot` (`join r@c bot look m1
   * m2` when the join looks for unconfirmed ids), `send r@c bot m1`. The direct-message
   * nick (empty) is written `(direct)`.
   */
  readonly transcript: string[];
  /** The commands since the last `take()`, and forgets them. */
  take(): string[];
  /** What each join looked for, in order. */
  readonly lookFors: Array<LookFor | undefined>;
  /** The body of each send, by id (the last send of that id). */
  readonly bodies: Map<string, string>;
  /** The extras (thread, reply, reaction) of each send that had any, by id. */
  readonly extras: Map<string, SendExtras>;
  /**
   * Reports a fact to the listeners, synchronously. It and the facts below resolve after
   * one macrotask: the loop's spool reads (promises) and the sends after them are done.
   */
  emit<E extends keyof CarrierEvents>(event: E, ...args: CarrierEvents[E]): Promise<void>;
  up(nick: string, info?: SessionInfo): Promise<void>;
  down(nick: string, fault: StreamFault): Promise<void>;
  joined(lane: Lane, found?: readonly string[]): Promise<void>;
  left(lane: Lane, fault: RoomFault): Promise<void>;
  confirmed(lane: Lane, ...ids: string[]): Promise<void>;
  /** The room reflected `id` with XEP-0359 stanza-id `stanzaId`. */
  confirmedAs(lane: Lane, id: string, stanzaId: string): Promise<void>;
  refused(lane: Lane, id: string, fault: StanzaFault): Promise<void>;
}

const nickName = (nick: string) => (nick === "" ? "(direct)" : nick);

/** After one macrotask: every microtask the facts started has run. */
const settled = () => new Promise<void>((r) => setImmediate(r));

/** Creates a fake carrier. */
export function fakeCarrier(): FakeCarrier {
  const listeners = new Map<string, Listener[]>();
  const transcript: string[] = [];
  let taken = 0;
  const lookFors: Array<LookFor | undefined> = [];
  const bodies = new Map<string, string>();
  const extras = new Map<string, SendExtras>();
  const emit = <E extends keyof CarrierEvents>(event: E, ...args: CarrierEvents[E]) => {
    for (const l of listeners.get(event) ?? []) l(...args);
    return settled();
  };
  return {
    transcript,
    lookFors,
    bodies,
    extras,
    take() {
      const out = transcript.slice(taken);
      taken = transcript.length;
      return out;
    },
    connect(nick) {
      transcript.push(`connect ${nickName(nick)}`);
    },
    disconnect(nick) {
      transcript.push(`disconnect ${nickName(nick)}`);
    },
    join(lane, lookFor) {
      lookFors.push(lookFor);
      const look = lookFor ? ` look ${[...lookFor.ids].join(" ")}` : "";
      transcript.push(`join ${lane.room} ${nickName(lane.nick)}${look}`);
    },
    send(lane, id, body, more) {
      bodies.set(id, body);
      if (more) extras.set(id, more);
      transcript.push(`send ${lane.room} ${nickName(lane.nick)} ${id}`);
    },
    on(event, listener) {
      const list = listeners.get(event) ?? [];
      list.push(listener as unknown as Listener);
      listeners.set(event, list);
    },
    async close() {
      transcript.push("close");
    },
    emit,
    up: (nick, info = { maxStanzaBytes: undefined }) => emit("up", nick, info),
    down: (nick, fault) => emit("down", nick, fault),
    joined: (lane, found = []) => emit("joined", lane, found),
    left: (lane, fault) => emit("left", lane, fault),
    confirmed(lane, ...ids) {
      for (const id of ids) for (const l of listeners.get("confirmed") ?? []) l(lane, id);
      return settled();
    },
    confirmedAs: (lane, id, stanzaId) => emit("confirmed", lane, id, stanzaId),
    refused: (lane, id, fault) => emit("refused", lane, id, fault),
  };
}
