/**
 * One XMPP session per sender nick: a full JID holds one nick per room (XEP-0045 §7.2),
 * so two nicks in one room need two resources. It does what it is told (connect, join,
 * send) on its current stream and reports what the server says, as facts: up, down,
 * joined, left, confirmed (the room's reflection, or the server's XEP-0198 ack for a
 * direct message), refused.
 */
import { createHash } from "node:crypto";
import type { Element } from "@xmpp/xml";
import type { Logger } from "pino";
import type { XmppSettings } from "../config/index.ts";
import type { Clock } from "../core/clock.ts";
import { DIRECT_NICK } from "../core/routes.ts";
import { escapedBytes, STANZA_OVERHEAD_BYTES } from "../core/split.ts";
import type {
  LookFor,
  RoomFault,
  SendExtras,
  SessionInfo,
  StanzaFault,
  StreamFault,
} from "../delivery/port.ts";
import { faultOf } from "./faults.ts";
import { joinRoom, type RoomJoin } from "./room.ts";
import {
  chatMessage,
  groupchatMessage,
  leavePresence,
  messageIds,
  reactionMessage,
  roomStanzaId,
  stanzaError,
} from "./stanzas.ts";
import { type Liveness, openStream, type Stream, StreamOpenError } from "./stream.ts";

/** A message seen in a room: who said what (XEP-0045 §7.4). */
export interface RoomMessage {
  readonly room: string;
  readonly nick: string;
  readonly body: string;
  readonly id: string | undefined;
}

/** Where a session's facts go (`to` is a room, or a user JID for direct messages). */
export interface SessionReport {
  up(info: SessionInfo): void;
  down(fault: StreamFault): void;
  joined(room: string, found: readonly string[]): void;
  left(room: string, fault: RoomFault): void;
  /** `stanzaId`: the XEP-0359 id the room gave its reflection, if any. */
  confirmed(to: string, id: string, stanzaId?: string): void;
  refused(to: string, id: string, fault: StanzaFault): void;
}

/** A sender: one stream at a time, one nick, the rooms it speaks in. */
export interface Session {
  readonly nick: string;
  /** The current stream, while it is up (for room administration and archive queries). */
  readonly stream: Stream | undefined;
  /** Opens a new stream, dropping the old one if any; `up` or `down` follows. */
  connect(): void;
  /** Joins `room` on the current stream; `joined` or `left` follows. */
  join(room: string, lookFor: LookFor | undefined): void;
  /** Sends to a room (with its thread, reply or reaction), or to a user JID from the direct session. */
  send(to: string, id: string, body: string, extras?: SendExtras): void;
  /** Leaves the joined rooms and closes the stream within `ms`. */
  close(ms: number): Promise<void>;
}

/** A stable resource per nick: a restarted gateway replaces its own old session. */
export function resourceFor(nick: string): string {
  if (nick === DIRECT_NICK) return "xmpp-msg-gw-direct";
  return `xmpp-msg-gw-${createHash("sha256").update(nick).digest("hex").slice(0, 8)}`;
}

