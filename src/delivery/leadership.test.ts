// The lease keeper over a fake lease store, a fake clock and a hand-moved monotonic clock:
// when it takes, keeps, loses and gives up an account's lease, and what the loop sees.
import assert from "node:assert/strict";
import { test } from "node:test";
import pino from "pino";
import { ACCOUNT, harness, LANE, sends } from "../../test/support/delivery-harness.ts";
import { fakeClock } from "../../test/support/fake-clock.ts";
import { createLeadership, type Leadership, type LeaseStore } from "./leadership.ts";

const TTL = 10_000;

/** A store where `free` says whether acquire succeeds, `renews` whether renew does. */
interface FakeStore extends LeaseStore {
  free: boolean;
  renews: boolean;
  down: boolean;
  token: number;
  calls: string[];
}

function fakeStore(): FakeStore {
  const calls: string[] = [];
  const store: FakeStore = {
    free: true,
    renews: true,
    down: false,
    token: 6,
    calls,
    async acquire(account: string) {
      calls.push(`acquire ${account}`);
      if (store.down) throw new Error("the spool cannot be reached");
      return store.free ? { token: ++store.token, expiresInMs: TTL } : undefined;
    },
    async renew(account: string, token: number) {
      calls.push(`renew ${account} ${token}`);
      if (store.down) throw new Error("the spool cannot be reached");
      return store.renews;
    },
    async release(account: string, token: number) {
      calls.push(`release ${account} ${token}`);
    },
    async holder() {
      return undefined;
    },
  };
  return store;
}

function setup() {
  const store = fakeStore();
  const clock = fakeClock();
  let mono = 0;
  const events: string[] = [];
  const leadership = createLeadership({
    store,
    accounts: ["gw@example.org"],
    ttlMs: TTL,
    clock,
    monotonic: () => mono,
    log: pino({ level: "silent" }),
  });
  leadership.on("acquired", (a) => events.push(`acquired ${a}`));
  leadership.on("lost", (a) => events.push(`lost ${a}`));
  /** Moves both clocks, then lets the store's answers arrive. */
  const pass = async (ms: number) => {
    mono += ms;
    clock.advance(ms);
    await new Promise((r) => setImmediate(r));
  };
  return { store, leadership, events, pass, pause: (ms: number) => (mono += ms) };
}

const A = "gw@example.org";

test("a free lease is taken at start and renewed every third of its time", async () => {
  const t = setup();
  t.leadership.start();
  await t.pass(0);
  assert.deepEqual(t.events, [`acquired ${A}`]);
  assert.equal(t.leadership.holds(A), true);
  assert.equal(t.leadership.token(A), 7);
  assert.deepEqual(t.leadership.state(), [{ account: A, role: "leader", token: 7, leaseAgeMs: 0 }]);
  await t.pass(TTL / 3);
  await t.pass(TTL / 3);
  assert.deepEqual(t.store.calls, [`acquire ${A}`, `renew ${A} 7`, `renew ${A} 7`]);
  assert.equal(t.leadership.holds(A), true, "renewed: still ours");
});

test("a lease held by another gateway: standby, and it is taken once free", async () => {
  const t = setup();
  t.store.free = false;
  t.leadership.start();
  await t.pass(0);
  assert.equal(t.leadership.holds(A), false);
  assert.deepEqual(t.leadership.state(), [{ account: A, role: "standby" }]);
  t.store.free = true;
  await t.pass(TTL / 3);
  assert.deepEqual(t.events, [`acquired ${A}`]);
  assert.equal(t.leadership.holds(A), true);
});

test("a renewal refused (taken over): lost at once", async () => {
  const t = setup();
  t.leadership.start();
  await t.pass(0);
  t.store.renews = false;
  await t.pass(TTL / 3);
  assert.deepEqual(t.events, [`acquired ${A}`, `lost ${A}`]);
  assert.equal(t.leadership.holds(A), false);
});

