/**
 * A second, real XMPP account in the rooms, recording exactly what arrives (body and
 * sender nick): the integration tests' witness.
 */

import type { ProsodyServer } from "../../src/devserver/prosody.ts";
import { createLogger } from "../../src/log.ts";
import { createSession, type RoomMessage } from "../../src/xmpp/session.ts";
import { configureTrust } from "../../src/xmpp/trust.ts";

/** A joined observer and what it has seen. */
export interface Observer {
  readonly messages: RoomMessage[];
  /** Resolves with the first message (seen or future) matching `pred`; rejects after `ms`. */
  waitFor(pred: (m: RoomMessage) => boolean, ms?: number): Promise<RoomMessage>;
  stop(): Promise<void>;
}

/** Joins `rooms` as `user` (already registered) under the nick `watcher`. */
export async function observe(
  server: ProsodyServer,
  user: { user: string; password: string },
  rooms: string[],
): Promise<Observer> {
  configureTrust(server.caFile); // process-wide, as in the gateway itself
  const messages: RoomMessage[] = [];
  const waiters = new Set<{
    pred: (m: RoomMessage) => boolean;
    resolve: (m: RoomMessage) => void;
  }>();
  const session = createSession({
    settings: {
      jid: `${user.user}@${server.domain}`,
      password: user.password,
      domain: server.domain,
      host: server.host,
      port: server.c2sPort,
      tls: "starttls",
      caFile: server.caFile,
      logLevel: "warn",
    },
    nick: "watcher",
    rooms,
    log: createLogger("warn"),
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
    stop: () => session.stop(),
  };
}
