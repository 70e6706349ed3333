// Makes the executables work on any machine with npm: the sources are TypeScript run by
// Node's own type stripping, which needs Node 22.13 or newer. On an older Node, re-run
// the same script under Node 24 LTS fetched from the npm registry (`npx node@24`); on
// 22.13 to 22.17, re-run with the flag that turns type stripping on.
import { spawn } from "node:child_process";

/** True when this process can run the TypeScript sources as they are. */
function ready() {
  return process.features.typescript === "strip" || process.features.typescript === "transform";
}

/** Re-runs `script` under a suitable Node, forwarding signals and the exit code; returns false if this Node will do. */
export function rerunIfNeeded(script, { compiled = false } = {}) {
  const [major, minor] = process.versions.node.split(".").map(Number);
  const recent = major > 22 || (major === 22 && minor >= 13);
  // Compiled JavaScript (dist/) needs no type stripping, only a recent enough Node.
  if (compiled ? recent : ready()) return false;
  const [cmd, args] = recent
    ? [
        process.execPath,
        ["--experimental-strip-types", "--disable-warning=ExperimentalWarning", script],
      ]
    : ["npx", ["--yes", "node@24", script]];
  if (!recent) {
    process.stderr.write(
      `xmpp-msg-gw: Node ${process.version} is too old (22.13+ needed); running under Node 24 via npx node@24\n`,
    );
  }
  const child = spawn(cmd, [...args, ...process.argv.slice(2)], { stdio: "inherit" });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"])
    process.on(signal, () => child.kill(signal));
  child.on("error", (err) => {
    process.stderr.write(
      `xmpp-msg-gw: cannot start ${cmd}: ${err.message}; install Node.js 24 LTS\n`,
    );
    process.exit(1);
  });
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
  return true;
}