test("paused past the lease (SIGSTOP): not held at the first look after, before any renewal", async () => {
  const t = setup();
  t.leadership.start();
  await t.pass(0);
  t.pause(TTL); // no timer ran meanwhile: the process was stopped
  assert.equal(t.leadership.holds(A), false, "the send after SIGCONT is refused");
  assert.deepEqual(t.events, [`acquired ${A}`, `lost ${A}`]);
  // A fifth of the lease is the margin: 8 s after the last renewal it is still ours.
  const u = setup();
  u.leadership.start();
  await u.pass(0);
  u.pause(TTL * 0.8 - 1);
  assert.equal(u.leadership.holds(A), true);
  u.pause(2);
  assert.equal(u.leadership.holds(A), false);
});

test("the spool unreachable: a held lease lasts until its own expiry, then is lost", async () => {
  const t = setup();
  t.leadership.start();
  await t.pass(0);
  t.store.down = true;
  await t.pass(TTL / 3);
  await t.pass(TTL / 3);
  assert.equal(t.leadership.holds(A), true, "6.7 s: not expired yet");
  assert.match(t.leadership.state()[0]?.lastError ?? "", /unreachable|cannot be reached/);
  await t.pass(TTL / 3);
  assert.equal(t.leadership.holds(A), false);
  assert.deepEqual(t.events, [`acquired ${A}`, `lost ${A}`]);
});

test("stop gives the held lease up, so that a standby takes over at once", async () => {
  const t = setup();
  t.leadership.start();
  await t.pass(0);
  await t.leadership.stop();
  assert.deepEqual(t.store.calls.at(-1), `release ${A} 7`);
  assert.equal(t.leadership.holds(A), false);
});

/** A leadership the test grants and revokes by hand. */
function manual(): Leadership & { grant(account: string): void; revoke(account: string): void } {
  const held = new Set<string>();
  const listeners = {
    acquired: [] as Array<(a: string) => void>,
    lost: [] as Array<(a: string) => void>,
  };
  return {
    holds: (a) => held.has(a),
    token: (a) => (held.has(a) ? 1 : undefined),
    on: (event, l) => listeners[event].push(l),
    state: () => [{ account: ACCOUNT, role: held.has(ACCOUNT) ? "leader" : "standby" }],
    start: () => {},
    firstRound: async () => {},
    stop: async () => {},
    grant(a) {
      held.add(a);
      for (const l of listeners.acquired) l(a);
    },
    revoke(a) {
      held.delete(a);
      for (const l of listeners.lost) l(a);
    },
  };
}

test("a standby connects nothing and is ready; it connects and sends once it holds the lease", async () => {
  const lead = manual();
  const h = harness({ leadership: lead });
  h.loop.start();
  await h.put(LANE, "m1");
  assert.deepEqual(h.carrier.take(), [], "standby: no session, nothing sent");
  assert.equal(h.loop.readiness().ready, true, "a standby takes posts: ready");
  assert.deepEqual(h.loop.readiness().leases, [{ account: ACCOUNT, role: "standby" }]);
  lead.grant(ACCOUNT);
  assert.deepEqual(h.carrier.take(), ["connect bot"]);
  await h.carrier.up("bot");
  await h.carrier.joined(LANE);
  // Taking over is a rejoin after a crash: the join looks for what a sender claimed and
  // nobody saw confirmed; m1 was only queued (no sender claimed it): nothing to look for.
  assert.deepEqual(h.carrier.take(), ["join r@c bot", ...sends(LANE, "m1")]);
});

test("the lease lost: the session is closed, nothing more is sent, no reconnect", async () => {
  const lead = manual();
  lead.grant(ACCOUNT);
  const h = harness({ leadership: lead });
  await h.online();
  lead.revoke(ACCOUNT);
  assert.deepEqual(h.carrier.take(), ["disconnect bot"]);
  await h.put(LANE, "m1");
  assert.deepEqual(h.carrier.take(), [], "not the sender: nothing goes out");
  // The new sender's session replaces ours (conflict): a standby waits, it is no session limit.
  await h.carrier.down("bot", { kind: "stream-error", condition: "conflict", text: "replaced" });
  await h.advance(60_000);
  assert.deepEqual(h.carrier.take(), [], "no reconnect while standing by");
  lead.grant(ACCOUNT);
  assert.deepEqual(h.carrier.take(), ["connect bot"]);
});
