#!/usr/bin/env node
// The xmpp-msg-gw executable.
import { rerunIfNeeded } from "./node-runtime.js";

if (!rerunIfNeeded(import.meta.filename ?? new URL(import.meta.url).pathname)) {
  const { runCli } = await import("../src/cli/index.ts");
  try {
    const code = await runCli(process.argv.slice(2), process.env);
    // serve resolves with -1 and keeps running until a signal stops it.
    if (code >= 0) process.stdout.write("", () => process.exit(code));
  } catch (err) {
    process.stderr.write(`xmpp-msg-gw: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
