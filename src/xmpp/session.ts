/**
 * One XMPP session per sender nick: a full JID holds one nick per room (XEP-0045 §7.2),
 * so two nicks in the same room need two resources. The session joins its rooms on
 * every new stream and confirms each message by the room's reflection of it.
 */
import { createHash, randomUUID } from "node:crypto";
import type { Element } from "@xmpp/xml";
import type { Logger } from "pino";
import type { XmppSettings } from "../config/index.ts";
import { GatewayError } from "../core/errors.ts";
import { type Connection, createConnection } from "./connection.ts";
import {
  groupchatMessage,
  instantRoomIq,
  joinPresence,
  leavePresence,
  messageIds,
  mucStatusCodes,
  stanzaError,
} from "./stanzas.ts";

/** Where a room stands for this session; shown by `/ready` later. */
export interface RoomState {
  readonly room: string;
  joined: boolean;
  lastError: string | undefined;
}

interface Pending {
  readonly room: string;
  resolve(): void;
  reject(err: Error): void;
}

interface Joining {
  resolve(): void;
  reject(err: Error): void;
}

/** A message seen in a room: who said what (XEP-0045 §7.4). */
export interface RoomMessage {
  readonly room: string;
  readonly nick: string;
  readonly body: string;
  readonly id: string | undefined;
}

/** A sender: one connection, one nick, the rooms it speaks in. */
export interface Session {
  readonly nick: string;
  readonly rooms: ReadonlyMap<string, RoomState>;
  /** True when the stream is up and `room` is joined. */
  canSend(room: string): boolean;
  /** Connects and joins every room; rejects if the first connection fails. */
  start(): Promise<void>;
  /** Sends `body` to `room` and resolves when the room reflects it back. */
  sendToRoom(room: string, body: string, id?: string): Promise<void>;
  /** Leaves the rooms and closes the stream. */
  stop(): Promise<void>;
}

/** A stable resource per nick: a restarted gateway replaces its own old session. */
export function resourceFor(nick: string): string {
  return `xmpp-msg-gw-${createHash("sha256").update(nick).digest("hex").slice(0, 8)}`;
}

