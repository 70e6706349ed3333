import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { GatewayError, isCode } from "../core/errors.ts";
import { MIGRATIONS } from "./migrations.ts";
import { message, type OpenSpool, spoolContract } from "./spool.contract.ts";
import { spoolAnchorContract } from "./spool-anchor.contract.ts";
import { spoolDedupeContract } from "./spool-dedupe.contract.ts";
import { openSqliteSpool, type SqliteSpoolOptions, spoolPath } from "./sqlite.ts";
import type { Spool, SpoolLimits } from "./types.ts";

const ROOMY: SpoolLimits = { maxMessages: 100_000, maxBytes: 100_000_000 };
const LANE = { room: "ops@conf.example.org", nick: "bot" };

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "gw-spool-"));
}

const openHarness: OpenSpool = async (limits, opts) => {
  const dir = tempDir();
  let commits = 0;
  const open = () =>
    openSqliteSpool({
      path: spoolPath(dir),
      limits,
      now: opts?.now,
      onCommit: () => (commits += 1),
    });
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
    async cleanup() {
      await current.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
};
spoolContract("SQLite", openHarness);
spoolDedupeContract("SQLite", openHarness);
spoolAnchorContract("SQLite", openHarness);

/** Runs `fn` with a spool in a fresh directory, then closes and deletes it. */
async function withSpool(
  fn: (spool: Spool, path: string) => Promise<void>,
  opts: Partial<SqliteSpoolOptions> = {},
): Promise<void> {
  const dir = tempDir();
  const path = join(dir, "nested", "dir", "spool.sqlite");
  const spool = openSqliteSpool({ path, limits: ROOMY, ...opts });
  try {
    await fn(spool, path);
  } finally {
    await spool.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test("creates its directory, the schema at the newest version, in WAL mode", () =>
  withSpool(async (_spool, path) => {
    const other = new DatabaseSync(path);
    assert.equal(other.prepare("PRAGMA user_version").get()?.user_version, MIGRATIONS.length);
    assert.equal(other.prepare("PRAGMA journal_mode").get()?.journal_mode, "wal");
    other.close();
  }));

test("a spool written by a newer gateway (higher user_version) is refused, untouched", () => {
  const dir = tempDir();
  const path = spoolPath(dir);
  openSqliteSpool({ path, limits: ROOMY }).close();
  const db = new DatabaseSync(path);
  db.exec("PRAGMA user_version = 99");
  db.close();
  assert.throws(
    () => openSqliteSpool({ path, limits: ROOMY }),
    (err) =>
      isCode(err, "UNAVAILABLE") &&
      new RegExp(
        `schema version 99.*versions up to ${MIGRATIONS.length}\\b.*newer xmpp-msg-gw`,
      ).test((err as Error).message),
  );
  const check = new DatabaseSync(path);
  assert.equal(check.prepare("PRAGMA user_version").get()?.user_version, 99);
  check.close();
  rmSync(dir, { recursive: true, force: true });
});

test("a post that reuses an id is refused alone; the posts sharing its commit are stored", () =>
  withSpool(async (spool) => {
    const first = message(LANE, "first");
    await spool.enqueue([first]);
    const [dup, ok] = await Promise.allSettled([
      spool.enqueue([message(LANE, "new-in-same-post"), first]),
      spool.enqueue([message(LANE, "ok")]),
    ]);
    assert.equal(dup?.status, "rejected");
    assert.ok(dup?.status === "rejected" && isCode(dup.reason, "INTERNAL"));
    assert.equal(ok?.status, "fulfilled");
    assert.deepEqual(
      (await spool.pending(LANE, 10)).map((m) => m.body),
      ["first", "ok"],
    );
    assert.deepEqual(spool.stats(), { messages: 2, bytes: 7, deadLetters: 0 });
  }));

test("a write failing mid-transaction fails its whole batch, rolled back; later batches work", () =>
  withSpool(async (spool, path) => {
    const [poison] = await spool.enqueue([message(LANE, "poison")]);
    // Another connection installs a trigger that makes deleting this row fail, which
    // the spool cannot tell from a disk error: the batch must go back as a whole.
    const other = new DatabaseSync(path);
    other.exec(`CREATE TRIGGER boom BEFORE DELETE ON messages WHEN OLD.body = 'poison'
      BEGIN SELECT RAISE(ABORT, 'injected failure'); END`);
    const results = await Promise.allSettled([
      spool.enqueue([message(LANE, "lost-with-the-batch")]),
      spool.delivered([poison?.id ?? ""]),
    ]);
    for (const r of results) {
      assert.ok(r.status === "rejected" && r.reason instanceof GatewayError);
      assert.equal(r.reason.code, "UNAVAILABLE");
      assert.equal(r.reason.retryAfter, 30);
      assert.match(r.reason.message, /injected failure/);
    }
    assert.deepEqual(spool.stats(), { messages: 1, bytes: 6, deadLetters: 0 });
    other.exec("DROP TRIGGER boom");
    other.close();
    await spool.enqueue([message(LANE, "after")]);
    await spool.delivered([poison?.id ?? ""]);
    assert.deepEqual(
      (await spool.pending(LANE, 10)).map((m) => m.body),
      ["after"],
    );
    assert.deepEqual(spool.stats(), { messages: 1, bytes: 5, deadLetters: 0 });
  }));

test("while another process holds the write lock past busy_timeout, the batch is refused and its reservation freed", () =>
  withSpool(
    async (spool, path) => {
      const other = new DatabaseSync(path);
      other.exec("BEGIN IMMEDIATE");
      const err = await spool.enqueue([message(LANE, "12345")]).catch((e: unknown) => e);
      assert.ok(isCode(err, "UNAVAILABLE"), String(err));
      assert.match((err as Error).message, /locked/);
      other.exec("ROLLBACK");
      other.close();
      // The refused post no longer counts against the 5-byte limit.
      await spool.enqueue([message(LANE, "abcde")]);
      assert.deepEqual(spool.stats(), { messages: 1, bytes: 5, deadLetters: 0 });
    },
    { busyTimeoutMs: 50, limits: { maxMessages: 10, maxBytes: 5 } },
  ));

test("changes made by another process (the spool CLI) show in stats, limits and pending", () =>
  withSpool(
    async (spool, path) => {
      const [a, b] = await spool.enqueue([message(LANE, "a"), message(LANE, "b")]);
      await spool.deadLetter(a?.id ?? "", "r");
      await spool.deadLetter(b?.id ?? "", "r");
      await spool.enqueue([message(LANE, "c"), message(LANE, "d")]);
      const cli = openSqliteSpool({ path, limits: ROOMY });
      assert.equal(await cli.retryDead([a?.id ?? ""]), 1);
      assert.deepEqual(spool.stats(), { messages: 3, bytes: 3, deadLetters: 1 });
      assert.deepEqual(
        (await spool.pending(LANE, 10)).map((m) => m.body),
        ["c", "d", "a"],
      );
      await assert.rejects(spool.enqueue([message(LANE, "e")]), (e) => isCode(e, "SPOOL_FULL"));
      assert.equal(await cli.purgeDead(), 1);
      await cli.close();
      assert.deepEqual(spool.stats(), { messages: 3, bytes: 3, deadLetters: 0 });
      await spool.delivered([a?.id ?? ""]);
      await spool.enqueue([message(LANE, "e")]);
      assert.deepEqual(spool.stats(), { messages: 3, bytes: 3, deadLetters: 0 });
    },
    { limits: { maxMessages: 3, maxBytes: 1000 } },
  ));

test("retryDead restarts the clock: createdAt is the time of the retry", () => {
  let clock = 1_000;
  return withSpool(
    async (spool) => {
      const [m] = await spool.enqueue([message(LANE, "x")]);
      assert.equal(m?.createdAt, 1_000);
      clock = 2_000;
      await spool.deadLetter(m?.id ?? "", "expired");
      assert.equal((await spool.listDead())[0]?.failedAt, 2_000);
      assert.equal((await spool.listDead())[0]?.createdAt, 1_000);
      clock = 3_000;
      await spool.retryDead();
      assert.equal((await spool.pending(LANE, 1))[0]?.createdAt, 3_000);
    },
    { now: () => clock },
  );
});

test("group commit: 1000 concurrent posts take a handful of transactions", async (t) => {
  let commits = 0;
  await withSpool(
    async (spool) => {
      const n = 1000;
      let start = performance.now();
      await Promise.all(
        Array.from({ length: n }, (_, i) => spool.enqueue([message(LANE, `c${i}`)])),
      );
      const concurrentMs = performance.now() - start;
      const concurrentCommits = commits;
      assert.ok(concurrentCommits <= 2, `${concurrentCommits} commits`);
      start = performance.now();
      for (let i = 0; i < n; i++) await spool.enqueue([message(LANE, `s${i}`)]);
      const sequentialMs = performance.now() - start;
      assert.equal(commits - concurrentCommits, n);
      assert.equal(spool.stats().messages, 2 * n);
      t.diagnostic(
        `1000 concurrent enqueues: ${concurrentCommits} transaction(s), ${concurrentMs.toFixed(1)} ms; ` +
          `1000 sequential awaited enqueues: ${n} transactions, ${sequentialMs.toFixed(1)} ms`,
      );
    },
    { onCommit: () => (commits += 1) },
  );
});
