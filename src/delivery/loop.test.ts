// The delivery loop's decisions about messages, read off the fake carrier's transcript and
// the memory spool: order and window, confirmations, refusals, reconnects, TTL, drain.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  delayOf,
  harness,
  ids,
  LANE,
  sends,
  sequence,
  tick,
} from "../../test/support/delivery-harness.ts";

const WAIT = { type: "wait", condition: "resource-constraint", text: undefined };

test("the default window is 128 messages in flight per lane", async () => {
  const h = harness();
  await h.online();
  await h.put(LANE, ...ids(1, 130));
  assert.deepEqual(h.carrier.take(), sends(LANE, ...ids(1, 128)));
});

test("a lane sends in order, a window at a time (32 here); the 33rd goes out once confirmations come", async () => {
  const h = harness({ window: 32 });
  await h.online();
  await h.put(LANE, ...ids(1, 33));
  assert.deepEqual(h.carrier.take(), sends(LANE, ...ids(1, 32)));
  assert.equal(h.loop.inFlight(), 32);
  await h.carrier.confirmed(LANE, ...ids(1, 7));
  assert.deepEqual(h.carrier.take(), [], "no claim for fewer than a quarter window");
  await h.carrier.confirmed(LANE, "m8");
  assert.deepEqual(h.carrier.take(), sends(LANE, "m33"));
});

test("under load the window is refilled in batches of a quarter window, in order", async () => {
  const h = harness({ window: 32 });
  await h.online();
  await h.put(LANE, ...ids(1, 60));
  assert.deepEqual(h.carrier.take(), sends(LANE, ...ids(1, 32)));
  await h.carrier.confirmed(LANE, ...ids(1, 8));
  assert.deepEqual(h.carrier.take(), sends(LANE, ...ids(33, 40)));
  await h.carrier.confirmed(LANE, ...ids(9, 15));
  assert.deepEqual(h.carrier.take(), []);
  await h.carrier.confirmed(LANE, "m16");
  assert.deepEqual(h.carrier.take(), sends(LANE, ...ids(41, 48)));
});

test("confirmed: removed from the spool, the waiter hears delivered, an echo changes nothing", async () => {
  const h = harness();
  await h.online();
  const w = h.loop.waitFor(["m1"], 5000);
  await h.put(LANE, "m1", "m2");
  await h.carrier.confirmed(LANE, "m1");
  assert.deepEqual(await w.result, { status: "delivered" });
  await h.carrier.confirmed(LANE, "m1");
  assert.deepEqual(await h.queued(), ["m2"]);
  assert.deepEqual(h.seen, ["delivered m1"]);
  assert.equal(h.loop.inFlight(), 1);
});

test("refused for good (cancel/forbidden): dead-lettered once, the waiter hears failed", async () => {
  const h = harness();
  await h.online();
  const w = h.loop.waitFor(["m1", "m2"], 5000);
  await h.put(LANE, "m1", "m2");
  h.carrier.take();
  const forbidden = { type: "cancel", condition: "forbidden", text: "no posting" };
  await h.carrier.refused(LANE, "m1", forbidden);
  await h.carrier.refused(LANE, "m1", forbidden);
  await h.carrier.confirmed(LANE, "m2");
  const reason = "r@c refused the message: forbidden (no posting)";
  assert.deepEqual(await w.result, { status: "failed", reasons: [reason], delivered: 1 });
  assert.deepEqual(await h.dead(), [`m1: ${reason}`]);
  assert.deepEqual(h.seen, [`failed m1: ${reason}`, "delivered m2"]);
  assert.deepEqual(h.carrier.take(), [], "not resent");
});

