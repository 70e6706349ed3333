#!/usr/bin/env node
// The xmpp-msg-gw executable. The sources are TypeScript run by Node's own type
// stripping (on by default from Node 22.18; older 22.x need the flag, so re-run with it).
import { spawn } from "node:child_process";

if (!process.features.typescript) {
  const child = spawn(
    process.execPath,
    [
      "--experimental-strip-types",
      "--disable-warning=ExperimentalWarning",
      import.meta.filename,
      ...process.argv.slice(2),
    ],
    { stdio: "inherit" },
  );
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"])
    process.on(signal, () => child.kill(signal));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
} else {
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
