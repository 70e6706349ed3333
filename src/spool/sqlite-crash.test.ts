// The spool's promises against the operating system: a process killed with SIGKILL
// (at a moment it chose, or at any moment) and a disk that refuses writes.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { tempDirs } from "../../test/support/temp-dirs.ts";
import { openSqliteSpool, spoolPath } from "./sqlite.ts";

const SPOOL_MODULE = new URL("./sqlite.ts", import.meta.url).href;
const LANE = { room: "crash@conf.example.org", nick: "bot" };
const LIMITS = { maxMessages: 1e9, maxBytes: 1e12 };
const tempDir = tempDirs("gw-crash-");

// Enqueues `total` one-message posts, ten per tick so that several batches are in flight
// at any moment, and prints "ok <id>" once each is acknowledged. With killAfter > 0 it
// SIGKILLs itself on that acknowledgement: nothing gets to close the database.
const WRITER = `
import { writeSync } from "node:fs";
const [moduleUrl, path, total, killAfter] = process.argv.slice(1);
const { openSqliteSpool } = await import(moduleUrl);
const spool = openSqliteSpool({ path, limits: ${JSON.stringify(LIMITS)} });
const lane = ${JSON.stringify(LANE)};
let acked = 0;
let i = 0;
function burst() {
  for (let k = 0; k < 10 && i < Number(total); k++, i++) {
    const id = "m" + String(i).padStart(7, "0");
    spool.enqueue([{ id, postId: id, route: "r", ...lane, body: "body of " + id }]).then(() => {
      writeSync(1, "ok " + id + "\\n");
      acked += 1;
      if (acked === Number(killAfter)) process.kill(process.pid, "SIGKILL");
    });
  }
  if (i < Number(total)) setImmediate(burst);
}
burst();
`;

// Stores a small post, then a 1 MB one that exceeds the file size limit (ulimit -f), then
// a small one again; prints what happened to each as a JSON line.
const DISK_FULL = `
const [moduleUrl, path] = process.argv.slice(1);
const { openSqliteSpool } = await import(moduleUrl);
const spool = openSqliteSpool({ path, limits: ${JSON.stringify(LIMITS)} });
const lane = ${JSON.stringify(LANE)};
const post = (id, body) => spool.enqueue([{ id, postId: id, route: "r", ...lane, body }])
  .then(() => "ok", (e) => e.code + " " + e.retryAfter + " " + e.message);
const results = [await post("small1", "a"), await post("big", "x".repeat(1 << 20)), await post("small2", "b")];
console.log(JSON.stringify({ results, stats: spool.stats() }));
await spool.close();
`;

const TS_FLAGS = (process.features as { typescript?: string }).typescript
  ? []
  : ["--experimental-strip-types"];

interface Child {
  acked: string[];
  stdout: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Runs a script in a child Node; `onLine` may kill it. */
function runChild(
  command: string[],
  script: string,
  args: string[],
  onLine?: (acked: number, kill: () => void) => void,
): Promise<Child> {
  const [cmd = process.execPath, ...pre] = command;
  const child = spawn(cmd, [...pre, ...TS_FLAGS, "--input-type=module", "-e", script, ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const result: Child = { acked: [], stdout: "", code: null, signal: null };
  let partial = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    result.stdout += chunk;
    const lines = (partial + chunk).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      if (line.startsWith("ok ")) result.acked.push(line.slice(3));
    }
    onLine?.(result.acked.length, () => child.kill("SIGKILL"));
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ ...result, code, signal }));
  });
}

/** Reopens the spool after the crash: every acknowledged message must be there, in order. */
async function assertSurvived(path: string, acked: readonly string[]): Promise<number> {
  const check = new DatabaseSync(path);
  assert.equal(check.prepare("PRAGMA integrity_check").get()?.integrity_check, "ok");
  check.close();
  const spool = openSqliteSpool({ path, limits: LIMITS });
  try {
    const stored = (await spool.pending(LANE, 1e9)).map((m) => m.id);
    const have = new Set(stored);
    const lost = acked.filter((id) => !have.has(id));
    assert.deepEqual(lost, [], `${lost.length} acknowledged message(s) lost`);
    assert.deepEqual(stored, stored.toSorted(), "stored in the order they were posted");
    assert.equal(spool.stats().messages, stored.length);
    await spool.enqueue([{ id: "after", postId: "after", route: "r", ...LANE, body: "x" }]);
    return stored.length;
  } finally {
    await spool.close();
  }
}

test("after a SIGKILL right after an acknowledgement, every acknowledged message is there", async (t) => {
  const path = spoolPath(tempDir());
  const child = await runChild([process.execPath], WRITER, [SPOOL_MODULE, path, "2000", "300"]);
  assert.equal(child.signal, "SIGKILL");
  assert.equal(child.acked.length, 300);
  const stored = await assertSurvived(path, child.acked);
  t.diagnostic(`${child.acked.length} acknowledged, ${stored} stored`);
});

test("after a SIGKILL at an arbitrary moment of a write burst, every acknowledged message is there", async (t) => {
  const path = spoolPath(tempDir());
  const child = await runChild(
    [process.execPath],
    WRITER,
    [SPOOL_MODULE, path, "1000000", "0"],
    (acked, kill) => {
      if (acked >= 1000) kill();
    },
  );
  assert.equal(child.signal, "SIGKILL");
  assert.ok(child.acked.length >= 1000);
  const stored = await assertSurvived(path, child.acked);
  t.diagnostic(`${child.acked.length} acknowledged, ${stored} stored`);
});

test("a disk that refuses a write fails that post as UNAVAILABLE; the spool goes on working", {
  skip: process.platform === "win32" ? "needs ulimit -f" : false,
}, async () => {
  const path = spoolPath(tempDir());
  openSqliteSpool({ path, limits: LIMITS }).close(); // create it without the limit
  // Node ignores SIGXFSZ, so a write beyond RLIMIT_FSIZE fails with EFBIG, which
  // SQLite reports as SQLITE_IOERR or SQLITE_FULL: a real disk error, not a simulation.
  const child = await runChild(
    ["sh", "-c", 'ulimit -f 256 && exec "$@"', "sh", process.execPath],
    DISK_FULL,
    [SPOOL_MODULE, path],
  );
  assert.equal(child.code, 0, child.stdout);
  const { results, stats } = JSON.parse(child.stdout);
  assert.equal(results[0], "ok");
  assert.match(results[1], /^UNAVAILABLE 30 the spool could not be written: /);
  assert.equal(results[2], "ok");
  assert.deepEqual(stats, { messages: 2, bytes: 2, deadLetters: 0 });
  const spool = openSqliteSpool({ path, limits: LIMITS });
  assert.deepEqual(
    (await spool.pending(LANE, 10)).map((m) => m.id),
    ["small1", "small2"],
  );
  await spool.close();
});