test("resource-constraint: resent after the slow-down backoff from the random source, never dead", async () => {
  const h = harness({ random: sequence(0, 1) });
  await h.online();
  await h.put(LANE, "m1", "m2");
  h.carrier.take();
  await h.carrier.refused(LANE, "m1", WAIT);
  // A slow-down starts two doublings up: attempt 2 (cap 4 s), random 0 → 2 s.
  assert.equal(
    delayOf(2, () => 0),
    2000,
  );
  await h.advance(1999);
  assert.deepEqual(h.carrier.take(), []);
  await h.advance(1);
  assert.deepEqual(h.carrier.take(), sends(LANE, "m1"), "m2 is still in flight: not resent");
  await h.carrier.refused(LANE, "m1", WAIT);
  await h.advance(delayOf(3, () => 1) - 1); // attempt 3 (cap 8 s), random 1 → 8 s
  assert.deepEqual(h.carrier.take(), []);
  await h.advance(1);
  assert.deepEqual(h.carrier.take(), sends(LANE, "m1"));
  await h.carrier.confirmed(LANE, "m1", "m2");
  assert.deepEqual(await h.dead(), []);
  assert.deepEqual(await h.queued(), []);
});

test("policy-violation with rate-limit words is a slow-down: resent, not dead-lettered", async () => {
  const h = harness();
  await h.online();
  await h.put(LANE, "m1");
  h.carrier.take();
  const limited = { type: "modify", condition: "policy-violation", text: "Rate limit exceeded" };
  await h.carrier.refused(LANE, "m1", limited);
  assert.deepEqual(h.clock.pending(), [delayOf(2)]);
  await h.advance(delayOf(2));
  assert.deepEqual(h.carrier.take(), sends(LANE, "m1"));
  assert.deepEqual(await h.dead(), []);
  assert.match(h.seen[0] ?? "", /^retried m1: r@c refused the message: policy-violation/);
});

test("remote-server-timeout (even typed cancel) is resent after backoffDelay(0)", async () => {
  const h = harness();
  await h.online();
  await h.put(LANE, "m1");
  h.carrier.take();
  await h.carrier.refused(LANE, "m1", {
    type: "cancel",
    condition: "remote-server-timeout",
    text: "",
  });
  await h.advance(delayOf(0) - 1);
  assert.deepEqual(h.carrier.take(), []);
  await h.advance(1);
  assert.deepEqual(h.carrier.take(), sends(LANE, "m1"));
  assert.deepEqual(await h.dead(), []);
});

test("session down: in-flight forgotten, reconnect after backoffDelay(0), rejoin looks for the unconfirmed", async () => {
  const h = harness();
  await h.online();
  const w = h.loop.waitFor(["m3"], 60_000);
  const stored = await h.put(LANE, ...ids(1, 4));
  await h.carrier.confirmed(LANE, "m1");
  await tick();
  h.carrier.take();
  await h.carrier.down("bot", { kind: "network", text: "connection reset" });
  assert.equal(h.loop.inFlight(), 0);
  assert.equal(h.loop.expectsOutcome(LANE), false);
  await h.advance(delayOf(0) - 1);
  assert.deepEqual(h.carrier.take(), []);
  await h.advance(1);
  assert.deepEqual(h.carrier.take(), ["connect bot"]);
  await h.carrier.up("bot");
  assert.deepEqual(h.carrier.take(), ["join r@c bot look m2 m3 m4"]);
  assert.equal(h.carrier.lookFors.at(-1)?.since, stored[1]?.createdAt);
  await h.carrier.joined(LANE, ["m3"]);
  assert.deepEqual(h.carrier.take(), sends(LANE, "m2", "m4"), "m3 was found: not resent");
  assert.deepEqual(await w.result, { status: "delivered" });
  assert.deepEqual(await h.queued(), ["m2", "m4"]);
});

