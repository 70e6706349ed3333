// Shared by src/delivery/accept.test.ts and accept-preview.test.ts: the Alertmanager
// fixtures as parsed bodies, a route, the preparation, a memory spool and anchors.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { alertGroupOf, threadKey } from "../../src/core/alert-group.ts";
import type { PostBody } from "../../src/core/post.ts";
import { renderPost } from "../../src/core/render/index.ts";
import type { Route, Target } from "../../src/core/routes.ts";
import type { Preparation } from "../../src/delivery/accept.ts";
import { createMemorySpool } from "../../src/spool/memory.ts";
import type { Spool } from "../../src/spool/types.ts";
import { LANE } from "./delivery-harness.ts";
export const DAY = 86_400_000;
export const ROOM: Target = { kind: "room", room: LANE.room, nick: LANE.nick };
export const OTHER_ROOM: Target = { kind: "room", room: "s@c", nick: "bot" };
export const USER_JID = "alice@example.org";
export const USER: Target = { kind: "user", jid: USER_JID };

/** A fixture as the body parser hands it over: a fresh copy each time. */
export function fixture(name: string): Extract<PostBody, { kind: "json" }> {
  const source = readFileSync(new URL(`../fixtures/${name}`, import.meta.url), "utf8");
  return { kind: "json", value: JSON.parse(source), source };
}
export const firing = () => fixture("alertmanager-firing.json");
export const resolved = () => fixture("alertmanager-resolved.json");
export const plain = (text: string): PostBody => ({ kind: "text", text });

export function route(targets: readonly Target[], more: Partial<Route> = {}): Route {
  return { name: "am", tokens: ["secret"], targets, format: "auto", ...more };
}

/** The thread every notification of the fixtures' group is in, on route "am". */
export const THREAD = threadKey("am", alertGroupOf(firing().value)?.groupKey ?? "");

/** The one text a post renders to on `r`. */
export function textOf(r: Route, body: PostBody): string {
  const texts = renderPost(r, body);
  assert.equal(texts.length, 1);
  return texts[0] as string;
}

export function preparation(now: () => number, more: Partial<Preparation> = {}): Preparation {
  return {
    render: renderPost,
    maxMessageBytes: () => 10_000,
    maxMessageParts: 4,
    dedupeWindowMs: DAY,
    now,
    ...more,
  };
}

export function memorySpool(): Spool {
  return createMemorySpool({ limits: { maxMessages: 1000, maxBytes: 1_000_000 } });
}

/** Records `room`'s anchor of the fixtures' group and waits for its commit. */
export async function anchored(spool: Spool, room: string, stanzaId: string): Promise<void> {
  await spool.recordAnchor(room, THREAD, {
    stanzaId,
    occupant: `${room}/bot`,
    quote: "🔥 FIRING (2) · InstanceDown",
  });
}
