/**
 * Accepting one post: render it, spool one message per target (durably, before any
 * reply) unless it repeats an earlier post, hand it to the loop and wait a little for the
 * rooms to confirm.
 */
import { type AlertGroup, alertGroupOf, contentKey, threadKey } from "../core/alert-group.ts";
import { GatewayError } from "../core/errors.ts";
import { timeOrderedId } from "../core/ids.ts";
import type { Accepted, AcceptOptions, PostBody, Preview } from "../core/post.ts";
import { laneOf, type Route } from "../core/routes.ts";
import { splitMessage } from "../core/split.ts";
import { xmlSafe } from "../core/xml-safe.ts";
import type { AlertThread, DedupeClaim, EnqueueOnce, NewMessage, Spool } from "../spool/types.ts";
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
  /** How long a dedupe key is remembered (`DEDUPE_WINDOW`); 0: no de-duplication. */
  dedupeWindowMs: number;
  now: () => number;
}

/** What a resolved alert group's first message gets (XEP-0444). */
export const RESOLVED_REACTION = "✅";

/** The texts a post becomes, as they will be sent; throws the 400/413 a caller must see. */
export function prepareTexts(deps: Preparation, route: Route, body: PostBody): string[] {
  // XML 1.0 §2.2-safe and split to what the server accepts: a 413 before anything is spooled.
  const maxBytes = deps.maxMessageBytes();
  return deps
    .render(route, body)
    .flatMap((text) => splitMessage(xmlSafe(text), maxBytes, deps.maxMessageParts));
}

/** What the spool says of an earlier post that a new one repeats. */
type Repeat = Extract<EnqueueOnce, { duplicate: true }>;

/** A post's messages before they have ids, and its dedupe key. */
interface Plan {
  readonly messages: ReadonlyArray<Omit<NewMessage, "id" | "postId">>;
  readonly dedupe?: { readonly key: string; readonly by: "Idempotency-Key" | "alert content" };
}

/** The alert group a post is, if it is an Alertmanager or Grafana notification. */
const groupOf = (body: PostBody): AlertGroup | undefined =>
  body.kind === "json" ? alertGroupOf(body.value) : undefined;

/** What a post becomes: a message per text and target, a ✅ per room when a group resolved. */
function planPost(deps: Preparation, route: Route, body: PostBody, idempotencyKey?: string): Plan {
  const texts = prepareTexts(deps, route, body);
  const group = groupOf(body);
  const thread: AlertThread | undefined = group && {
    group: threadKey(route.name, group.groupKey),
    status: group.status,
  };
  const messages: Array<Plan["messages"][number]> = texts.flatMap((text) =>
    // Threads are a room's: a direct message has no stanza-id of the room to answer.
    route.targets.map((t) => ({
      route: route.name,
      ...laneOf(t),
      body: text,
      ...(thread && t.kind === "room" && { thread }),
    })),
  );
  if (thread?.status === "resolved") {
    for (const t of route.targets) {
      if (t.kind !== "room") continue;
      messages.push({
        route: route.name,
        ...laneOf(t),
        body: RESOLVED_REACTION,
        thread,
        kind: "reaction",
      });
    }
  }
  if (route.dedupe === false || deps.dedupeWindowMs === 0) return { messages };
  if (idempotencyKey !== undefined) {
    return {
      messages,
      dedupe: { key: `idempotency-key:${idempotencyKey}`, by: "Idempotency-Key" },
    };
  }
  if (group) {
    return {
      messages,
      dedupe: { key: `alert:${contentKey(route.name, group)}`, by: "alert content" },
    };
  }
  return { messages };
}

/** `?dry_run=1`: the messages a post would become, where they would go, and how. */
export function createPreview(
  deps: Preparation & { spool: Spool },
): (route: Route, body: PostBody, idempotencyKey?: string) => Promise<Preview> {
  return async (route, body, idempotencyKey) => {
    const plan = planPost(deps, route, body, idempotencyKey);
    const shown = await Promise.all(
      plan.messages.map(async (m) => {
        const to = route.targets.find((t) => (t.kind === "room" ? t.room : t.jid) === m.room);
        const where = to?.kind === "user" ? { to: m.room } : { to: m.room, nick: m.nick };
        if (!m.thread) return [{ ...where, body: m.body }];
        const anchor = await deps.spool.anchor(m.room, m.thread.group);
        const fresh = !anchor || (anchor.resolvedAt !== undefined && m.thread.status === "firing");
        // A reaction goes out only to a first message on record (the loop skips it otherwise).
        if (m.kind === "reaction") {
          if (!anchor) return [];
          const reaction = { thread: m.thread.group, reaction: m.body, reply_to: anchor.stanzaId };
          return [{ ...where, body: m.body, ...reaction }];
        }
        if (fresh) return [{ ...where, body: m.body, thread: m.thread.group }];
        const reply = { reply_to: anchor.stanzaId, fallback: `> ${anchor.quote}` };
        return [{ ...where, body: m.body, thread: m.thread.group, ...reply }];
      }),
    );
    const messages = shown.flat();
    if (!plan.dedupe) return { messages };
    const earlier = await deps.spool.claimed(route.name, plan.dedupe.key);
    return {
      messages,
      dedupe: { by: plan.dedupe.by, ...(earlier !== undefined && { duplicate_of: earlier }) },
    };
  };
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
): (route: Route, body: PostBody, opts: AcceptOptions) => Promise<Accepted> {
  /** The reply to a post that repeats an earlier one: that post's id, 200 once all of it is delivered, else 202. */
  async function repeated(first: Repeat, wait: boolean): Promise<Accepted> {
    const reply = (status: Accepted["status"]): Accepted => ({
      id: first.postId,
      status,
      duplicate: true,
    });
    if (first.dead.length > 0) return reply("queued");
    // Confirmed but not yet committed as such: delivered.
    const pending = first.pending.filter((id) => !deps.loop.isSettled(id));
    if (pending.length === 0) return reply("delivered");
    const outcome = await deps.loop.waitFor(pending, wait ? deps.waitMs : 0).result;
    return reply(outcome.status === "delivered" ? "delivered" : "queued");
  }

  return async (route, body, opts) => {
    if (deps.isShuttingDown()) {
      throw new GatewayError("SHUTTING_DOWN", "the gateway is shutting down; retry shortly", {
        retryAfter: 5,
      });
    }
    const plan = planPost(deps, route, body, opts.idempotencyKey);
    const postId = timeOrderedId();
    const count = plan.messages.length;
    // Each message gets its own stanza id: the room reflects it back as the confirmation.
    const messages: NewMessage[] = plan.messages.map((m, i) => ({
      ...m,
      postId,
      id: count === 1 ? postId : `${postId}.${i}`,
    }));
    // No point waiting for a confirmation that cannot come soon: reply 202 at once.
    const wait = opts.wait && messages.every((m) => deps.loop.expectsOutcome(m));
    // Registered before the enqueue, so that no outcome can be missed.
    const waiter = deps.loop.waitFor(
      messages.map((m) => m.id),
      wait ? deps.waitMs : 0,
    );
    let first: Repeat | undefined;
    try {
      if (plan.dedupe === undefined) await deps.spool.enqueue(messages);
      else {
        const claim: DedupeClaim = {
          route: route.name,
          key: plan.dedupe.key,
          expiresAt: deps.now() + deps.dedupeWindowMs,
        };
        const stored = await deps.spool.enqueueOnce(messages, claim);
        if (stored.duplicate) first = stored;
      }
    } catch (err) {
      waiter.cancel();
      throw err;
    }
    if (first) {
      waiter.cancel();
      return repeated(first, wait);
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
