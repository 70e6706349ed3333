// Alert threads in the delivery loop, over the fake carrier and the memory spool: what a
// group's messages carry when they are sent, and what their confirmations record.
import assert from "node:assert/strict";
import { test } from "node:test";
import { harness, LANE, tick } from "../../test/support/delivery-harness.ts";
import type { AlertThread, NewMessage } from "../spool/types.ts";
import { NO_STANZA_ID } from "./threads.ts";

const FIRING: AlertThread = { group: "g1", status: "firing" };
const RESOLVED: AlertThread = { group: "g1", status: "resolved" };

function message(id: string, body: string, thread?: AlertThread, kind?: "reaction"): NewMessage {
  return {
    postId: id,
    id,
    route: "am",
    ...LANE,
    body,
    ...(thread && { thread }),
    ...(kind && { kind }),
  };
}

async function put(h: ReturnType<typeof harness>, ...messages: NewMessage[]): Promise<void> {
  await h.spool.enqueue(messages);
  h.loop.kick(LANE);
  await tick(); // the kick runs after the current microtasks
}

test("the first firing message is the anchor; the next ones reply to it in its thread", async () => {
  const h = harness();
  await h.online();
  await put(h, message("f1", "🔥 FIRING (1) · HighCPU\n\ndetails", FIRING));
  assert.deepEqual(h.carrier.extras.get("f1"), { thread: "g1" });
  await h.carrier.confirmedAs(LANE, "f1", "room-sid-1");
  // The anchor is a lazy write: the next enqueue's commit carries it, before that send.
  await put(h, message("r1", "✅ RESOLVED (1) · HighCPU\n\nmore", RESOLVED));
  assert.deepEqual(h.carrier.extras.get("r1"), {
    thread: "g1",
    reply: { to: `${LANE.room}/${LANE.nick}`, id: "room-sid-1", quote: "🔥 FIRING (1) · HighCPU" },
  });
});

test("a resolved group's reaction goes to the anchor; without an anchor it is not sent", async () => {
  const h = harness();
  await h.online();
  await put(h, message("x1", "✅", RESOLVED, "reaction"));
  assert.equal(h.carrier.bodies.has("x1"), false, "nothing to react to: not sent");
  assert.deepEqual(await h.queued(), [], "and not kept");
  await put(h, message("f1", "🔥 FIRING", FIRING));
  await h.carrier.confirmedAs(LANE, "f1", "sid-f1");
  await put(h, message("x2", "✅", RESOLVED, "reaction"));
  assert.deepEqual(h.carrier.extras.get("x2"), { thread: "g1", reactTo: "sid-f1" });
});

test("a group that resolved and fires again starts a new anchor", async () => {
  const h = harness();
  await h.online();
  await put(h, message("f1", "🔥 first", FIRING));
  await h.carrier.confirmedAs(LANE, "f1", "sid-1");
  await put(h, message("r1", "✅ resolved", RESOLVED));
  await h.carrier.confirmedAs(LANE, "r1", "sid-2");
  await put(h, message("f2", "🔥 again", FIRING));
  assert.deepEqual(h.carrier.extras.get("f2"), { thread: "g1" }, "not a reply to the old one");
  await h.carrier.confirmedAs(LANE, "f2", "sid-3");
  await put(h, message("f3", "🔥 still", FIRING));
  assert.equal(h.carrier.extras.get("f3")?.reply?.id, "sid-3");
});

test("a room that gives no stanza-id: plain messages, and /ready says why", async () => {
  const h = harness();
  await h.online();
  await put(h, message("f1", "🔥 FIRING", FIRING));
  await h.carrier.confirmed(LANE, "f1");
  await put(h, message("f2", "🔥 FIRING again", FIRING));
  assert.deepEqual(h.carrier.extras.get("f2"), { thread: "g1" }, "no reply: no anchor");
  const room = h.loop.readiness().sessions[0]?.rooms[0];
  assert.equal(room?.note, NO_STANZA_ID);
  await h.carrier.confirmedAs(LANE, "f2", "sid-2");
  assert.equal(h.loop.readiness().sessions[0]?.rooms[0]?.note, undefined, "a stanza-id clears it");
});

test("messages outside alert groups carry nothing extra", async () => {
  const h = harness();
  await h.online();
  await put(h, message("m1", "plain"));
  assert.equal(h.carrier.bodies.get("m1"), "plain");
  assert.equal(h.carrier.extras.has("m1"), false);
});
