// The spool's start-up checks: a damaged file, or acknowledged messages gone with a
// damaged WAL, stop start-up with what is wrong and what to do; never an empty spool.
import assert from "node:assert/strict";
import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { tempDirs } from "../../test/support/temp-dirs.ts";
import { isCode } from "../core/errors.ts";
import { message } from "./spool.contract.ts";
import { openSqliteSpool, spoolPath } from "./sqlite.ts";
import { writeAndKill } from "./sqlite-killed.ts";

const LIMITS = { maxMessages: 100_000, maxBytes: 100_000_000 };
const LANE = { room: "ops@conf.example.org", nick: "bot" };
/** The high-water mark beside the spool file. */
const markOf = (path: string) => `${path}-highwater`;
const newDir = tempDirs("gw-integrity-");
const tempSpool = () => spoolPath(newDir());

/**
 * The bytes of the spool's files, to show a refusal changed nothing. A missing file and
 * an empty one are the same here: the check's read-only connection may leave an empty WAL.
 */
function snapshot(path: string): string[] {
  return [path, `${path}-wal`, markOf(path)].map((f) =>
    existsSync(f) ? readFileSync(f).toString("base64") : "",
  );
}

/** Asserts that opening the spool refuses with a message matching every pattern, and changes no file. */
function assertRefused(path: string, ...patterns: RegExp[]): void {
  const before = snapshot(path);
  assert.throws(
    () => openSqliteSpool({ path, limits: LIMITS }),
    (err) => {
      assert.ok(isCode(err, "UNAVAILABLE"), String(err));
      for (const p of patterns) assert.match((err as Error).message, p);
      return true;
    },
  );
  assert.deepEqual(snapshot(path), before, "the refusal changed no file");
}

async function count(path: string): Promise<number> {
  const spool = openSqliteSpool({ path, limits: LIMITS });
  const n = spool.stats().messages;
  await spool.close();
  return n;
}

test("a WAL zeroed while the gateway was stopped: start-up refuses and says 30 acknowledged messages are missing", async () => {
  const path = tempSpool();
  await writeAndKill(path, 30, LANE);
  const wal = `${path}-wal`;
  writeFileSync(wal, Buffer.alloc(statSync(wal).size));
  assertRefused(path, /missing/, /#30\b/, /up to 30 acknowledged/, /delete .*-highwater/);
});

test("a WAL cut short: start-up refuses, counting what is missing", async () => {
  const path = tempSpool();
  await writeAndKill(path, 40, LANE);
  const wal = `${path}-wal`;
  truncateSync(wal, Math.floor(statSync(wal).size / 2));
  assertRefused(path, /missing/, /#40\b/, /up to \d+ acknowledged/);
});

test("what was checkpointed before the damage is kept and counted: only the newest are missing", async () => {
  const path = tempSpool();
  const first = openSqliteSpool({ path, limits: LIMITS });
  for (let i = 0; i < 10; i++) await first.enqueue([message(LANE, `early${i}`)]);
  await first.close(); // the last connection checkpoints the WAL into the file
  await writeAndKill(path, 20, LANE);
  writeFileSync(`${path}-wal`, Buffer.alloc(statSync(`${path}-wal`).size));
  assertRefused(path, /up to #10\b/, /#30\b/, /up to 20 acknowledged/, /10 message\(s\) left/);
  // The operator's way out, as the message says: delete the mark and start with what is left.
  rmSync(markOf(path));
  assert.equal(await count(path), 10);
});

test("a kill -9, a clean stop, and a spool moved away all start without complaint", async () => {
  const path = tempSpool();
  await writeAndKill(path, 5, LANE);
  assert.ok(existsSync(markOf(path)), "the mark was written beside the spool");
  assert.equal(await count(path), 5);
  assert.equal(await count(path), 5);
  // Moved away on purpose (the spool file alone): a new empty spool, the old mark replaced.
  for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
  assert.equal(await count(path), 0);
  const spool = openSqliteSpool({ path, limits: LIMITS });
  await spool.enqueue([message(LANE, "new")]);
  await spool.close();
  assert.equal(await count(path), 1);
});

test("a damaged spool file stops start-up with what quick_check found and what to do", async () => {
  const path = tempSpool();
  const spool = openSqliteSpool({ path, limits: LIMITS });
  await spool.enqueue(Array.from({ length: 200 }, (_, i) => message(LANE, `${i}`.repeat(50))));
  await spool.close();
  const db = new DatabaseSync(path);
  const { rootpage } = db
    .prepare("SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_messages_1'")
    .get() as { rootpage: number };
  const pageSize = Number(db.prepare("PRAGMA page_size").get()?.page_size);
  db.close();
  // The index of the ids: every query the gateway runs at start still works without it.
  const fd = openSync(path, "r+");
  writeSync(fd, Buffer.alloc(pageSize, 0x5a), 0, pageSize, (rootpage - 1) * pageSize);
  closeSync(fd);
  assertRefused(path, /damaged/, /quick_check/, /sqlite_autoindex_messages_1|btree/i, /backup/);
});

test("a damaged high-water mark stops start-up; deleting it starts with what the spool holds", async () => {
  const path = tempSpool();
  await writeAndKill(path, 3, LANE);
  writeFileSync(markOf(path), Buffer.alloc(80));
  assertRefused(path, /high-water mark/, /damaged/, /3 message\(s\)/, /delete/);
  rmSync(markOf(path));
  assert.equal(await count(path), 3);
});