/** Creates a session for `nick` speaking in `rooms`. */
export function createSession(deps: {
  settings: XmppSettings;
  nick: string;
  rooms: readonly string[];
  log: Logger;
  connection?: Connection;
  /** Called for every groupchat message with a body from one of the rooms (for `watch`). */
  onRoomMessage?: (message: RoomMessage) => void;
}): Session {
  const { settings, nick, log } = deps;
  const conn = deps.connection ?? createConnection(settings, resourceFor(nick), log);
  const rooms = new Map<string, RoomState>(
    deps.rooms.map((room) => [room, { room, joined: false, lastError: undefined }]),
  );
  const pending = new Map<string, Pending>();
  let stopping = false;
  const joining = new Map<string, Joining>();

  const fromRoomAsMe = (from: string | undefined) => {
    const slash = from?.indexOf("/") ?? -1;
    if (!from || slash < 0) return undefined;
    const room = from.slice(0, slash).toLowerCase();
    return from.slice(slash + 1) === nick && rooms.has(room) ? room : undefined;
  };

  async function join(room: string): Promise<void> {
    const state = rooms.get(room);
    if (!state) throw new Error(`not a room of this session: ${room}`);
    const joined = new Promise<void>((resolve, reject) => joining.set(room, { resolve, reject }));
    await conn.send(joinPresence(room, nick));
    await joined;
  }

  function onPresence(p: Element): void {
    const room = fromRoomAsMe(p.attrs.from);
    if (!room) return;
    const state = rooms.get(room) as RoomState;
    const waiter = joining.get(room);
    if (p.attrs.type === "error") {
      const e = stanzaError(p);
      state.joined = false;
      state.lastError = `${e.condition}${e.text ? `: ${e.text}` : ""}`;
      log.error(
        { room, nick, condition: e.condition },
        `cannot join ${room} as ${nick}: ${state.lastError}`,
      );
      joining.delete(room);
      waiter?.reject(
        new GatewayError("DELIVERY_REFUSED", `cannot join ${room} as ${nick}: ${state.lastError}`),
      );
      return;
    }
    const codes = mucStatusCodes(p);
    if (p.attrs.type === "unavailable") {
      state.joined = false;
      // 307 kick, 301 ban, 332 shutdown (XEP-0045 §15.6); rejoin after a kick.
      state.lastError = codes.includes(301) ? "banned" : codes.includes(307) ? "kicked" : "left";
      if (!stopping)
        log.warn({ room, nick, codes }, `no longer in ${room} as ${nick} (${state.lastError})`);
      if (codes.includes(307) && conn.ready) join(room).catch(() => {});
      return;
    }
    if (!codes.includes(110)) return; // someone else's presence; 110 marks our own
    if (codes.includes(201)) {
      // Prosody locks a new room until its owner accepts the configuration.
      conn
        .request(instantRoomIq(room))
        .catch((err) => log.warn({ room, err: String(err) }, "instant room"));
    }
    state.joined = true;
    state.lastError = undefined;
    joining.delete(room);
    log.info({ room, nick }, `joined ${room} as ${nick}`);
    waiter?.resolve();
  }

  function onMessage(m: Element): void {
    if (deps.onRoomMessage && m.attrs.type === "groupchat") {
      const [room = "", from = ""] = splitFrom(m.attrs.from);
      const body = m.getChildText("body");
      // Delayed messages (XEP-0203) are room history, not arrivals.
      if (rooms.has(room) && body !== null && !m.getChild("delay", "urn:xmpp:delay")) {
        deps.onRoomMessage({ room, nick: from, body, id: messageIds(m)[0] });
      }
    }
    const room =
      fromRoomAsMe(m.attrs.from) ?? (m.attrs.type === "error" ? roomOf(m.attrs.from) : undefined);
    if (!room) return;
    for (const id of messageIds(m)) {
      const p = pending.get(id);
      if (!p || p.room !== room) continue;
      pending.delete(id);
      if (m.attrs.type === "error") {
        const e = stanzaError(m);
        p.reject(
          new GatewayError(
            "DELIVERY_REFUSED",
            `${room} refused the message: ${e.condition}${e.text ? `: ${e.text}` : ""}`,
          ),
        );
      } else {
        p.resolve();
      }
      return;
    }
  }

  const splitFrom = (from: string | undefined): [string, string] => {
    const slash = from?.indexOf("/") ?? -1;
    if (!from || slash < 0) return [from?.toLowerCase() ?? "", ""];
    return [from.slice(0, slash).toLowerCase(), from.slice(slash + 1)];
  };

  const roomOf = (from: string | undefined) => {
    const room = from?.split("/")[0]?.toLowerCase();
    return room && rooms.has(room) ? room : undefined;
  };

  conn.on("stanza", (stanza) => {
    if (stanza.is("presence")) onPresence(stanza);
    else if (stanza.is("message")) onMessage(stanza);
  });
  let joins: Promise<void>[] = [];
  conn.on("ready", () => {
    // A new stream holds no room membership: join every room again (no history).
    joins = [...rooms.keys()].map((room) => join(room));
    for (const j of joins) j.catch(() => {}); // logged in onPresence; start() reports it
  });
  conn.on("down", (reason) => {
    for (const state of rooms.values()) state.joined = false;
    const err = new GatewayError("UNAVAILABLE", `XMPP connection lost (${reason})`, {
      retryAfter: 5,
    });
    for (const j of joining.values()) j.reject(err);
    joining.clear();
    // Whether an unconfirmed message reached the room is unknown now; its sender decides.
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  });

  return {
    nick,
    rooms,
    canSend: (room) => conn.ready && rooms.get(room)?.joined === true,
    async start() {
      if (conn.ready) {
        // Online already, some room refused us: try those rooms again.
        await Promise.all([...rooms.values()].filter((r) => !r.joined).map((r) => join(r.room)));
        return;
      }
      await conn.start();
      // `ready` handlers run synchronously inside start(): the joins are under way.
      await Promise.all(joins);
    },
    async sendToRoom(room, body, id = randomUUID()) {
      if (!conn.ready || !rooms.get(room)?.joined) {
        throw new GatewayError("UNAVAILABLE", `not in ${room} as ${nick} right now`, {
          retryAfter: 5,
        });
      }
      const confirmed = new Promise<void>((resolve, reject) =>
        pending.set(id, { room, resolve, reject }),
      );
      await conn.send(groupchatMessage(room, id, body));
      await confirmed;
    },
    async stop() {
      stopping = true;
      if (conn.ready) {
        await Promise.allSettled(
          [...rooms.values()]
            .filter((r) => r.joined)
            .map((r) => conn.send(leavePresence(r.room, nick))),
        );
      }
      await conn.stop();
      const err = new GatewayError("UNAVAILABLE", "shutting down", { retryAfter: 5 });
      for (const p of pending.values()) p.reject(err);
      pending.clear();
    },
  };
}
