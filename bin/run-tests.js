#!/usr/bin/env node
// The test command: unit tests next to the code (src/**/*.test.ts) and integration
// tests against a real Prosody (test/**/*.test.ts), with Node's own test runner.
import { spawnSync } from "node:child_process";

const unitOnly = process.argv.includes("--unit");
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 13)) {
  console.error(
    `xmpp-msg-gw needs Node.js 22.13 or newer (24 LTS recommended); this is ${process.version}`,
  );
  process.exit(1);
}
if (!unitOnly && spawnSync("sh", ["-c", "command -v prosody"]).status !== 0) {
  console.error(
    "Prosody is not installed: run `sudo apt-get install -y prosody` (Debian/Ubuntu), or `npm run test:unit` for the unit tests alone.",
  );
  process.exit(1);
}
const flags = process.features.typescript
  ? []
  : ["--experimental-strip-types", "--disable-warning=ExperimentalWarning"];
const globs = unitOnly ? ["src/**/*.test.ts"] : ["src/**/*.test.ts", "test/**/*.test.ts"];
const args = [...flags, "--test", "--test-concurrency=2", "--test-timeout=120000", ...globs];
const result = spawnSync(process.execPath, args, { stdio: "inherit" });
process.exit(result.status ?? 1);
