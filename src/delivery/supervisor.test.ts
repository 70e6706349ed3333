// The supervisor's decisions, through the loop: when to reconnect and rejoin, and whether
// a room's refusal is for good (seen twice) so that its messages are dead letters.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  delayOf,
  type Harness,
  harness,
  LANE,
  sends,
  tick,
} from "../../test/support/delivery-harness.ts";
import type { RoomFault } from "./port.ts";
import { JOIN_TIMEOUT_MS, STABLE_MS } from "./supervisor.ts";

const RESET = { kind: "network", text: "connection refused" } as const;
const KICKED: RoomFault = { kind: "kicked", text: "kicked" };
const BANNED: RoomFault = { kind: "banned", text: "banned from the room" };
const MEMBERS_ONLY: RoomFault = {
  kind: "refused",
  stanza: { type: "auth", condition: "registration-required", text: undefined },
  text: "registration-required",
};
const NICK_TAKEN: RoomFault = {
  kind: "refused",
  stanza: { type: "cancel", condition: "conflict", text: "nickname in use" },
  text: "conflict (nickname in use)",
};

/** Asserts that `expected` comes exactly `ms` from now, not a millisecond sooner. */
async function after(h: Harness, ms: number, expected: string[]): Promise<void> {
  if (ms > 0) {
    await h.advance(ms - 1);
    assert.deepEqual(h.carrier.take(), [], `nothing before ${ms} ms`);
  }
  await h.advance(ms > 0 ? 1 : 0);
  assert.deepEqual(h.carrier.take(), expected, `after ${ms} ms`);
}

test("failed connects back off further each time; a stream up < STABLE_MS does not reset it", async () => {
  const h = harness();
  h.loop.start();
  assert.deepEqual(h.carrier.take(), ["connect bot"]);
  for (const attempt of [0, 1, 2]) {
    await h.carrier.down("bot", RESET);
    await after(h, delayOf(attempt), ["connect bot"]);
  }
  await h.carrier.up("bot");
  await h.carrier.joined(LANE);
  await h.advance(STABLE_MS - 1);
  await h.carrier.down("bot", RESET);
  assert.deepEqual(h.clock.pending(), [delayOf(3)]);
});

test("a stream that stayed up STABLE_MS starts the backoff anew", async () => {
  const h = harness();
  h.loop.start();
  h.carrier.take();
  for (const attempt of [0, 1]) {
    await h.carrier.down("bot", RESET);
    await after(h, delayOf(attempt), ["connect bot"]);
  }
  await h.carrier.up("bot");
  h.carrier.take();
  await h.advance(STABLE_MS);
  await h.carrier.down("bot", RESET);
  await after(h, delayOf(0), ["connect bot"]);
});

test("kicked: rejoin at once; kicked again soon after: backoff; joined STABLE_MS: at once again", async () => {
  const h = harness();
  await h.online();
  await h.put(LANE, "m1");
  h.carrier.take();
  await h.carrier.left(LANE, KICKED);
  assert.equal(h.loop.inFlight(), 0);
  await after(h, 0, ["join r@c bot look m1"]);
  await h.carrier.joined(LANE);
  assert.deepEqual(h.carrier.take(), sends(LANE, "m1"));
  await h.carrier.left(LANE, KICKED);
  await after(h, delayOf(1), ["join r@c bot look m1"]);
  await h.carrier.joined(LANE);
  await h.carrier.confirmed(LANE, "m1");
  h.carrier.take();
  await h.advance(STABLE_MS);
  await h.carrier.left(LANE, KICKED);
  await after(h, 0, ["join r@c bot"]);
  assert.deepEqual(await h.dead(), []);
});

test("kicked again while rejoining: backoff", async () => {
  const h = harness();
  await h.online();
  await h.carrier.left(LANE, KICKED);
  await after(h, 0, ["join r@c bot"]);
  await h.carrier.left(LANE, KICKED);
  await after(h, delayOf(1), ["join r@c bot"]);
});

test("banned twice: pending messages dead-lettered exactly once, also with several left in one tick", async () => {
  const h = harness();
  await h.online();
  const w = h.loop.waitFor(["m1", "m2"], 60_000);
  await h.put(LANE, "m1", "m2");
  h.carrier.take();
  await h.carrier.left(LANE, BANNED);
  assert.deepEqual(await h.dead(), [], "once is not for good");
  await after(h, delayOf(0), ["join r@c bot look m1 m2"]);
  for (let i = 0; i < 3; i++) h.carrier.left(LANE, BANNED);
  h.loop.kick(LANE); // pumps again before the dead letters are committed
  h.loop.kick(LANE);
  const reason = "r@c refused bot: banned from the room";
  assert.deepEqual(await h.dead(), [`m1: ${reason}`, `m2: ${reason}`]);
  assert.deepEqual(await w.result, { status: "failed", reasons: [reason, reason], delivered: 0 });
  assert.deepEqual(
    h.seen.filter((s) => s.startsWith("failed")),
    [`failed m1: ${reason}`, `failed m2: ${reason}`],
  );
  await h.put(LANE, "m3");
  assert.deepEqual(await h.dead(), [`m1: ${reason}`, `m2: ${reason}`, `m3: ${reason}`]);
  assert.deepEqual(h.carrier.take(), []);
});

