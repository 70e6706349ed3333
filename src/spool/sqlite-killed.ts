/**
 * For the spool's tests: leaves a spool file the way a gateway killed with SIGKILL leaves
 * it, with its newest commits still in the `-wal` file and the `-shm` index beside it
 * (a closed spool checkpoints and deletes both, so only a real kill makes this state).
 * `claimAndKill` does the same after a dedupe claim and a thread anchor (issue 13).
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { DedupeClaim, Lane, NewMessage, ThreadAnchor } from "./types.ts";

const SPOOL_MODULE = new URL("./sqlite.ts", import.meta.url).href;
const TS_FLAGS = (process.features as { typescript?: string }).typescript
  ? []
  : ["--experimental-strip-types"];

// Enqueues `count` one-message posts one after the other, then SIGKILLs itself before
// anything could close the database.
const WRITER = `
const [moduleUrl, path, count, lane] = process.argv.slice(1);
const { openSqliteSpool } = await import(moduleUrl);
const spool = openSqliteSpool({ path, limits: { maxMessages: 1e9, maxBytes: 1e12 } });
for (let i = 0; i < Number(count); i++) {
  const id = "m" + String(i).padStart(7, "0");
  await spool.enqueue([{ id, postId: id, route: "r", ...JSON.parse(lane), body: "body of " + id }]);
}
process.kill(process.pid, "SIGKILL");
`;

// Enqueues one post under a dedupe claim and records a thread anchor (both given as JSON),
// waits for both to be acknowledged, then SIGKILLs itself.
const CLAIMER = `
const [moduleUrl, path, post, claim, anchor] = process.argv.slice(1);
const { openSqliteSpool } = await import(moduleUrl);
const spool = openSqliteSpool({ path, limits: { maxMessages: 1e9, maxBytes: 1e12 } });
const [room, group, record] = JSON.parse(anchor);
await Promise.all([
  spool.enqueueOnce(JSON.parse(post), JSON.parse(claim)),
  spool.recordAnchor(room, group, record),
]);
process.kill(process.pid, "SIGKILL");
`;

/** Runs `script` in a child Node with `args`; resolves once the child is SIGKILLed (rejects if it ends otherwise). */
async function runUntilKilled(script: string, args: readonly string[]): Promise<void> {
  const argv = [...TS_FLAGS, "--input-type=module", "-e", script, SPOOL_MODULE, ...args];
  // The promise rejects on the kill, which is the expected end.
  const failed = await promisify(execFile)(process.execPath, argv).then(
    () => new Error("the writer exited instead of being killed"),
    (err: { signal?: string; stderr?: string }) =>
      err.signal === "SIGKILL" ? undefined : new Error(`the writer failed: ${err.stderr}`),
  );
  if (failed) throw failed;
}

/** Runs a child that acknowledges `count` messages into the spool at `path` and is then killed; resolves with their ids. */
export async function writeAndKill(path: string, count: number, lane: Lane): Promise<string[]> {
  await runUntilKilled(WRITER, [path, String(count), JSON.stringify(lane)]);
  return Array.from({ length: count }, (_, i) => `m${String(i).padStart(7, "0")}`);
}

/** Runs a child that acknowledges `post` under `claim` and the anchor of (room, group) into the spool at `path`, and is then killed. */
export async function claimAndKill(
  path: string,
  post: readonly NewMessage[],
  claim: DedupeClaim,
  anchor: { room: string; group: string; record: Omit<ThreadAnchor, "resolvedAt"> },
): Promise<void> {
  const where = JSON.stringify([anchor.room, anchor.group, anchor.record]);
  await runUntilKilled(CLAIMER, [path, JSON.stringify(post), JSON.stringify(claim), where]);
}
