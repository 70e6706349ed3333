/**
 * The sender sessions of a configuration: one per distinct nick, each joined to the
 * rooms it sends to. Starting never blocks the gateway: a session whose first connection
 * fails keeps trying with jittered backoff (later drops reconnect by themselves).
 */
import type { Logger } from "pino";
import type { XmppSettings } from "../config/index.ts";
import { backoffDelay } from "../core/backoff.ts";
import { laneOf, type Route } from "../core/routes.ts";
import type { ConnectionTiming } from "./connection.ts";
import { createSession, type Session, type Unconfirmed } from "./session.ts";

/** All sessions of the gateway, by nick. */
export interface SessionPool {
  readonly sessions: ReadonlyMap<string, Session>;
  /** Starts every session; resolves when each is online or has failed its first attempt. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Every session online and every room joined, with the details `/ready` shows. */
  readiness(): Readiness;
  /**
   * A configuration reload: joins rooms and starts sessions that `routes` need and the
   * pool lacks, without touching the streams it has; returns the new sessions.
   */
  extend(routes: readonly Route[]): Session[];
}

/** What `/ready` reports. */
export interface Readiness {
  readonly ready: boolean;
  readonly sessions: Array<{
    nick: string;
    online: boolean;
    lastError: string | null;
    rooms: Array<{ room: string; state: string; lastError: string | null }>;
  }>;
}

/** The rooms of each nick (direct messages: DIRECT_NICK, no rooms) and the room passwords. */
function groupTargets(routes: readonly Route[]): {
  roomsByNick: Map<string, Set<string>>;
  passwords: Map<string, string>;
} {
  const roomsByNick = new Map<string, Set<string>>();
  const passwords = new Map<string, string>();
  for (const route of routes) {
    for (const t of route.targets) {
      const { room, nick } = laneOf(t);
      const set = roomsByNick.get(nick) ?? new Set<string>();
      if (t.kind === "room") set.add(room);
      if (t.kind === "room" && t.password !== undefined) passwords.set(room, t.password);
      roomsByNick.set(nick, set);
    }
  }
  return { roomsByNick, passwords };
}

/** Groups route targets by nick and creates one session per nick. */
export function createSessionPool(deps: {
  settings: XmppSettings;
  routes: readonly Route[];
  log: Logger;
  timing?: ConnectionTiming;
  selfPingMs?: number;
  random?: () => number;
  unconfirmed?: (room: string, nick: string) => Unconfirmed | undefined;
  /** Called when `nick`'s session has a new stream after a lost one. */
  onReconnect?: (nick: string) => void;
}): SessionPool {
  const sessions = new Map<string, Session>();
  const createFor = (nick: string, rooms: Set<string>, passwords: ReadonlyMap<string, string>) =>
    createSession({
      settings: deps.settings,
      nick,
      rooms: [...rooms],
      passwords,
      log: deps.log.child({ nick }),
      timing: deps.timing,
      selfPingMs: deps.selfPingMs,
      unconfirmed: (room) => deps.unconfirmed?.(room, nick),
      onReconnect: () => deps.onReconnect?.(nick),
    });
  const initial = groupTargets(deps.routes);
  for (const [nick, rooms] of initial.roomsByNick) {
    sessions.set(nick, createFor(nick, rooms, initial.passwords));
  }
  const random = deps.random ?? deps.timing?.random ?? Math.random;
  let stopped = false;
  const timers = new Set<NodeJS.Timeout>();

  async function keepStarting(session: Session, attempt: number): Promise<void> {
    try {
      await session.start();
    } catch (err) {
      if (stopped || session.online) return; // online: a room refused us; it retries itself
      const delay = backoffDelay(attempt, random, deps.timing?.backoff);
      deps.log.error(
        { nick: session.nick, retryInMs: delay },
        `XMPP session for ${session.nick} failed: ${(err as Error).message}`,
      );
      const timer = setTimeout(() => {
        timers.delete(timer);
        keepStarting(session, attempt + 1).catch(() => {});
      }, delay);
      timers.add(timer);
      throw err;
    }
  }

  return {
    sessions,
    async start() {
      await Promise.allSettled([...sessions.values()].map((s) => keepStarting(s, 0)));
    },
    async stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      await Promise.allSettled([...sessions.values()].map((s) => s.stop()));
    },
    extend(routes) {
      const wanted = groupTargets(routes);
      const added: Session[] = [];
      for (const [nick, rooms] of wanted.roomsByNick) {
        const existing = sessions.get(nick);
        if (existing) {
          for (const room of rooms) existing.joinRoom(room, wanted.passwords.get(room));
          continue;
        }
        const session = createFor(nick, rooms, wanted.passwords);
        sessions.set(nick, session);
        added.push(session);
        if (!stopped) keepStarting(session, 0).catch(() => {});
      }
      return added;
    },
    readiness() {
      const list = [...sessions.values()].map((s) => ({
        nick: s.nick,
        online: s.online,
        lastError: s.lastError ?? null,
        rooms: [...s.rooms.values()].map((r) => ({
          room: r.room,
          state: r.phase,
          lastError: r.lastError ?? null,
        })),
      }));
      const ready = list.every((s) => s.online && s.rooms.every((r) => r.state === "joined"));
      return { ready, sessions: list };
    },
  };
}