test("banned: one refusal reported twice in one tick is still seen once", async () => {
  const h = harness();
  await h.online();
  await h.put(LANE, "m1");
  await h.carrier.left(LANE, BANNED);
  await h.carrier.left(LANE, BANNED);
  assert.deepEqual(await h.dead(), []);
});

test("refused for good: every pending message is dead-lettered, beyond one window", async () => {
  const h = harness();
  await h.online();
  await h.put(LANE, ...Array.from({ length: 40 }, (_, i) => `m${i + 1}`));
  await h.carrier.left(LANE, BANNED);
  await h.advance(delayOf(0));
  await h.carrier.left(LANE, BANNED);
  assert.equal((await h.dead()).length, 40);
  assert.deepEqual(await h.queued(), []);
});

test("after `spool retry`, scan() asks the room again instead of dead-lettering on the old refusal", async () => {
  const h = harness();
  await h.online();
  await h.put(LANE, "m1", "m2");
  await h.carrier.left(LANE, BANNED);
  await h.advance(delayOf(0));
  await h.carrier.left(LANE, BANNED);
  assert.equal((await h.dead()).length, 2);
  h.carrier.take();
  assert.equal(await h.spool.retryDead(), 2);
  await tick();
  await h.loop.scan();
  await tick(); // the join reads what to look for from the spool first
  assert.deepEqual(h.carrier.take(), ["join r@c bot"]);
  assert.deepEqual(await h.dead(), []);
  await h.carrier.joined(LANE);
  assert.deepEqual(h.carrier.take(), sends(LANE, "m1", "m2"));
});

test("members-only at the first join, once: not for good, the messages go out after the rejoin", async () => {
  const h = harness();
  h.loop.start();
  await h.put(LANE, "m1");
  await h.carrier.up("bot");
  assert.deepEqual(h.carrier.take(), ["connect bot", "join r@c bot"]);
  await h.carrier.left(LANE, MEMBERS_ONLY);
  assert.deepEqual(await h.dead(), []);
  await after(h, delayOf(0), ["join r@c bot"]);
  await h.carrier.joined(LANE);
  assert.deepEqual(h.carrier.take(), sends(LANE, "m1"));
});

test("members-only twice: for good, the messages are dead letters", async () => {
  const h = harness();
  h.loop.start();
  await h.put(LANE, "m1");
  await h.carrier.up("bot");
  await h.carrier.left(LANE, MEMBERS_ONLY);
  await h.advance(delayOf(0));
  await h.carrier.left(LANE, MEMBERS_ONLY);
  assert.deepEqual(await h.dead(), ["m1: r@c refused bot: registration-required"]);
});

test("nick conflict on join: retried with growing backoff, never for good", async () => {
  const h = harness();
  h.loop.start();
  await h.put(LANE, "m1");
  await h.carrier.up("bot");
  h.carrier.take();
  for (const attempt of [0, 1, 2, 3]) {
    await h.carrier.left(LANE, NICK_TAKEN);
    await after(h, delayOf(attempt), ["join r@c bot"]);
  }
  assert.deepEqual(await h.dead(), []);
  await h.carrier.joined(LANE);
  assert.deepEqual(h.carrier.take(), sends(LANE, "m1"));
});

test("a stream down forgets a suspected refusal: once before and once after is not twice", async () => {
  const h = harness();
  await h.online();
  await h.put(LANE, "m1");
  await h.carrier.left(LANE, BANNED);
  await h.carrier.down("bot", RESET);
  await h.advance(delayOf(0));
  await h.carrier.up("bot");
  await h.carrier.left(LANE, BANNED);
  assert.deepEqual(await h.dead(), []);
});

test("a join that gets no answer gives up after JOIN_TIMEOUT_MS, says so, and tries again", async () => {
  const h = harness();
  h.loop.start();
  await h.carrier.up("bot");
  assert.deepEqual(h.carrier.take(), ["connect bot", "join r@c bot"]);
  await h.put(LANE, "m1");
  await after(h, JOIN_TIMEOUT_MS, []);
  const room = h.loop.readiness().sessions[0]?.rooms[0];
  assert.equal(room?.state, "retrying");
  assert.match(room?.lastError ?? "", /no answer to the join within 180 s/);
  await after(h, delayOf(0), ["join r@c bot"]);
  await h.carrier.joined(LANE);
  assert.deepEqual(h.carrier.take(), sends(LANE, "m1"));
  // Joined: the timeout is gone, nothing else is scheduled for the room.
  await h.advance(JOIN_TIMEOUT_MS * 2);
  assert.deepEqual(h.carrier.take(), []);
  assert.equal(h.loop.readiness().ready, true);
});
