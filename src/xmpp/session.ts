/**
 * One XMPP session per sender nick: a full JID holds one nick per room (XEP-0045 §7.2),
 * so two nicks in the same room need two resources. The session keeps its rooms joined
 * (rejoins after new streams, kicks, bans, destroyed rooms and silent drop-outs) and
 * confirms each message by the room's reflection of it. It only classifies failures;
 * the delivery loop decides what to do about them.
 */
import { createHash } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Element } from "@xmpp/xml";
import type { Logger } from "pino";
import type { XmppSettings } from "../config/index.ts";
import { backoffDelay } from "../core/backoff.ts";
import { DeliveryError, isPermanentStanzaError } from "../core/errors.ts";
import { DIRECT_NICK } from "../core/routes.ts";
import {
  type Connection,
  type ConnectionTiming,
  createConnection,
  DEFAULT_TIMING,
} from "./connection.ts";
import { createRoom, type Room, type RoomState } from "./room.ts";
import {
  chatMessage,
  groupchatMessage,
  leavePresence,
  messageIds,
  stanzaError,
} from "./stanzas.ts";

export type { RoomState } from "./room.ts";

/** A message seen in a room: who said what (XEP-0045 §7.4). */
export interface RoomMessage {
  readonly room: string;
  readonly nick: string;
  readonly body: string;
  readonly id: string | undefined;
}

/** Unconfirmed messages of a room, for the dedupe check in the history after a rejoin. */
export interface Unconfirmed {
  readonly ids: ReadonlySet<string>;
  /** When the oldest of them was accepted. */
  readonly since: number;
}

/** What a session tells the delivery loop. */
export interface SessionEvents {
  /** Joined (and history checked): what is pending for the room can go out. */
  roomReady: [room: string];
  /** Not an occupant any more: sends in flight have an unknown fate. */
  roomDown: [room: string, error: DeliveryError];
  /** An unconfirmed message was found in the room's history after a rejoin. */
  confirmed: [room: string, id: string];
}

/** A sender: one connection, one nick, the rooms it speaks in. */
export interface Session extends EventEmitter<SessionEvents> {
  readonly nick: string;
  readonly rooms: ReadonlyMap<string, RoomState>;
  /** True while the stream is up. */
  readonly online: boolean;
  /** The connection's last problem, for `/ready`. */
  readonly lastError: string | undefined;
  /** The largest stanza the server advertises it accepts (XEP-0478), if it does. */
  readonly maxStanzaBytes: number | undefined;
  /** True when the stream is up and `to` is a joined room (or, for the direct session, any JID). */
  canSend(to: string): boolean;
  /** Connects and joins every room; rejects if the first connection or a join fails. */
  start(): Promise<void>;
  /** Asks a room that refused us to be joined now, not at the end of its backoff. */
  retryRoom(room: string): void;
  /** Adds a room to this session (a configuration reload) and joins it if online. */
  joinRoom(room: string, password?: string): void;
  /**
   * Sends `body` to a room (resolves when the room reflects it back) or, from the direct
   * session, to a user JID (resolves when the server acknowledges it, XEP-0198); rejects
   * with a DeliveryError.
   */
  send(to: string, id: string, body: string): Promise<void>;
  /** Listens to every incoming stanza (archive results); returns the unsubscribe function. */
  onStanza(listener: (stanza: Element) => void): () => void;
  /** Sends an iq on this session's stream (room administration, archive queries). */
  request(iq: Element, timeoutMs?: number): Promise<Element>;
  /** Leaves the rooms and closes the stream. */
  stop(): Promise<void>;
}

/** A stable resource per nick: a restarted gateway replaces its own old session. */
export function resourceFor(nick: string): string {
  if (nick === DIRECT_NICK) return "xmpp-msg-gw-direct";
  return `xmpp-msg-gw-${createHash("sha256").update(nick).digest("hex").slice(0, 8)}`;
}

interface Pending {
  readonly room: string;
  resolve(): void;
  reject(err: DeliveryError): void;
}

