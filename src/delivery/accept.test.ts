// Accepting repeated posts (issue 13), over the delivery loop, the fake carrier and the
// fake clock: the first post's id and outcome, nothing stored or sent twice.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  firing,
  plain,
  preparation,
  ROOM,
  resolved,
  route,
} from "../../test/support/accept-fixtures.ts";
import { harness, LANE, tick } from "../../test/support/delivery-harness.ts";
import type { Accepted, AcceptOptions, PostBody } from "../core/post.ts";
import { createAccept, createPreview } from "./accept.ts";

/** The loop over the fake carrier (bot in r@c, online), and accept and preview over its spool. */
async function accepting(waitMs = 5000) {
  const h = harness();
  await h.online();
  const deps = { ...preparation(() => h.clock.now()), spool: h.spool };
  const accepted: Array<[string, number]> = [];
  const accept = createAccept({
    ...deps,
    loop: h.loop,
    waitMs,
    isShuttingDown: () => false,
    onAccepted: (r, count) => accepted.push([r, count]),
  });
  return { h, accept, accepted, preview: createPreview(deps), r: route([ROOM]) };
}

/** Whether `p` has settled, after the current microtasks. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await tick();
  return done;
}

/** Accepts without waiting: the commit, then the loop's 0 ms wait on the fake clock. */
async function acceptNow(
  t: Awaited<ReturnType<typeof accepting>>,
  body: PostBody,
  opts: Partial<AcceptOptions> = {},
): Promise<Accepted> {
  const p = t.accept(t.r, body, { wait: false, ...opts });
  await tick();
  t.h.clock.advance(0);
  return p;
}

