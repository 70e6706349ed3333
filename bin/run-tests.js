#!/usr/bin/env node
// The test command: unit tests next to the code (src/**/*.test.ts) and integration
// tests against a real Prosody (test/**/*.test.ts), with Node's own test runner.
import { spawnSync } from "node:child_process";
import { rerunIfNeeded } from "./node-runtime.js";

if (!rerunIfNeeded(import.meta.filename ?? new URL(import.meta.url).pathname)) {
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
  ].filter(([probe]) => spawnSync("sh", ["-c", `${probe} >/dev/null 2>&1`]).status !== 0);
  if (!unitOnly && missing.length > 0) {
    const names = missing.map(([, name]) => name).join(" ");
    console.error(
      `${names}: not installed; the integration tests need them: run \`sudo apt-get install -y ${names}\` (Debian/Ubuntu), or \`npm run test:unit\` for the unit tests alone.`,
    );
    process.exit(1);
  }
  const globs = unitOnly ? ["src/**/*.test.ts"] : ["src/**/*.test.ts", "test/**/*.test.ts"];
  const flags = process.features.typescript ? [] : ["--experimental-strip-types"];
  const args = [...flags, "--test", "--test-concurrency=2", "--test-timeout=120000", ...globs];
  const result = spawnSync(process.execPath, args, { stdio: "inherit" });
  process.exit(result.status ?? 1);
}
