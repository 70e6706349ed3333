/**
 * Accepting one post: render it, spool one message per target (durably, before any
 * reply), hand it to the loop and wait a little for the rooms to confirm.
 */
import { randomUUID } from "node:crypto";
import { GatewayError } from "../core/errors.ts";
import type { Accepted, PostBody, Preview } from "../core/post.ts";
import { laneOf, type Route } from "../core/routes.ts";
import { splitMessage } from "../core/split.ts";
import { xmlSafe } from "../core/xml-safe.ts";
import type { NewMessage, Spool } from "../spool/types.ts";
import type { DeliveryLoop } from "./loop.ts";

/** Turns a post into message texts in the route's format (one message each). */
export type Renderer = (route: Route, body: PostBody) => string[];

/** How a post becomes the texts that are sent: render, make XML-safe, split to size. */
export interface Preparation {
  render: Renderer;
  /** Body bytes a message may have now: MAX_MESSAGE_BYTES, lowered to the server's (XEP-0478). */
  maxMessageBytes: () => number;
  /** Parts a too-long text may be split into (`MAX_MESSAGE_PARTS`); more is a 413. */
  maxMessageParts: number;
}

/** The texts a post becomes, as they will be sent; throws the 400/413 a caller must see. */
export function prepareTexts(deps: Preparation, route: Route, body: PostBody): string[] {
  // XML 1.0 §2.2-safe and split to what the server accepts: a 413 before anything is spooled.
  const maxBytes = deps.maxMessageBytes();
  return deps
    .render(route, body)
    .flatMap((text) => splitMessage(xmlSafe(text), maxBytes, deps.maxMessageParts));
}

/** `?dry_run=1`: the messages a post would become, and where they would go. */
export function createPreview(deps: Preparation): (route: Route, body: PostBody) => Preview {
  return (route, body) => ({
    messages: prepareTexts(deps, route, body).flatMap((text) =>
      route.targets.map((t) =>
        t.kind === "room" ? { to: t.room, nick: t.nick, body: text } : { to: t.jid, body: text },
      ),
    ),
  });
}

/** Creates the `accept` function the HTTP edge calls. */
export function createAccept(
  deps: Preparation & {
    spool: Spool;
    loop: DeliveryLoop;
    waitMs: number;
    /** True once shutdown began: new posts get 503 so the caller retries elsewhere or later. */
    isShuttingDown: () => boolean;
    /** Told how many messages of a route were just spooled (the accepted-messages metric). */
    onAccepted?: (route: string, count: number) => void;
  },
): (route: Route, body: PostBody, opts: { wait: boolean }) => Promise<Accepted> {
  return async (route, body, opts) => {
    if (deps.isShuttingDown()) {
      throw new GatewayError("SHUTTING_DOWN", "the gateway is shutting down; retry shortly", {
        retryAfter: 5,
      });
    }
    const texts = prepareTexts(deps, route, body);
    const postId = randomUUID();
    const count = texts.length * route.targets.length;
    // Each message gets its own stanza id: the room reflects it back as the confirmation.
    const messages: NewMessage[] = texts.flatMap((text, i) =>
      route.targets.map((t, j) => ({
        postId,
        id: count === 1 ? postId : `${postId}.${i * route.targets.length + j}`,
        route: route.name,
        ...laneOf(t),
        body: text,
      })),
    );
    // No point waiting for a confirmation that cannot come soon: reply 202 at once.
    const canWait = opts.wait && messages.every((m) => deps.loop.expectsOutcome(m));
    const waiter = deps.loop.waitFor(
      messages.map((m) => m.id),
      canWait ? deps.waitMs : 0,
    );
    try {
      await deps.spool.enqueue(messages);
    } catch (err) {
      waiter.cancel();
      throw err;
    }
    deps.onAccepted?.(route.name, messages.length);
    for (const m of messages) deps.loop.kick(m);
    const outcome = await waiter.result;
    if (outcome.status === "failed") {
      const partly =
        outcome.delivered > 0
          ? ` (delivered to ${outcome.delivered} of ${messages.length} targets)`
          : "";
      throw new GatewayError(
        "DELIVERY_REFUSED",
        `not delivered${partly}, kept as a dead letter (id ${postId}): ${outcome.reasons.join("; ")}`,
      );
    }
    return { id: postId, status: outcome.status };
  };
}