/** Creates the session of `nick`; `passwords` are room passwords (XEP-0045 §7.2.6). */
export function createSession(deps: {
  settings: XmppSettings;
  nick: string;
  passwords?: ReadonlyMap<string, string>;
  log: Logger;
  clock: Clock;
  liveness?: Liveness;
  /** How often a joined room is self-pinged (XEP-0410); 0 turns it off. */
  selfPingMs?: number;
  report: SessionReport;
  /** Called for every live groupchat message with a body (for `watch`). */
  onRoomMessage?: (message: RoomMessage) => void;
  /** The resource to bind; {@link resourceFor} the nick by default. */
  resource?: string;
  /** Opens a stream; a fake one in unit tests, which record the exact transcript. */
  open?: typeof openStream;
}): Session {
  const { settings, nick, log, clock, report } = deps;
  const direct = nick === DIRECT_NICK;
  const rooms = new Map<string, RoomJoin>();
  /** Direct messages written and not yet acknowledged: id → the user JID. */
  const directTo = new Map<string, string>();
  let stream: Stream | undefined;
  let attempt = 0;

  const bare = (jid: string | undefined) => {
    const slash = jid?.indexOf("/") ?? -1;
    return {
      bare: (slash < 0 ? jid : jid?.slice(0, slash))?.toLowerCase() ?? "",
      resource: slash < 0 || !jid ? "" : jid.slice(slash + 1),
    };
  };
  const forget = () => {
    for (const r of rooms.values()) r.end();
    rooms.clear();
    directTo.clear();
    stream = undefined;
  };

  function onStanza(s: Element): void {
    const from = bare(s.attrs.from);
    const room = rooms.get(from.bare);
    if (s.is("message") && s.attrs.type === "error") {
      const fault = stanzaError(s);
      for (const id of messageIds(s)) {
        const to = room ? room.room : directTo.get(id);
        if (to === undefined) continue;
        directTo.delete(id);
        report.refused(to, id, fault);
      }
      // XEP-0410: not-acceptable means we are no longer an occupant.
      if (room && fault.condition === "not-acceptable")
        room.notOccupant("the room says we are not an occupant");
      return;
    }
    if (!room) return;
    if (s.is("presence")) room.onPresence(s, from.resource);
    if (!s.is("message") || s.attrs.type !== "groupchat") return;
    if (room.onGroupchat(s, from.resource)) return; // history or subject of a join
    if (from.resource === nick) {
      const stanzaId = roomStanzaId(s, room.room);
      for (const id of messageIds(s)) report.confirmed(room.room, id, stanzaId);
    }
    const body = s.getChildText("body");
    if (deps.onRoomMessage && body !== null) {
      deps.onRoomMessage({ room: room.room, nick: from.resource, body, id: messageIds(s)[0] });
    }
  }

  function wire(s: Stream): void {
    // A replaced stream may still speak while it closes: its words are not about ours.
    s.on("stanza", (stanza) => {
      if (stream === s) onStanza(stanza);
    });
    s.on("acked", (stanza) => {
      if (stream !== s) return;
      const id = stanza.attrs.id;
      const to = id === undefined ? undefined : directTo.get(id);
      if (to === undefined || !stanza.is("message")) return;
      directTo.delete(id as string);
      report.confirmed(to, id as string);
    });
    s.once("down", (fault) => {
      if (stream !== s) return;
      forget();
      report.down(fault);
    });
  }

  return {
    nick,
    get stream() {
      return stream;
    },
    connect() {
      const old = stream;
      forget();
      old?.close(0).catch(() => {});
      const mine = ++attempt;
      const open = deps.open ?? openStream;
      open({
        settings,
        resource: deps.resource ?? resourceFor(nick),
        log,
        clock,
        liveness: deps.liveness,
      }).then(
        (s) => {
          if (mine !== attempt) {
            s.close(0).catch(() => {});
            return;
          }
          stream = s;
          wire(s);
          report.up({ maxStanzaBytes: s.maxStanzaBytes });
        },
        (err: unknown) => {
          if (mine !== attempt) return;
          report.down(
            err instanceof StreamOpenError
              ? err.fault
              : faultOf(err, settings, { text: undefined }),
          );
        },
      );
    },
    join(room, lookFor) {
      const s = stream;
      if (!s) return; // `down` was reported already
      const key = room.toLowerCase();
      rooms.get(key)?.end();
      const join = joinRoom({
        room,
        nick,
        password: deps.passwords?.get(room),
        lookFor,
        stream: s,
        clock,
        log,
        selfPingMs: deps.selfPingMs ?? 60_000,
        joined: (found) => report.joined(room, found),
        left: (fault) => {
          if (rooms.get(key) === join) rooms.delete(key);
          report.left(room, fault);
        },
      });
      rooms.set(key, join);
    },
    send(to, id, body, extras = {}) {
      const s = stream;
      if (!s) return;
      const bytes = escapedBytes(body) + STANZA_OVERHEAD_BYTES;
      if (!direct) {
        const stanza =
          extras.reactTo === undefined
            ? groupchatMessage(to, id, body, extras)
            : reactionMessage(to, id, extras.reactTo, body, extras.thread);
        s.send(stanza, bytes);
        return;
      }
      const acks = s.acks;
      if (acks) directTo.set(id, to);
      s.send(chatMessage(to, id, body), bytes);
      // Without stream management, the write is all the confirmation a direct message gets.
      if (!acks) queueMicrotask(() => report.confirmed(to, id));
    },
    async close(ms) {
      const s = stream;
      if (!s) return;
      for (const r of rooms.values()) if (r.joined) s.send(leavePresence(r.room, nick));
      forget();
      attempt++;
      await s.close(ms);
    },
  };
}
