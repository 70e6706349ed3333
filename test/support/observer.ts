/**
 * A second, real XMPP account in the rooms, recording exactly what arrives (body and
 * sender nick): the integration tests' witness.
 */

import type { ProsodyServer } from "../../src/devserver/prosody.ts";
import { createLogger } from "../../src/log.ts";
import type { ConnectionTiming } from "../../src/xmpp/connection.ts";
import { createSession, type RoomMessage, type Session } from "../../src/xmpp/session.ts";
import { configureTrust } from "../../src/xmpp/trust.ts";
import { clientSettings } from "./gateway.ts";

/** Reconnect fast in tests: 100 ms doubling to 1 s; pings every 2 s. */
export const FAST_TIMING: ConnectionTiming = {
  backoff: { baseMs: 100, maxMs: 1000 },
  random: Math.random,
  pingIntervalMs: 2000,
  pingTimeoutMs: 3000,
};

/** A joined observer and what it has seen. */
export interface Observer {
  readonly messages: RoomMessage[];
  /** Resolves with the first message (seen or future) matching `pred`; rejects after `ms`. */
  waitFor(pred: (m: RoomMessage) => boolean, ms?: number): Promise<RoomMessage>;
  /** The observer's own session, for room administration and archive queries. */
  readonly session: Session;
  stop(): Promise<void>;
}

/** Joins `rooms` as `user` (already registered) under the nick `watcher`. */
export async function observe(
  server: ProsodyServer,
  user: { user: string; password: string },
  rooms: string[],
  /** Distinct per concurrent observer: the nick also picks the XMPP resource. */
  nick = "watcher",
): Promise<Observer> {
  configureTrust(server.caFile); // process-wide, as in the gateway itself
  const messages: RoomMessage[] = [];
  const waiters = new Set<{
    pred: (m: RoomMessage) => boolean;
    resolve: (m: RoomMessage) => void;
  }>();
  const session = createSession({
    settings: clientSettings(server, user),
    nick,
    timing: FAST_TIMING,
    rooms,
    log: createLogger("fatal"),
    onRoomMessage: (m) => {
      messages.push(m);
      for (const w of waiters) {
        if (w.pred(m)) {
          waiters.delete(w);
          w.resolve(m);
        }
      }
    },
  });
  await session.start();
  return {
    messages,
    waitFor(pred, ms = 10_000) {
      const seen = messages.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = { pred, resolve };
        waiters.add(w);
        setTimeout(() => {
          if (waiters.delete(w))
            reject(
              new Error(`no matching message within ${ms} ms; seen: ${JSON.stringify(messages)}`),
            );
        }, ms).unref();
      });
    },
    session,
    stop: () => session.stop(),
  };
}