test("rejoin with a send mark: only the messages at or below it are looked for; none: no look at all", async () => {
  let upto = 0;
  const h = harness({ sentUpTo: () => upto });
  await h.online();
  const stored = await h.put(LANE, ...ids(1, 4));
  h.carrier.take();
  upto = stored[1]?.seq ?? 0; // m1 and m2 were claimed by a sender, m3 and m4 never
  await h.carrier.down("bot", { kind: "network", text: "connection reset" });
  await h.advance(delayOf(0));
  await h.carrier.up("bot");
  assert.deepEqual(h.carrier.take(), ["connect bot", "join r@c bot look m1 m2"]);
  assert.equal(h.carrier.lookFors.at(-1)?.since, stored[0]?.createdAt);
  await h.carrier.joined(LANE, ["m1"]);
  assert.deepEqual(h.carrier.take(), sends(LANE, "m2", "m3", "m4"), "m1 was found: not resent");

  upto = 0; // as if no sender had ever claimed them
  await h.carrier.down("bot", { kind: "network", text: "connection reset" });
  await h.advance(delayOf(1));
  await h.carrier.up("bot");
  assert.deepEqual(h.carrier.take(), ["connect bot", "join r@c bot"]);
});

test("rejoin after a backlog: the archive is read from when the mark covered the oldest unconfirmed, not from when it was accepted", async () => {
  const h = harness();
  h.loop.start();
  const stored = await h.put(LANE, "m1", "m2"); // queued while offline
  await h.advance(600_000);
  const claimedAt = h.clock.now();
  await h.carrier.up("bot");
  await h.carrier.joined(LANE);
  assert.deepEqual(h.carrier.take(), ["connect bot", "join r@c bot", ...sends(LANE, "m1", "m2")]);
  await h.carrier.down("bot", { kind: "network", text: "connection reset" });
  await h.advance(delayOf(0));
  await h.carrier.up("bot");
  assert.deepEqual(h.carrier.take(), ["connect bot", "join r@c bot look m1 m2"]);
  assert.ok((stored[0]?.createdAt ?? 0) < claimedAt);
  assert.equal(h.carrier.lookFors.at(-1)?.since, claimedAt);
});

test("TTL: a message older than ttlMs is dead-lettered, not sent; a fresh one goes out", async () => {
  const h = harness({ ttlMs: 60_000 });
  h.loop.start();
  await h.put(LANE, "old");
  await h.advance(60_001);
  await h.put(LANE, "fresh");
  await h.carrier.up("bot");
  await h.carrier.joined(LANE);
  assert.deepEqual(h.carrier.take(), ["connect bot", "join r@c bot", ...sends(LANE, "fresh")]);
  assert.deepEqual(await h.dead(), ["old: not delivered within MESSAGE_TTL (60 s)"]);
});

test("TTL: expired messages do not take the window's places: fresh ones behind them go out at once", async () => {
  const h = harness({ ttlMs: 60_000 });
  h.loop.start();
  await h.put(LANE, ...ids(1, 40));
  await h.advance(60_001);
  await h.put(LANE, "fresh");
  await h.carrier.up("bot");
  await h.carrier.joined(LANE);
  assert.deepEqual(h.carrier.take().slice(2), sends(LANE, "fresh"));
  assert.equal((await h.dead()).length, 40);
});

test("drain: resolves when the last in-flight message is confirmed, and sends nothing new", {
  timeout: 2000,
}, async () => {
  const h = harness();
  await h.online();
  await h.put(LANE, "m1", "m2");
  h.carrier.take();
  let done = false;
  const drained = h.loop.drain(5000).then(() => (done = true));
  await h.put(LANE, "m3");
  await h.carrier.confirmed(LANE, "m1");
  await tick();
  assert.equal(done, false);
  await h.carrier.confirmed(LANE, "m2");
  await drained;
  assert.deepEqual(h.carrier.take(), [], "m3 stays in the spool");
  assert.deepEqual(await h.queued(), ["m3"]);
});

test("drain: resolves after grace ms when a confirmation never comes", {
  timeout: 2000,
}, async () => {
  const h = harness();
  await h.online();
  await h.put(LANE, "m1");
  let done = false;
  const drained = h.loop.drain(5000).then(() => (done = true));
  await h.advance(4999);
  await tick();
  assert.equal(done, false);
  await h.advance(1);
  await drained;
  assert.equal(h.loop.inFlight(), 1);
});

test("drain with nothing in flight resolves at once", { timeout: 2000 }, async () => {
  const h = harness();
  await h.online();
  await h.loop.drain(5000);
});