describe("createAccept: repeated posts", () => {
  test("the same Idempotency-Key again: the first post's id, duplicate, nothing more stored or sent", async () => {
    const t = await accepting();
    const first = await acceptNow(t, plain("deploy done"), { idempotencyKey: "k1" });
    assert.deepEqual(first, { id: first.id, status: "queued" });
    assert.equal(t.h.spool.stats().messages, 1);
    const again = await acceptNow(t, plain("deploy done"), { idempotencyKey: "k1" });
    assert.deepEqual(again, { id: first.id, status: "queued", duplicate: true });
    // The key alone decides: another body with the same key is the same post.
    const other = await acceptNow(t, plain("something else"), { idempotencyKey: "k1" });
    assert.deepEqual(other, { id: first.id, status: "queued", duplicate: true });
    assert.equal(t.h.spool.stats().messages, 1, "nothing more stored");
    assert.deepEqual(t.h.carrier.take(), [`send ${LANE.room} ${LANE.nick} ${first.id}`]);
    assert.deepEqual(t.accepted, [["am", 1]], "a repeat is not counted as accepted");
    // Once delivered (and committed), a repeat says so at once.
    t.h.carrier.confirmed(LANE, first.id);
    await tick();
    assert.equal(t.h.spool.stats().messages, 0);
    const later = t.accept(t.r, plain("deploy done"), { wait: true, idempotencyKey: "k1" });
    assert.equal(await settled(later), true, "no wait on the clock");
    assert.deepEqual(await later, { id: first.id, status: "delivered", duplicate: true });
    assert.deepEqual(t.h.spool.stats().messages, 0);
    assert.deepEqual(t.h.carrier.take(), []);
  });

  test("a key is the route's: the same key on another route is a new post", async () => {
    const t = await accepting();
    const first = await acceptNow(t, plain("x"), { idempotencyKey: "k1" });
    const p = t.accept(route([ROOM], { name: "other" }), plain("x"), {
      wait: false,
      idempotencyKey: "k1",
    });
    await tick();
    t.h.clock.advance(0);
    const second = await p;
    assert.notEqual(second.id, first.id);
    assert.equal(second.duplicate, undefined);
    assert.equal(t.h.spool.stats().messages, 2);
  });

  test("two identical alert notifications at once (two Alertmanagers): one stored post, one id", async () => {
    const t = await accepting();
    const both = Promise.all([
      t.accept(t.r, firing(), { wait: true }),
      t.accept(t.r, firing(), { wait: true }),
    ]);
    await tick(); // one group commit holds both claims: the second is the duplicate
    assert.equal(t.h.spool.stats().messages, 1);
    const sent = t.h.carrier.take();
    assert.equal(sent.length, 1, sent.join("\n"));
    const id = sent[0]?.split(" ").at(-1) ?? "";
    t.h.carrier.confirmedAs(LANE, id, "sid-1");
    const [a, b] = await both;
    assert.deepEqual(a, { id, status: "delivered" });
    assert.deepEqual(b, { id, status: "delivered", duplicate: true });
    await tick(); // the anchor's commit
    assert.deepEqual((await t.preview(t.r, firing())).dedupe, {
      by: "alert content",
      duplicate_of: id,
    });
    assert.equal((await t.preview(t.r, firing())).messages[0]?.reply_to, "sid-1");
  });

  test("two identical resolved notifications at once: one reply, one ✅ (held back without an anchor)", async () => {
    const t = await accepting();
    const both = Promise.all([
      t.accept(t.r, resolved(), { wait: true }),
      t.accept(t.r, resolved(), { wait: true }),
    ]);
    await tick();
    const sent = t.h.carrier.take();
    assert.equal(sent.length, 1, "the text; the reaction has nothing to react to yet");
    const id = sent[0]?.split(" ").at(-1) ?? "";
    assert.match(id, /\.0$/, "two messages: the text and the ✅");
    t.h.carrier.confirmed(LANE, id);
    const [a, b] = await both;
    const postId = id.slice(0, -2);
    assert.deepEqual(a, { id: postId, status: "delivered" });
    assert.deepEqual(b, { id: postId, status: "delivered", duplicate: true });
    await tick(); // the outcomes' commit
    assert.equal(t.h.spool.stats().messages, 0);
  });

  test("dry run: duplicate_of once the same post was accepted", async () => {
    const t = await accepting();
    assert.deepEqual((await t.preview(t.r, plain("x"), "k1")).dedupe, { by: "Idempotency-Key" });
    const first = await acceptNow(t, plain("x"), { idempotencyKey: "k1" });
    assert.deepEqual((await t.preview(t.r, plain("x"), "k1")).dedupe, {
      by: "Idempotency-Key",
      duplicate_of: first.id,
    });
    assert.deepEqual((await t.preview(t.r, plain("x"), "k2")).dedupe, { by: "Idempotency-Key" });
    const alert = await acceptNow(t, resolved());
    assert.deepEqual((await t.preview(t.r, resolved())).dedupe, {
      by: "alert content",
      duplicate_of: alert.id,
    });
    assert.deepEqual(
      (await t.preview(t.r, firing())).dedupe,
      { by: "alert content" },
      "another status",
    );
  });

  test("a repeat of a post still queued waits for it: delivered when confirmed within the wait", async () => {
    const t = await accepting(5000);
    const p1 = t.accept(t.r, plain("x"), { wait: true, idempotencyKey: "k1" });
    await tick();
    const [send] = t.h.carrier.take();
    const id = send?.split(" ").at(-1) ?? "";
    t.h.clock.advance(5000);
    assert.deepEqual(await p1, { id, status: "queued" }, "not confirmed within the wait");
    const p2 = t.accept(t.r, plain("x"), { wait: true, idempotencyKey: "k1" });
    await tick();
    t.h.clock.advance(4999);
    assert.equal(await settled(p2), false, "it waits");
    t.h.carrier.confirmed(LANE, id);
    assert.deepEqual(await p2, { id, status: "delivered", duplicate: true });
    assert.deepEqual(t.h.carrier.take(), [], "nothing sent again");
  });

  test("a repeat that crosses its first post's confirmation (not yet committed): delivered at once", async () => {
    const t = await accepting(5000);
    const first = await acceptNow(t, plain("x"), { idempotencyKey: "k1" });
    const again = t.accept(t.r, plain("x"), { wait: true, idempotencyKey: "k1" });
    // Confirmed after the repeat's claim was queued: its commit still lists the message
    // as queued, and the loop knows it is delivered.
    t.h.carrier.confirmed(LANE, first.id);
    assert.equal(await settled(again), true, "no wait on the clock");
    assert.deepEqual(await again, { id: first.id, status: "delivered", duplicate: true });
  });

  test("a repeat of a post that was dead-lettered: its id, 202, and nothing sent again", async () => {
    const t = await accepting();
    const p1 = t.accept(t.r, plain("x"), { wait: true, idempotencyKey: "k1" });
    await tick();
    const [send] = t.h.carrier.take();
    const id = send?.split(" ").at(-1) ?? "";
    t.h.carrier.refused(LANE, id, { type: "cancel", condition: "forbidden", text: undefined });
    await assert.rejects(p1, { code: "DELIVERY_REFUSED" });
    assert.equal((await t.h.dead()).length, 1);
    const again = await acceptNow(t, plain("x"), { idempotencyKey: "k1" });
    assert.deepEqual(again, { id, status: "queued", duplicate: true });
    assert.deepEqual(t.h.carrier.take(), []);
  });

  test("a repeat of a post still queued: queued when the wait ends first", async () => {
    const t = await accepting(5000);
    const p1 = t.accept(t.r, plain("x"), { wait: true, idempotencyKey: "k1" });
    await tick();
    t.h.clock.advance(5000);
    const first = await p1;
    const p2 = t.accept(t.r, plain("x"), { wait: true, idempotencyKey: "k1" });
    await tick();
    t.h.clock.advance(4999);
    assert.equal(await settled(p2), false, "it waits the whole DELIVERY_WAIT");
    t.h.clock.advance(1);
    assert.deepEqual(await p2, { id: first.id, status: "queued", duplicate: true });
    assert.equal(t.h.spool.stats().messages, 1);
  });
});
