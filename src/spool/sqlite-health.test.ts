// Whether the SQLite spool can be written, as `/ready` reports it: set by a write that
// fails, cleared by one that succeeds, probed at open and again while it is down.
import assert from "node:assert/strict";
import { chmodSync, chownSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { isCode } from "../core/errors.ts";
import { message } from "./spool.contract.ts";
import { openSqliteSpool, spoolPath } from "./sqlite.ts";
import { writeAndKill } from "./sqlite-killed.ts";
import type { Spool } from "./types.ts";

const LIMITS = { maxMessages: 1000, maxBytes: 1_000_000 };
const LANE = { room: "ops@conf.example.org", nick: "bot" };

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs `fn` with a spool in a fresh directory, then closes and deletes it. */
async function withSpool(fn: (spool: Spool, path: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "gw-health-"));
  const spool = openSqliteSpool({ path: spoolPath(dir), limits: LIMITS, busyTimeoutMs: 50 });
  try {
    await fn(spool, spoolPath(dir));
  } finally {
    await spool.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test("a write that fails makes the spool not writable, with the reason, until a write succeeds", () =>
  withSpool(async (spool, path) => {
    assert.deepEqual(spool.health(), { writable: true });
    const other = new DatabaseSync(path);
    other.exec("BEGIN IMMEDIATE"); // another process holds the write lock past busy_timeout
    const err = await spool.enqueue([message(LANE, "refused")]).catch((e: unknown) => e);
    assert.ok(isCode(err, "UNAVAILABLE"), String(err));
    const down = spool.health();
    assert.equal(down.writable, false);
    assert.match(down.error ?? "", /locked/);
    other.exec("ROLLBACK");
    other.close();
    await spool.enqueue([message(LANE, "stored")]);
    assert.deepEqual(spool.health(), { writable: true });
  }));

test("a spool that cannot be written notices it can again without any post (health() tries)", () =>
  withSpool(async (spool, path) => {
    const other = new DatabaseSync(path);
    other.exec("BEGIN IMMEDIATE");
    await spool.delivered(["no-such-id"]).catch(() => undefined);
    assert.equal(spool.health().writable, false);
    other.exec("ROLLBACK");
    other.close();
    await until("health() to find the spool writable again", () => spool.health().writable);
  }));

test("DATA_DIR read-only with a WAL left over: the spool opens, says it cannot be written, refuses posts; writable again once the directory is", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gw-readonly-"));
  const path = spoolPath(dir);
  const acked = await writeAndKill(path, 5, LANE);
  const files = () => readdirSync(dir).map((f) => join(dir, f));
  assert.ok(
    files().some((f) => f.endsWith("-wal")),
    "the killed writer left its WAL",
  );
  // root ignores file modes: run the spool as nobody, the owner of the files, instead.
  const root = process.getuid?.() === 0;
  const NOBODY = 65534;
  if (root) for (const f of [dir, ...files()]) chownSync(f, NOBODY, NOBODY);
  const setMode = (dirMode: number, fileMode: number) => {
    for (const f of files()) chmodSync(f, fileMode);
    chmodSync(dir, dirMode);
  };
  setMode(0o555, 0o444);
  if (root) {
    process.setegid?.(NOBODY);
    process.seteuid?.(NOBODY);
  }
  let spool: Spool | undefined;
  try {
    spool = openSqliteSpool({ path, limits: LIMITS });
    assert.equal(
      (await spool.pending(LANE, 100)).length,
      acked.length,
      "what was acknowledged is readable",
    );
    const atOpen = spool.health();
    assert.equal(atOpen.writable, false, "known at open, before any post");
    assert.match(atOpen.error ?? "", /readonly|read-only|permission|EACCES|EROFS/i);
    const err = await spool.enqueue([message(LANE, "refused")]).catch((e: unknown) => e);
    assert.ok(isCode(err, "UNAVAILABLE"), String(err));
    assert.equal(spool.health().writable, false);
    setMode(0o755, 0o644);
    await until(
      "health() to find the spool writable again",
      () => spool?.health().writable === true,
    );
    await spool.enqueue([message(LANE, "stored")]);
    assert.equal(spool.stats().messages, acked.length + 1);
  } finally {
    await spool?.close();
    if (root) {
      process.seteuid?.(0);
      process.setegid?.(0);
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
