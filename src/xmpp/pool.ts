/**
 * The sender sessions of a configuration: one per distinct nick, each joined to the
 * rooms it sends to. Starting never blocks the gateway: a session that cannot connect
 * keeps trying with jittered backoff while HTTP answers 503 for its rooms.
 */
import type { Logger } from "pino";
import type { XmppSettings } from "../config/index.ts";
import { backoffDelay } from "../core/backoff.ts";
import type { Route } from "../core/routes.ts";
import { createSession, type Session } from "./session.ts";

/** All sessions of the gateway, by nick. */
export interface SessionPool {
  readonly sessions: ReadonlyMap<string, Session>;
  /** Starts every session; resolves when each is online or has failed its first attempt. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Groups route targets by nick and creates one session per nick. */
export function createSessionPool(deps: {
  settings: XmppSettings;
  routes: readonly Route[];
  log: Logger;
  random?: () => number;
}): SessionPool {
  const roomsByNick = new Map<string, Set<string>>();
  for (const route of deps.routes) {
    for (const t of route.targets) {
      const set = roomsByNick.get(t.nick) ?? new Set<string>();
      set.add(t.room);
      roomsByNick.set(t.nick, set);
    }
  }
  const sessions = new Map<string, Session>();
  for (const [nick, rooms] of roomsByNick) {
    sessions.set(
      nick,
      createSession({
        settings: deps.settings,
        nick,
        rooms: [...rooms],
        log: deps.log.child({ nick }),
      }),
    );
  }
  const random = deps.random ?? Math.random;
  let stopped = false;
  const timers = new Set<NodeJS.Timeout>();

  async function keepStarting(session: Session, attempt: number): Promise<void> {
    try {
      await session.start();
    } catch (err) {
      if (stopped) return;
      const delay = backoffDelay(attempt, random);
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
  };
}
