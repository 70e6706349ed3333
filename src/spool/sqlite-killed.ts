/**
 * For the spool's tests: leaves a spool file the way a gateway killed with SIGKILL leaves
 * it, with its newest commits still in the `-wal` file and the `-shm` index beside it
 * (a closed spool checkpoints and deletes both, so only a real kill makes this state).
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { Lane } from "./types.ts";

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

/** Runs a child that acknowledges `count` messages into the spool at `path` and is then killed; resolves with their ids. */
export async function writeAndKill(path: string, count: number, lane: Lane): Promise<string[]> {
  const args = [...TS_FLAGS, "--input-type=module", "-e", WRITER, SPOOL_MODULE, path];
  // The promise rejects on the kill, which is the expected end.
  const failed = await promisify(execFile)(process.execPath, [
    ...args,
    String(count),
    JSON.stringify(lane),
  ]).then(
    () => new Error("the writer exited instead of being killed"),
    (err: { signal?: string; stderr?: string }) =>
      err.signal === "SIGKILL" ? undefined : new Error(`the writer failed: ${err.stderr}`),
  );
  if (failed) throw failed;
  return Array.from({ length: count }, (_, i) => `m${String(i).padStart(7, "0")}`);
}
