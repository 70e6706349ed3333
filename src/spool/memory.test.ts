import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { GatewayError } from "../core/errors.ts";
import { createMemorySpool, createMemoryStore, type MemoryStore } from "./memory.ts";
import { message, type OpenSpool, spoolContract } from "./spool.contract.ts";
import { spoolAnchorContract } from "./spool-anchor.contract.ts";
import { spoolDedupeContract } from "./spool-dedupe.contract.ts";
import { openSqliteSpool, spoolPath } from "./sqlite.ts";
import type { Lane, NewMessage, Spool, SpoolLimits } from "./types.ts";

const ROOMY: SpoolLimits = { maxMessages: 100_000, maxBytes: 100_000_000 };
const DAY = 24 * 60 * 60 * 1000;
const GROUPS = ["g1", "g2"];
const LANE = { room: "ops@conf.example.org", nick: "bot" };

const openHarness: OpenSpool = async (limits, opts) => {
  const store = createMemoryStore();
  let commits = 0;
  const open = () =>
    createMemorySpool({ limits, store, now: opts?.now, onCommit: () => (commits += 1) });
  let current = open();
  return {
    spool: current,
    async reopen() {
      await current.close();
      current = open();
      return current;
    },
    commits: () => commits,
    readsAtCall: true,
    cleanup: () => current.close(),
  };
};
spoolContract("memory", openHarness);
spoolDedupeContract("memory", openHarness);
spoolAnchorContract("memory", openHarness);

/** A small deterministic PRNG (mulberry32), so that a failing run can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What a call did, comparable across implementations (errors by code, retryAfter and text). */
async function outcome(call: () => unknown): Promise<unknown> {
  try {
    return { value: await call() };
  } catch (err) {
    if (err instanceof GatewayError) return { error: [err.code, err.retryAfter, err.message] };
    return { error: /datatype mismatch/.test(String(err)) ? "datatype mismatch" : String(err) };
  }
}

/** How often each interesting case came up, over all the random runs. */
const seen = new Map<string, number>();
const saw = (what: string) => seen.set(what, (seen.get(what) ?? 0) + 1);

