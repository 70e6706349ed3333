// `?dry_run=1` (issue 13): what a post would become (threads, replies, reactions,
// de-duplication), read off the memory spool.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  anchored,
  firing,
  memorySpool,
  OTHER_ROOM,
  plain,
  preparation,
  ROOM,
  resolved,
  route,
  THREAD,
  textOf,
  USER,
  USER_JID,
} from "../../test/support/accept-fixtures.ts";
import { LANE } from "../../test/support/delivery-harness.ts";
import { createPreview, RESOLVED_REACTION } from "./accept.ts";

describe("createPreview (?dry_run=1)", () => {
  test("an alert group's messages are in its thread in rooms; direct messages have none", async () => {
    const spool = memorySpool();
    const preview = createPreview({ ...preparation(Date.now), spool });
    const r = route([ROOM, USER]);
    const body = textOf(r, firing());
    assert.match(body, /^🔥 FIRING \(2\) · InstanceDown\n/);
    assert.deepEqual(await preview(r, firing()), {
      messages: [
        { to: LANE.room, nick: LANE.nick, body, thread: THREAD },
        { to: USER_JID, body },
      ],
      dedupe: { by: "alert content" },
    });
  });

  test("with an anchor on record, a later notification replies to it with a quoted fallback", async () => {
    const spool = memorySpool();
    const preview = createPreview({ ...preparation(Date.now), spool });
    const r = route([ROOM, USER]);
    await anchored(spool, LANE.room, "sid-1");
    const body = textOf(r, firing());
    assert.deepEqual((await preview(r, firing())).messages, [
      {
        to: LANE.room,
        nick: LANE.nick,
        body,
        thread: THREAD,
        reply_to: "sid-1",
        fallback: "> 🔥 FIRING (2) · InstanceDown",
      },
      { to: USER_JID, body },
    ]);
  });

  test("a resolved group: a reply in each room, and one ✅ reaction per room target, none for users", async () => {
    const spool = memorySpool();
    const preview = createPreview({ ...preparation(Date.now), spool });
    const r = route([ROOM, USER, OTHER_ROOM]);
    await anchored(spool, LANE.room, "sid-r");
    await anchored(spool, "s@c", "sid-s");
    const body = textOf(r, resolved());
    assert.match(body, /^✅ RESOLVED \(2\) · InstanceDown\n/);
    const reply = (to: string, sid: string) => ({
      to,
      nick: "bot",
      body,
      thread: THREAD,
      reply_to: sid,
      fallback: "> 🔥 FIRING (2) · InstanceDown",
    });
    const reaction = (to: string, sid: string) => ({
      to,
      nick: "bot",
      body: RESOLVED_REACTION,
      thread: THREAD,
      reaction: "✅",
      reply_to: sid,
    });
    assert.deepEqual(await preview(r, resolved()), {
      messages: [
        reply(LANE.room, "sid-r"),
        { to: USER_JID, body },
        reply("s@c", "sid-s"),
        reaction(LANE.room, "sid-r"),
        reaction("s@c", "sid-s"),
      ],
      dedupe: { by: "alert content" },
    });
    assert.deepEqual(
      (await preview(route([USER]), resolved())).messages,
      [{ to: USER_JID, body }],
      "no reaction without a room",
    );
  });

  test("a resolved group with no first message on record: no ✅ shown (none would be sent)", async () => {
    const preview = createPreview({ ...preparation(Date.now), spool: memorySpool() });
    const r = route([ROOM]);
    const shown = (await preview(r, resolved())).messages;
    assert.deepEqual(shown, [
      { to: LANE.room, nick: LANE.nick, body: textOf(r, resolved()), thread: THREAD },
    ]);
  });

  test("a group that resolved and fires again starts a new thread message, not a reply", async () => {
    const spool = memorySpool();
    const preview = createPreview({ ...preparation(Date.now), spool });
    const r = route([ROOM]);
    await anchored(spool, LANE.room, "sid-1");
    await spool.resolveAnchor(LANE.room, THREAD, Date.now());
    assert.deepEqual((await preview(r, firing())).messages, [
      { to: LANE.room, nick: LANE.nick, body: textOf(r, firing()), thread: THREAD },
    ]);
  });

  test("dedupe: by Idempotency-Key when one is given, by alert content without; else absent", async () => {
    const spool = memorySpool();
    const preview = createPreview({ ...preparation(Date.now), spool });
    const r = route([ROOM]);
    assert.deepEqual((await preview(r, plain("hello"), "k1")).dedupe, { by: "Idempotency-Key" });
    assert.deepEqual((await preview(r, firing(), "k1")).dedupe, { by: "Idempotency-Key" });
    assert.deepEqual((await preview(r, firing())).dedupe, { by: "alert content" });
    const none = await preview(r, plain("hello"));
    assert.equal("dedupe" in none, false, "a plain text post without a key");
    const off = await preview(route([ROOM], { dedupe: false }), firing(), "k1");
    assert.equal("dedupe" in off, false, "route dedupe: false");
    assert.deepEqual(off.messages[0]?.thread, THREAD, "threads stay on");
    const noWindow = createPreview({ ...preparation(Date.now, { dedupeWindowMs: 0 }), spool });
    assert.equal("dedupe" in noWindow(r, firing(), "k1"), false, "DEDUPE_WINDOW 0");
  });
});