/** Creates a session for `nick` speaking in `rooms`. */
export function createSession(deps: {
  settings: XmppSettings;
  nick: string;
  rooms: readonly string[];
  /** Room passwords (XEP-0045 §7.2.6) by room JID. */
  passwords?: ReadonlyMap<string, string>;
  log: Logger;
  connection?: Connection;
  timing?: ConnectionTiming;
  /** How often a joined room is self-pinged (XEP-0410); 0 turns it off. */
  selfPingMs?: number;
  /** Called for every live groupchat message with a body (for `watch` and tests). */
  onRoomMessage?: (message: RoomMessage) => void;
  /** The delivery loop's unconfirmed messages of a room, checked against its history. */
  unconfirmed?: (room: string) => Unconfirmed | undefined;
  /** Called when a new stream is ready after a lost one (the reconnects metric). */
  onReconnect?: () => void;
}): Session {
  const { settings, nick, log } = deps;
  const timing = deps.timing ?? DEFAULT_TIMING;
  const conn = deps.connection ?? createConnection(settings, resourceFor(nick), log, timing);
  const events = new EventEmitter<SessionEvents>();
  const pending = new Map<string, Pending>();
  let stopping = false;

  const rejectPending = (room: string | undefined, err: DeliveryError) => {
    for (const [id, p] of pending) {
      if (room !== undefined && p.room !== room) continue;
      pending.delete(id);
      p.reject(err);
    }
  };

  const rooms = new Map<string, Room>();
  const roomStates = new Map<string, RoomState>();
  const addRoom = (jid: string, password: string | undefined) => {
    const room = createRoom({
      room: jid,
      nick,
      password,
      conn,
      log,
      selfPingMs: deps.selfPingMs ?? 60_000,
      retryDelay: (attempt) => backoffDelay(attempt, timing.random, timing.backoff),
      unconfirmed: () => deps.unconfirmed?.(jid),
      isStopping: () => stopping,
      onReady: () => events.emit("roomReady", jid),
      onDown: (err) => {
        rejectPending(jid, err);
        events.emit("roomDown", jid, err);
      },
      onConfirmed: (id) => {
        const p = pending.get(id);
        if (p) {
          pending.delete(id);
          p.resolve();
        }
        events.emit("confirmed", jid, id);
      },
    });
    rooms.set(jid, room);
    roomStates.set(jid, room.state);
    return room;
  };
  for (const jid of deps.rooms) addRoom(jid, deps.passwords?.get(jid));

  const roomOf = (from: string | undefined): [Room | undefined, string] => {
    const slash = from?.indexOf("/") ?? -1;
    const bare = (slash < 0 ? from : from?.slice(0, slash))?.toLowerCase() ?? "";
    return [rooms.get(bare), slash < 0 || !from ? "" : from.slice(slash + 1)];
  };

  function onMessage(m: Element, room: Room, fromNick: string): void {
    if (m.attrs.type === "error") {
      for (const id of messageIds(m)) {
        const p = pending.get(id);
        if (!p) continue;
        pending.delete(id);
        const e = stanzaError(m);
        const reason = `${room.jid} refused the message: ${e.condition}${e.text ? ` (${e.text})` : ""}`;
        p.reject(
          new DeliveryError(reason, {
            permanent: isPermanentStanzaError(e.type, e.condition),
            condition: e.condition,
          }),
        );
        // XEP-0410: not-acceptable means we are no longer an occupant.
        if (e.condition === "not-acceptable") room.lost("not an occupant any more");
      }
      return;
    }
    if (m.attrs.type !== "groupchat") return;
    if (room.onGroupchat(m, fromNick)) return; // history or subject, handled by the room
    if (fromNick === nick) {
      for (const id of messageIds(m)) {
        const p = pending.get(id);
        if (p && p.room === room.jid) {
          pending.delete(id);
          p.resolve();
          break;
        }
      }
    }
    const body = m.getChildText("body");
    if (deps.onRoomMessage && body !== null) {
      deps.onRoomMessage({ room: room.jid, nick: fromNick, body, id: messageIds(m)[0] });
    }
  }

  const direct = nick === DIRECT_NICK;
  conn.on("acked", (stanza) => {
    const id = stanza.attrs.id;
    const p = id === undefined ? undefined : pending.get(id);
    if (direct && p && stanza.is("message")) {
      pending.delete(id as string);
      p.resolve();
    }
  });

  conn.on("stanza", (stanza) => {
    const [room, fromNick] = roomOf(stanza.attrs.from);
    if (!room) {
      // A bounce of a direct message (RFC 6120 §8.3): e.g. no such user.
      if (direct && stanza.is("message") && stanza.attrs.type === "error") {
        for (const id of messageIds(stanza)) {
          const p = pending.get(id);
          if (!p) continue;
          pending.delete(id);
          const e = stanzaError(stanza);
          p.reject(
            new DeliveryError(
              `${p.room} refused the message: ${e.condition}${e.text ? ` (${e.text})` : ""}`,
              {
                permanent: isPermanentStanzaError(e.type, e.condition),
                condition: e.condition,
              },
            ),
          );
        }
      }
      return;
    }
    if (stanza.is("presence")) room.onPresence(stanza, fromNick);
    else if (stanza.is("message")) onMessage(stanza, room, fromNick);
  });
  let everReady = false;
  conn.on("ready", (resumed) => {
    // The first `ready` is the start; every later one follows a lost stream.
    if (everReady) deps.onReconnect?.();
    everReady = true;
    if (resumed) {
      // XEP-0198 resumption: membership survived and xmpp.js resends what the server
      // did not acknowledge, so pending confirmations are still coming.
      for (const room of rooms.values()) room.resumed();
      return;
    }
    // A new stream holds no room membership; what was in flight may or may not have
    // arrived: let the loop resend it after the history check of the rejoin.
    const lost = new DeliveryError("the XMPP connection was replaced", {
      permanent: false,
      condition: "connection-lost",
    });
    for (const room of rooms.values()) events.emit("roomDown", room.jid, lost);
    rejectPending(undefined, lost);
    for (const room of rooms.values()) room.rejoin();
  });
  conn.on("down", () => {
    for (const room of rooms.values()) room.paused();
  });

  Object.defineProperties(events, {
    online: { get: () => conn.ready, enumerable: true },
    lastError: { get: () => conn.lastError, enumerable: true },
    maxStanzaBytes: { get: () => conn.maxStanzaBytes, enumerable: true },
  });

  return Object.assign(
    events as EventEmitter<SessionEvents> & {
      online: boolean;
      lastError: string | undefined;
      maxStanzaBytes: number | undefined;
    },
    {
      nick,
      rooms: roomStates,
      request: (iq: Element, timeoutMs?: number) => conn.request(iq, timeoutMs),
      onStanza(listener: (stanza: Element) => void) {
        conn.on("stanza", listener);
        return () => conn.off("stanza", listener);
      },
      canSend: (jid: string) => conn.ready && (direct || rooms.get(jid)?.state.phase === "joined"),
      retryRoom: (jid: string) => rooms.get(jid)?.retryNow(),
      joinRoom(jid: string, password?: string) {
        if (rooms.has(jid)) return;
        const room = addRoom(jid, password);
        if (conn.ready) room.rejoin();
      },
      async start() {
        await conn.start();
        // `ready` handlers ran inside start(): every room is joining now.
        await Promise.all([...rooms.values()].map((r) => r.joined()));
      },
      async send(jid: string, id: string, body: string) {
        if (!conn.ready || (!direct && rooms.get(jid)?.state.phase !== "joined")) {
          throw new DeliveryError(`not in ${jid} as ${nick} right now`, {
            permanent: false,
            condition: "not-joined",
          });
        }
        const confirmed = new Promise<void>((resolve, reject) =>
          pending.set(id, { room: jid, resolve, reject }),
        );
        const acks = conn.acks;
        try {
          await conn.send(direct ? chatMessage(jid, id, body) : groupchatMessage(jid, id, body));
        } catch (err) {
          pending.delete(id);
          throw new DeliveryError(`sending to ${jid} failed: ${(err as Error).message}`, {
            permanent: false,
            condition: "connection-lost",
          });
        }
        // Without stream management, the write is all the confirmation a direct message gets.
        if (direct && !acks) pending.get(id)?.resolve();
        await confirmed;
      },
      async stop() {
        stopping = true;
        for (const room of rooms.values()) room.close();
        if (conn.ready) {
          await Promise.allSettled(
            [...rooms.values()]
              .filter((r) => r.state.phase === "joined")
              .map((r) => conn.send(leavePresence(r.jid, nick))),
          );
        }
        await conn.stop();
        rejectPending(
          undefined,
          new DeliveryError("shutting down", { permanent: false, condition: "shutdown" }),
        );
      },
    },
  );
}
