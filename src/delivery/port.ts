/**
 * The port between the delivery loop and whatever carries messages (the XMPP side).
 * The loop commands (connect, join, send); the carrier only reports facts back: a
 * session is up or down and why, a join worked or was refused, a message was confirmed
 * or refused. Every decision about those facts (retry when, permanent or not, poison or
 * not) is made in `delivery/`, which imports nothing from `xmpp/` or `http/`.
 */
import type { Lane } from "../spool/types.ts";

/** An RFC 6120 §8.3 stanza error, as the server sent it. */
export interface StanzaFault {
  /** `cancel`, `auth`, `modify`, `wait` or `continue`. */
  readonly type: string;
  /** The defined condition, e.g. `forbidden`, `item-not-found`. */
  readonly condition: string;
  readonly text: string | undefined;
}

/** Why a stream ended, or could not be opened. */
export interface StreamFault {
  /**
   * `stream-error`: the server sent `<stream:error>` (RFC 6120 §4.9); `auth`: SASL
   * refused; `security`: TLS or the server's proof failed, or no TLS offered; `network`:
   * unreachable, reset or closed; `liveness`: the stream went silent.
   */
  readonly kind: "stream-error" | "auth" | "security" | "network" | "liveness";
  /** The stream error condition (RFC 6120 §4.9.3) or SASL failure condition, if any. */
  readonly condition?: string;
  /** What happened, in words an operator can act on. */
  readonly text: string;
}

/** Why we are not (or no longer) an occupant of a room (XEP-0045 §7.2, §15.6). */
export interface RoomFault {
  /**
   * `refused`: the join got an error presence (see `stanza`); `kicked` (307), `banned`
   * (301), `members-only` (321/322), `destroyed`, `shutdown` (332), `removed` (other);
   * `not-occupant`: a message or self-ping (XEP-0410) said we are not in the room;
   * `no-answer`: the supervisor's own, when a join got no outcome in time.
   */
  readonly kind:
    | "refused"
    | "kicked"
    | "banned"
    | "members-only"
    | "destroyed"
    | "shutdown"
    | "removed"
    | "not-occupant"
    | "no-answer";
  readonly stanza?: StanzaFault;
  readonly text: string;
}

/** What a session learned about its stream when it came up. */
export interface SessionInfo {
  /** XEP-0478 `max-bytes` the server advertises, if it does. */
  readonly maxStanzaBytes: number | undefined;
}

/** The unconfirmed messages a rejoin must look for in the room's history and archive. */
export interface LookFor {
  readonly ids: ReadonlySet<string>;
  /** When the oldest of them was accepted (ms since the epoch). */
  readonly since: number;
}

/**
 * What a message carries besides its body (issue 13's alert threads): the loop decides
 * them from the spool at send time; the carrier only writes them out.
 */
export interface SendExtras {
  /** XEP-0201 thread id. */
  readonly thread?: string;
  /** XEP-0461 reply to the room's message `id` (its stanza-id) sent by occupant `to`, quoting `quote` (XEP-0428 fallback). */
  readonly reply?: { readonly to: string; readonly id: string; readonly quote: string };
  /** XEP-0444: the message is a reaction (the body its emoji) to the room's message `to` (its stanza-id). */
  readonly reactTo?: string;
}

/** The facts a carrier reports; `nick` names the session (one per sender nick). */
export interface CarrierEvents {
  /** The session's stream is authenticated, bound and ready (a new stream: no rooms). */
  up: [nick: string, info: SessionInfo];
  /** The session's stream is gone (or the attempt failed); nothing is joined any more. */
  down: [nick: string, fault: StreamFault];
  /** Joined `lane.room`; `found` are the looked-for ids already in the room. */
  joined: [lane: Lane, found: readonly string[]];
  /** Not an occupant of `lane.room` (a failed join, or thrown out later). */
  left: [lane: Lane, fault: RoomFault];
  /**
   * The room reflected the message back, or the server acknowledged a direct message.
   * `stanzaId` is the XEP-0359 id the room gave it (`by` the room), when the room said one.
   */
  confirmed: [lane: Lane, id: string, stanzaId?: string];
  /** The message came back as an error. */
  refused: [lane: Lane, id: string, fault: StanzaFault];
}

/** What the loop asks of a carrier. Each command is one attempt; facts follow as events. */
export interface Carrier {
  /** Opens a new stream for `nick` (closing any old one first); `up` or `down` follows. */
  connect(nick: string): void;
  /** Leaves `nick`'s rooms and closes its stream (another gateway sends now); `down` follows. */
  disconnect(nick: string): void;
  /** Joins `lane.room` on `lane.nick`'s current stream; `joined` or `left` follows. */
  join(lane: Lane, lookFor: LookFor | undefined): void;
  /** Sends one message; `confirmed` or `refused` follows (or `down`/`left`, and no word). */
  send(lane: Lane, id: string, body: string, extras?: SendExtras): void;
  /** Listens to the facts. */
  on<E extends keyof CarrierEvents>(event: E, listener: (...args: CarrierEvents[E]) => void): void;
  /** Leaves the rooms and closes every stream, waiting at most `ms`. */
  close(ms: number): Promise<void>;
}

/** The nicks the gateway sends as, and the rooms each joins (direct messages: no rooms). */
export type Topology = ReadonlyMap<string, ReadonlySet<string>>;
