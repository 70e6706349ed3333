#!/usr/bin/env node
// The test command: unit tests next to the code (src/**/*.test.ts) and integration
// tests against a real Prosody (test/**/*.test.ts), with Node's own test runner.
// `npm test` runs it under the Node 24 that `npm ci` put in node_modules/.bin.
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { requireRunnableNode } from "./node-runtime.js";

// It passes --experimental-strip-types itself where a Node 22 needs it.
requireRunnableNode({ typescript: false });
const unitOnly = process.argv.includes("--unit");
if (!unitOnly && spawnSync("sh", ["-c", "command -v prosody"]).status !== 0) {
  console.error(
    "Prosody is not installed: run `sudo apt-get install -y prosody` (Debian/Ubuntu), or `npm run test:unit` for the unit tests alone.",
  );
  process.exit(1);
}
const missing = [
  ["command -v ejabberdctl || test -x /usr/sbin/ejabberdctl", "ejabberd"],
  ["/usr/bin/python3 -c 'import slixmpp'", "python3-slixmpp"],
  ["command -v nginx || test -x /usr/sbin/nginx", "nginx"],
  ["command -v amtool", "prometheus-alertmanager"],
  // test/spool-postgres*.test.ts start their own PostgreSQL (Debian's binaries are off PATH).
  ["ls /usr/lib/postgresql/*/bin/initdb || command -v initdb", "postgresql"],
  // test/container-run.test.ts builds and runs the image (no Docker engine needed).
  ["command -v podman", "podman"],
  ["command -v buildah", "buildah"],
  ["command -v runc", "runc"],
  ["command -v mmdebstrap", "mmdebstrap"],
].filter(([probe]) => spawnSync("sh", ["-c", `${probe} >/dev/null 2>&1`]).status !== 0);
if (!unitOnly && missing.length > 0) {
  const names = missing.map(([, name]) => name).join(" ");
  console.error(
    `${names}: not installed; the integration tests need them: run \`sudo apt-get install -y ${names}\` (Debian/Ubuntu), or \`npm run test:unit\` for the unit tests alone.`,
  );
  process.exit(1);
}
// Test files may be named (`npm test -- test/cli.test.ts`); by default all of them run.
const files = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const defaults = unitOnly ? ["src/**/*.test.ts"] : ["src/**/*.test.ts", "test/**/*.test.ts"];
const globs = files.length > 0 ? files : defaults;
const flags = process.features.typescript ? [] : ["--experimental-strip-types"];
const args = [...flags, "--test", "--test-concurrency=2", "--test-timeout=120000", ...globs];
// Whatever the tests put in the temp dir (spools, configs, throwaway Prosody and ejabberd)
// goes into one fresh TMPDIR, removed when the run ends, however it ends. Mode 0711: the
// ejabberd the tests start runs as the user ejabberd and must reach its dir inside.
const tmp = mkdtempSync(`${tmpdir()}/xmpp-msg-gw-tests-`);
chmodSync(tmp, 0o711);
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));
const env = { ...process.env, TMPDIR: tmp };
const child = spawn(process.execPath, args, { stdio: "inherit", env });
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 130 : 1)));