/** One random run of bursts of writes against SQLite and memory side by side. */
async function differential(seed: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "gw-spool-memory-"));
  let clock = 1_000;
  const limits = { maxMessages: 12, maxBytes: 60 };
  const store: MemoryStore = createMemoryStore();
  const now = () => clock;
  const spools = [
    openSqliteSpool({ path: spoolPath(dir), limits, now }),
    createMemorySpool({ limits, now, store }),
  ];
  const rand = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  // Rooms whose order differs between UTF-8 bytes (SQLite) and UTF-16 units (JS `<`).
  const lanes: Lane[] = [
    { room: "a@conf", nick: "bot" },
    { room: "a@conf", nick: "Bot" },
    { room: "\uff5e@conf", nick: "bot" },
    { room: "\u{1f600}@conf", nick: "bot" },
  ];
  const ids: string[] = [];
  let n = 0;
  const fresh = (): NewMessage => {
    n += 1;
    // Reuse an id now and then: a queued one, a delivered one, or a dead letter's.
    const reuse = rand() < 0.1 ? ids : rand() < 0.2 ? [...store.dead.keys()] : [];
    const id = reuse.length > 0 ? pick(reuse) : `m${n}`;
    ids.push(id);
    const body = pick(["x", "éé", "€", "hello", "", "\u{1f600}"]);
    const m: NewMessage = { postId: `p${n}`, id, route: "r", ...pick(lanes), body };
    const kind = pick([undefined, undefined, "text", "reaction"] as const);
    const status = pick([undefined, undefined, "firing", "resolved"] as const);
    return {
      ...m,
      ...(kind && { kind }),
      ...(status && { thread: { group: pick(GROUPS), status } }),
    };
  };
  const where = () => ({ room: pick(lanes).room, group: pick(GROUPS) });
  // Mostly ids that are there now (read off the memory store), sometimes gone or unknown ones.
  const anyId = () =>
    pick([...store.messages.keys(), ...store.dead.keys(), ...ids.slice(-3), "nope"]);
  const someIds = () => [...Array(1 + Math.floor(rand() * 3))].map(anyId);

  const writes: Array<() => (s: Spool) => Promise<unknown>> = [
    () => {
      const post = [...Array(1 + Math.floor(rand() * 3))].map(fresh);
      const [first] = post;
      if (first && rand() < 0.05) post.push({ ...first, body: "twin" });
      return (s) => s.enqueue(post);
    },
    () => {
      const post = [...Array(1 + Math.floor(rand() * 2))].map(fresh);
      const key = pick(["k1", "k2", "k3"]);
      const claim = { route: pick(["r", "r2"]), key, expiresAt: clock + pick([0, 3, 20, 500]) };
      return (s) => s.enqueueOnce(post, claim);
    },
    () => {
      const { room, group } = where();
      const anchor = { stanzaId: `s${n}`, occupant: `${room}/bot`, quote: `q${n}` };
      return (s) => s.recordAnchor(room, group, anchor);
    },
    () => {
      const { room, group } = where();
      const at = clock - pick([0, 5, 7 * DAY]);
      return (s) => s.resolveAnchor(room, group, at);
    },
    () => {
      const chosen = someIds();
      return (s) => s.delivered(chosen);
    },
    () => {
      const id = anyId();
      const error = `e${n}`;
      return (s) => s.recordFailure(id, error);
    },
    () => {
      const id = anyId();
      const reason = `r${n}`;
      return (s) => s.deadLetter(id, reason);
    },
    () => {
      const chosen = rand() < 0.3 ? undefined : someIds();
      const requeued = [...store.dead.keys()].filter((id) => store.messages.has(id));
      if (requeued.some((id) => chosen === undefined || chosen.includes(id))) saw("retry-requeued");
      return (s) => s.retryDead(chosen);
    },
    () => {
      const chosen = rand() < 0.1 ? undefined : someIds();
      return (s) => s.purgeDead(chosen);
    },
  ];
  /** Every read, called at once (so before the commit of a burst); `settle` awaits them and the arrays of them. */
  const reads = (s: Spool, after: number) => [
    s.stats(),
    s.lanes(),
    ...lanes.map((l) => [-1, 0, 1, 2, 1.5].map((limit) => outcome(() => s.pending(l, limit)))),
    ...lanes.map((l) => s.pending(l, 100, after)),
    [undefined, -1, 0, 1, 3].map((limit) => s.listDead(limit)),
    lanes.flatMap((l) => GROUPS.map((g) => s.anchor(l.room, g))),
    ["r", "r2"].flatMap((route) => ["k1", "k2", "k3"].map((key) => s.claimed(route, key))),
  ];

  const settle = (rs: unknown[]) =>
    Promise.all(rs.map((r) => (Array.isArray(r) ? Promise.all(r) : r)));

  try {
    for (let step = 0; step < 150; step++) {
      // Now and then a jump past the sweep interval, or an anchor's 7 or 30 days.
      clock += rand() < 0.04 ? pick([61_000, 8 * DAY, 31 * DAY]) : pick([0, 0, 1, 7]);
      // A burst of writes requested in one tick: they share a commit in both.
      const burst = [...Array(1 + Math.floor(rand() * 4))].map(() => pick(writes)());
      const after = Math.floor(rand() * (n + 1));
      const results: unknown[] = [];
      for (const s of spools) {
        const calls = burst.map((w) => outcome(() => w(s)));
        // Before the commit: the reads do not see the writes yet.
        const before = await settle(reads(s, after));
        results.push({ before, calls: await Promise.all(calls) });
      }
      const [fromSqlite, fromMemory] = results;
      assert.deepEqual(fromMemory, fromSqlite, `step ${step}`);
      for (const c of (fromSqlite as { calls: Array<{ error?: unknown[]; value?: unknown }> })
        .calls) {
        if (c.error) saw(String(c.error[0]));
        if ((c.value as { duplicate?: boolean } | undefined)?.duplicate) saw("duplicate");
      }
      if (store.anchors.size > 0) saw("anchor");
    }
    const after = await Promise.all(spools.map((s) => settle(reads(s, 0))));
    assert.deepEqual(after[1], after[0]);
  } finally {
    await Promise.all(spools.map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  }
}

