/**
 * Delivery of one accepted post: render it, send it to every target through the
 * session of the target's nick, and wait (up to the configured time) for the rooms to
 * confirm. Nothing is sent unless every target can take it right now, so a caller told
 * 503 can simply retry without creating duplicates.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { GatewayError } from "../core/errors.ts";
import type { Accepted, PostBody } from "../core/post.ts";
import type { Route } from "../core/routes.ts";
import type { Session } from "../xmpp/session.ts";

/** Turns a post into message text in the route's format. */
export type Renderer = (route: Route, body: PostBody) => string;

/** Creates the `accept` function the HTTP edge calls. */
export function createDelivery(deps: {
  sessions: ReadonlyMap<string, Session>;
  render: Renderer;
  waitMs: number;
  log: Logger;
}): (route: Route, body: PostBody, opts: { wait: boolean }) => Promise<Accepted> {
  return async (route, body, opts) => {
    const text = deps.render(route, body);
    const plan = route.targets.map((target) => {
      const session = deps.sessions.get(target.nick);
      if (!session?.canSend(target.room)) {
        throw new GatewayError(
          "UNAVAILABLE",
          `not connected to ${target.room} as ${target.nick} yet; try again shortly`,
          {
            retryAfter: 5,
          },
        );
      }
      return { target, session };
    });
    const id = randomUUID();
    const sends = plan.map(({ target, session }, i) =>
      // Each target gets its own stanza id; the post's id names them all.
      session.sendToRoom(target.room, text, plan.length === 1 ? id : `${id}-${i}`),
    );
    const all = Promise.all(sends);
    all.catch((err) =>
      deps.log.warn(
        { route: route.name, id, err: (err as Error).message },
        "delivery not confirmed",
      ),
    );
    const waitMs = opts.wait ? deps.waitMs : 0;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"queued">((resolve) => {
      timer = setTimeout(() => resolve("queued"), waitMs);
    });
    try {
      const status = await Promise.race([all.then(() => "delivered" as const), timeout]);
      return { id, status };
    } finally {
      clearTimeout(timer);
    }
  };
}
