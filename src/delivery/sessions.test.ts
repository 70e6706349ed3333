// Sessions (one per nick): the session limit of the account, reloads, and the session
// of direct messages.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ACCOUNT, delayOf, harness, LANE, tick } from "../../test/support/delivery-harness.ts";
import { DIRECT_NICK } from "../core/routes.ts";
import type { StreamFault } from "./port.ts";

const REPLACED: StreamFault = {
  kind: "stream-error",
  condition: "conflict",
  text: "Replaced by new connection",
};
const THREE = new Map([
  ["alpha", new Set(["r@c"])],
  ["beta", new Set(["r@c"])],
  ["gamma", new Set(["r@c"])],
]);

test("session limit: a conflict while other sessions are up blocks the nick, with an explanation", async () => {
  const h = harness({ topology: THREE });
  await h.online();
  await h.carrier.down("alpha", REPLACED);
  assert.deepEqual(h.clock.pending(), [], "no reconnect is scheduled");
  await h.advance(3_600_000);
  assert.deepEqual(h.carrier.take(), []);
  const r = h.loop.readiness();
  assert.equal(r.ready, false);
  const alpha = r.sessions.find((s) => s.nick === "alpha");
  assert.equal(alpha?.online, false);
  assert.match(alpha?.lastError ?? "", /max_user_sessions/);
  assert.match(alpha?.lastError ?? "", /own XMPP account \(CONFIG_FILE: account\)/);
  assert.match(alpha?.lastError ?? "", new RegExp(`${ACCOUNT} needs 3 sessions .* allows 2`));
  assert.deepEqual(
    r.sessions.filter((s) => s.online).map((s) => s.nick),
    ["beta", "gamma"],
  );
});

test("session limit: counted per account; a nick with an account of its own is not blocked by the others", async () => {
  const h = harness({ topology: THREE, accounts: new Map([["gamma", "alerts@example.org"]]) });
  await h.online();
  // gamma's account has no other session up: its conflict is an ordinary reconnect.
  await h.carrier.down("gamma", REPLACED);
  await h.advance(delayOf(0));
  assert.deepEqual(h.carrier.take(), ["connect gamma"]);
  await h.carrier.up("gamma");
  h.carrier.take();
  // alpha's does (beta): blocked, counting only that account's two sessions.
  await h.carrier.down("alpha", REPLACED);
  const alpha = h.loop.readiness().sessions.find((s) => s.nick === "alpha");
  assert.match(alpha?.lastError ?? "", new RegExp(`${ACCOUNT} needs 2 sessions .* allows 1`));
  assert.match(alpha?.lastError ?? "", /CONFIG_FILE: account/);
});

test("session limit: extend() (a reload) unblocks the nick: it connects again", async () => {
  const h = harness({ topology: THREE });
  await h.online();
  await h.carrier.down("alpha", REPLACED);
  h.loop.extend(THREE);
  assert.deepEqual(h.carrier.take(), ["connect alpha"]);
  await h.carrier.up("alpha");
  assert.deepEqual(h.carrier.take(), ["join r@c alpha"]);
});

test("a conflict when no other session is up is an ordinary reconnect", async () => {
  const h = harness();
  await h.online();
  await h.carrier.down("bot", REPLACED);
  await h.advance(delayOf(0));
  assert.deepEqual(h.carrier.take(), ["connect bot"]);
});

test("extend() connects new nicks and joins new rooms of sessions already up", async () => {
  const h = harness();
  await h.online();
  h.loop.extend(
    new Map([
      ["bot", new Set(["r@c", "s@c"])],
      ["new", new Set(["r@c"])],
    ]),
  );
  await tick(); // a join reads what to look for from the spool first
  assert.deepEqual(h.carrier.take(), ["connect new", "join s@c bot"]);
});

test("direct messages queued before their session is up go out when it comes up", async () => {
  const h = harness({ topology: new Map([[DIRECT_NICK, new Set<string>()]]) });
  h.loop.start();
  const user = { room: "user@example.org", nick: DIRECT_NICK };
  await h.put(user, "d1");
  assert.deepEqual(h.carrier.take(), ["connect (direct)"]);
  await h.carrier.up(DIRECT_NICK);
  assert.deepEqual(h.carrier.take(), ["send user@example.org (direct) d1"]);
  assert.equal(h.loop.expectsOutcome(user), true);
  await h.carrier.confirmed(user, "d1");
  assert.deepEqual(await h.queued(user), []);
});

test("direct messages: after a drop, the unconfirmed are resent once the session is back", async () => {
  const h = harness({ topology: new Map([[DIRECT_NICK, new Set<string>()]]) });
  h.loop.start();
  await h.carrier.up(DIRECT_NICK);
  const user = { room: "user@example.org", nick: DIRECT_NICK };
  await h.put(user, "d1", "d2");
  await h.carrier.confirmed(user, "d1");
  h.carrier.take();
  await h.carrier.down(DIRECT_NICK, { kind: "network", text: "reset" });
  await h.advance(delayOf(0));
  await h.carrier.up(DIRECT_NICK);
  assert.deepEqual(h.carrier.take(), ["connect (direct)", "send user@example.org (direct) d2"]);
});

test("readiness: ready once every session is up and every room joined", async () => {
  const h = harness();
  h.loop.start();
  assert.equal(h.loop.readiness().ready, false);
  await h.carrier.up("bot");
  assert.deepEqual(h.loop.readiness().sessions[0]?.rooms, [
    { room: "r@c", state: "joining", lastError: null },
  ]);
  await h.carrier.joined(LANE);
  assert.equal(h.loop.readiness().ready, true);
  assert.deepEqual(h.carrier.take(), ["connect bot", "join r@c bot"]);
});
