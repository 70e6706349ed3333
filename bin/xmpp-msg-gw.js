#!/usr/bin/env node
// The xmpp-msg-gw executable. A checkout runs its TypeScript sources (Node's type
// stripping); the container image, which carries only the compiled JavaScript in dist/
// (`npm run build`), runs that: about 40 MB less memory, no type stripper loaded
// (BENCHMARKS.md). XMPP_MSG_GW_COMPILED=1 makes a checkout run its build too.
import { existsSync } from "node:fs";
import { rerunIfNeeded } from "./node-runtime.js";

const source = new URL("../src/cli/index.ts", import.meta.url);
const build = new URL("../dist/cli/index.js", import.meta.url);
const compiled =
  existsSync(build) && (!existsSync(source) || process.env.XMPP_MSG_GW_COMPILED === "1");

if (!rerunIfNeeded(import.meta.filename ?? new URL(import.meta.url).pathname, { compiled })) {
  const { runCli } = await import(compiled ? build.href : source.href);
  try {
    const code = await runCli(process.argv.slice(2), process.env);
    // serve resolves with -1 and keeps running until a signal stops it.
    if (code >= 0) process.stdout.write("", () => process.exit(code));
  } catch (err) {
    process.stderr.write(`xmpp-msg-gw: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
