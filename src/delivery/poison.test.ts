// The poison-message check: a stream the server closes (policy-violation, not-well-formed)
// right after the same oldest unconfirmed message twice dead-letters that message, and a
// large one teaches the loop the server's stanza limit.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  delayOf,
  type Harness,
  harness,
  LANE,
  sends,
} from "../../test/support/delivery-harness.ts";
import type { StreamFault } from "./port.ts";

const TOO_BIG: StreamFault = {
  kind: "stream-error",
  condition: "policy-violation",
  text: "XML stanza is too big",
};
const REASON =
  "the XMPP server closed the stream twice right after this message: XML stanza is too big";

/** The stream closes with `fault`; the loop reconnects (after `wait`), rejoins, and sends. */
async function closeAndRejoin(h: Harness, fault: StreamFault, wait: number): Promise<string[]> {
  await h.carrier.down("bot", fault);
  await h.advance(wait);
  await h.carrier.up("bot");
  await h.carrier.joined(LANE);
  return h.carrier.take();
}

async function sentThree(m1Body?: string): Promise<Harness> {
  const h = harness();
  await h.online();
  await h.put(LANE, m1Body === undefined ? "m1" : ["m1", m1Body], "m2", "m3");
  assert.deepEqual(h.carrier.take(), sends(LANE, "m1", "m2", "m3"));
  return h;
}

test("first close after m1: nothing dead, m1 is resent alone; confirmed, the rest follow", async () => {
  const h = await sentThree();
  assert.deepEqual(await closeAndRejoin(h, TOO_BIG, delayOf(0)), [
    "connect bot",
    "join r@c bot look m1 m2 m3",
    ...sends(LANE, "m1"),
  ]);
  assert.deepEqual(await h.dead(), []);
  await h.carrier.confirmed(LANE, "m1");
  assert.deepEqual(h.carrier.take(), sends(LANE, "m2", "m3"));
});

test("second close right after m1: m1 dead-lettered with the server's words, m2 and m3 flow", async () => {
  const h = await sentThree();
  const w = h.loop.waitFor(["m1"], 60_000);
  await closeAndRejoin(h, TOO_BIG, delayOf(0));
  assert.deepEqual(await closeAndRejoin(h, TOO_BIG, delayOf(1)), [
    "connect bot",
    "join r@c bot look m2 m3",
    ...sends(LANE, "m2", "m3"),
  ]);
  assert.deepEqual(await h.dead(), [`m1: ${REASON}`]);
  assert.deepEqual(await w.result, { status: "failed", reasons: [REASON], delivered: 0 });
  assert.equal(h.loop.readiness().learnedMaxStanzaBytes, null, "a small m1 teaches no limit");
  assert.deepEqual(h.loop.stanzaLimits(), [undefined, undefined]);
});

test("not-well-formed counts as well", async () => {
  const h = await sentThree();
  const bad: StreamFault = { kind: "stream-error", condition: "not-well-formed", text: "bad XML" };
  await closeAndRejoin(h, bad, delayOf(0));
  await closeAndRejoin(h, bad, delayOf(1));
  assert.deepEqual(await h.dead(), [
    "m1: the XMPP server closed the stream twice right after this message: bad XML",
  ]);
});

test("a 70,000-byte poison message lowers the learned stanza limit to 65536", async () => {
  const h = await sentThree("x".repeat(70_000));
  await closeAndRejoin(h, TOO_BIG, delayOf(0));
  assert.deepEqual(h.loop.stanzaLimits(), [undefined, undefined], "not on the first close");
  await h.carrier.down("bot", TOO_BIG);
  assert.deepEqual(h.loop.stanzaLimits(), [undefined, 65_536]);
  assert.equal(h.loop.readiness().learnedMaxStanzaBytes, 65_536);
});

test("the advertised limit (XEP-0478) is reported next to the learned one", async () => {
  const h = harness();
  h.loop.start();
  await h.carrier.up("bot", { maxStanzaBytes: 262_144 });
  assert.deepEqual(h.loop.stanzaLimits(), [262_144, undefined]);
});

test("two closes after different oldest messages dead-letter nothing", async () => {
  const h = await sentThree();
  await closeAndRejoin(h, TOO_BIG, delayOf(0));
  await h.carrier.confirmed(LANE, "m1");
  h.carrier.take();
  // m2 is now the oldest unconfirmed: a close suspects it, once.
  await closeAndRejoin(h, TOO_BIG, delayOf(1));
  assert.deepEqual(await h.dead(), []);
});

test("policy-violation with rate-limit words is not poison: all resent together, nothing dead", async () => {
  const h = await sentThree();
  const flood: StreamFault = {
    kind: "stream-error",
    condition: "policy-violation",
    text: "Too many stanzas: rate limit exceeded",
  };
  assert.deepEqual(
    (await closeAndRejoin(h, flood, delayOf(0))).slice(2),
    sends(LANE, "m1", "m2", "m3"),
  );
  assert.deepEqual(
    (await closeAndRejoin(h, flood, delayOf(1))).slice(2),
    sends(LANE, "m1", "m2", "m3"),
  );
  assert.deepEqual(await h.dead(), []);
});

test("a network drop is not poison", async () => {
  const h = await sentThree();
  const reset: StreamFault = { kind: "network", text: "connection reset" };
  assert.deepEqual(
    (await closeAndRejoin(h, reset, delayOf(0))).slice(2),
    sends(LANE, "m1", "m2", "m3"),
  );
  assert.deepEqual(
    (await closeAndRejoin(h, reset, delayOf(1))).slice(2),
    sends(LANE, "m1", "m2", "m3"),
  );
  assert.deepEqual(await h.dead(), []);
});