test("does what the SQLite spool does, call for call, in random runs", async (t) => {
  for (const seed of [1, 2, 3]) await t.test(`seed ${seed}`, () => differential(seed));
  // The runs reached the interesting cases, or they prove little.
  t.diagnostic(`cases seen: ${JSON.stringify([...seen])}`);
  for (const what of ["SPOOL_FULL", "INTERNAL", "retry-requeued", "duplicate", "anchor"]) {
    assert.ok(seen.has(what), `no run saw ${what}: ${[...seen.keys()]}`);
  }
});

test("spools open over one store at once see each other's commits, as with the spool CLI", async () => {
  const store = createMemoryStore();
  const limits = { maxMessages: 3, maxBytes: 1000 };
  const gateway = createMemorySpool({ limits, store });
  const cli = createMemorySpool({ limits: ROOMY, store });
  const [a] = await gateway.enqueue([message(LANE, "a")]);
  await gateway.deadLetter(a?.id ?? "", "r");
  await gateway.enqueue([message(LANE, "b"), message(LANE, "c")]);
  assert.equal(await cli.retryDead(), 1);
  assert.deepEqual(gateway.stats(), { messages: 3, bytes: 3, deadLetters: 0 });
  assert.deepEqual(
    (await gateway.pending(LANE, 10)).map((m) => m.body),
    ["b", "c", "a"],
  );
  await assert.rejects(gateway.enqueue([message(LANE, "d")]), { code: "SPOOL_FULL" });
  await cli.close();
  await gateway.close();
  // Without a store, each spool has its own.
  assert.deepEqual(createMemorySpool({ limits }).stats(), {
    messages: 0,
    bytes: 0,
    deadLetters: 0,
  });
});

test("a seq is never handed out again, across a reopen, even after the newest left", async () => {
  const store = createMemoryStore();
  const first = createMemorySpool({ limits: ROOMY, store });
  const [, newest] = await first.enqueue([message(LANE, "a"), message(LANE, "b")]);
  await first.delivered([newest?.id ?? ""]);
  await first.close();
  assert.deepEqual(first.stats(), { messages: 1, bytes: 1, deadLetters: 0 }, "after close");
  const again = createMemorySpool({ limits: ROOMY, store });
  const [next] = await again.enqueue([message(LANE, "c")]);
  assert.equal(next?.seq, (newest?.seq ?? 0) + 1);
  await again.close();
});

test("group commit: a burst shares one commit per 1000 writes, invisible until it", async () => {
  const infos: number[] = [];
  const spool = createMemorySpool({ limits: ROOMY, onCommit: (i) => infos.push(i.operations) });
  const posts = Array.from({ length: 1001 }, (_, i) => spool.enqueue([message(LANE, `c${i}`)]));
  assert.deepEqual(await spool.pending(LANE, 10), []);
  assert.equal(spool.stats().messages, 0);
  await Promise.all(posts);
  assert.deepEqual(infos, [1000, 1]);
  const [m] = await spool.pending(LANE, 1);
  const failure = spool.recordFailure(m?.id ?? "", "timeout");
  assert.equal((await spool.pending(LANE, 1))[0]?.attempts, 0, "not before its commit");
  await failure;
  assert.equal((await spool.pending(LANE, 1))[0]?.attempts, 1);
  await spool.close();
});
