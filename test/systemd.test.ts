// docs/systemd/xmpp-msg-gw.service, read as systemd reads it: the essentials an operator
// relies on, the executable started directly (it execs the program the tests run), an
// environment the gateway accepts, and `systemd-analyze verify` (plus its offline security
// review) where systemd-analyze is installed. Without it the parse checks still run.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { loadConfig } from "../src/config/index.ts";
import { findExecutable } from "../src/devserver/process.ts";
import { assertEmbedsVerbatim, REPO_ROOT } from "./support/doc-blocks.ts";

const UNIT = "docs/systemd/xmpp-msg-gw.service";
const ENV = "docs/systemd/env";
const read = (name: string) => readFileSync(path.join(REPO_ROOT, name), "utf8");
const unitText = read(UNIT);

/** Sections → keys → values in order (a key may repeat); comments and blank lines dropped. */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const line of text.replace(/\\\n/g, " ").split("\n")) {
    const l = line.trim();
    if (l === "" || l.startsWith("#") || l.startsWith(";")) continue;
    const header = /^\[(.+)\]$/.exec(l);
    if (header) {
      current = new Map();
      sections.set(header[1] as string, current);
      continue;
    }
    const eq = l.indexOf("=");
    assert.ok(current && eq > 0, `not a key=value line in a section: ${l}`);
    const key = l.slice(0, eq).trim();
    current.set(key, [...(current.get(key) ?? []), l.slice(eq + 1).trim()]);
  }
  return sections;
}

const unit = parseUnit(unitText);
const service = unit.get("Service") ?? new Map<string, string[]>();
/** The value of a key set once in [Service] (fails when set twice or not at all). */
function one(key: string): string {
  const values = service.get(key) ?? [];
  assert.equal(values.length, 1, `${key}= set once in [Service], found ${values.length}`);
  return values[0] as string;
}

/** systemd's `"..."` value: quotes removed, `\"` and `\\` unescaped. */
const unquote = (v: string) => (/^".*"$/.test(v) ? v.slice(1, -1).replace(/\\(["\\])/g, "$1") : v);

/** Environment= lines: space-separated assignments, each possibly quoted. */
function unitEnvironment(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of service.get("Environment") ?? []) {
    for (const word of line.match(/(?:[^\s"]+|"(?:[^"\\]|\\.)*")+/g) ?? []) {
      const eq = word.indexOf("=");
      env[word.slice(0, eq)] = unquote(word.slice(eq + 1));
    }
  }
  return env;
}

/** An EnvironmentFile=: KEY=value lines, # and ; comments, double-quoted values. */
function environmentFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const l = line.trim();
    if (l === "" || l.startsWith("#") || l.startsWith(";")) continue;
    const eq = l.indexOf("=");
    assert.ok(eq > 0 && !l.startsWith("export "), `not systemd's KEY=value: ${l}`);
    env[l.slice(0, eq).trim()] = unquote(l.slice(eq + 1).trim());
  }
  return env;
}

/** systemd time spans as used here: "30s", "2min", "1min 30s", or plain seconds. */
function seconds(span: string): number {
  const units: Record<string, number> = { "": 1, s: 1, sec: 1, m: 60, min: 60, h: 3600 };
  let total = 0;
  for (const part of span.trim().split(/\s+/)) {
    const m = /^(\d+)([a-z]*)$/.exec(part);
    assert.ok(m && (m[2] as string) in units, `unsupported time span: ${span}`);
    total += Number(m[1]) * (units[m[2] as string] as number);
  }
  return total;
}

test("systemd unit: starts the executable directly, which execs `node bin/xmpp-msg-gw.js serve`", () => {
  // Not through npm (a wrapper process): $MAINPID, which ExecReload and KillSignal reach,
  // is the gateway itself (test/runtime.test.ts sends both signals to that PID).
  assert.equal(one("ExecStart"), "/opt/xmpp-msg-gw/bin/xmpp-msg-gw serve");
  // serve reloads routes and templates on SIGHUP (test/reload.test.ts).
  assert.equal(one("ExecReload"), "/bin/kill -HUP $MAINPID");
  assert.equal(one("Type"), "exec");
  // /opt/xmpp-msg-gw is a checkout of this repository: the launcher is there, and is the bin.
  assert.equal(JSON.parse(read("package.json")).bin["xmpp-msg-gw"], "bin/xmpp-msg-gw");
  // Two `exec`s (bin/xmpp-msg-gw → bin/node → Node on bin/xmpp-msg-gw.js): one PID.
  const launcher = read("bin/xmpp-msg-gw");
  assert.match(launcher, /^#!\/bin\/sh\n/);
  assert.match(launcher, /\nexec "\$root\/bin\/node" "\$root\/bin\/xmpp-msg-gw\.js" "\$@"\n$/);
  assert.match(read("bin/node"), /\nexec "\$node" \$flags "\$@"\n$/);
  // test/cli.test.ts spawns exactly: node bin/xmpp-msg-gw.js serve, as the container does.
  assert.match(read("test/cli.test.ts"), /spawn\(process\.execPath, \[BIN, "serve"\]/);
  assert.match(read("Dockerfile"), /ENTRYPOINT \["node", "\S*bin\/xmpp-msg-gw\.js"\]/);
});

test("systemd unit: own user, settings from /etc/xmpp-msg-gw/env, the spool in its StateDirectory", () => {
  assert.equal(one("User"), "xmpp-msg-gw");
  assert.equal(one("Group"), "xmpp-msg-gw");
  assert.equal(one("EnvironmentFile"), "/etc/xmpp-msg-gw/env");
  assert.equal(one("StateDirectory"), "xmpp-msg-gw");
  assert.equal(one("StateDirectoryMode"), "0700");
  assert.equal(one("WorkingDirectory"), "/etc/xmpp-msg-gw");
  assert.deepEqual(unitEnvironment(), {
    DATA_DIR: "/var/lib/xmpp-msg-gw",
    HTTP_HOST: "127.0.0.1",
    TRUST_PROXY: "127.0.0.1",
  });
  assert.deepEqual(unit.get("Install")?.get("WantedBy"), ["multi-user.target"]);
  assert.deepEqual(unit.get("Unit")?.get("After"), ["network-online.target"]);
  assert.deepEqual(unit.get("Unit")?.get("Wants"), ["network-online.target"]);
});

test("systemd unit + the example env file: a configuration the gateway accepts, as systemd merges it", () => {
  const fromFile = environmentFile(read(ENV));
  // EnvironmentFile= overrides Environment=; the example leaves the unit's three alone.
  const config = loadConfig({ ...unitEnvironment(), ...fromFile });
  assert.equal(config.dataDir, `/var/lib/${one("StateDirectory")}`);
  assert.deepEqual(config.http, { host: "127.0.0.1", port: 10080, trustProxy: ["127.0.0.1"] });
  assert.equal(config.xmpp.jid, "alerts@example.org");
  assert.deepEqual(
    config.routes.map((r) => r.name),
    ["ops@conference.example.org/grafana", "dev@conference.example.org/ci-bot"],
  );
});

test("systemd unit: SIGTERM, with time for the graceful stop; restarted on failure", () => {
  assert.equal(one("KillSignal"), "SIGTERM");
  assert.equal(one("Restart"), "on-failure");
  // serve waits SHUTDOWN_GRACE_MS for confirmations, then up to 2 s for the XMPP close.
  const { shutdownGraceMs } = loadConfig({ ...unitEnvironment(), ...environmentFile(read(ENV)) });
  const stopMs = seconds(one("TimeoutStopSec")) * 1000;
  assert.ok(
    stopMs >= shutdownGraceMs + 2000 + 10_000,
    `TimeoutStopSec (${stopMs} ms) leaves at least 10 s beyond the ${shutdownGraceMs} ms grace and the 2 s close`,
  );
});

test("systemd unit: hardened (no privileges, read-only system, no homes, private /tmp)", () => {
  const expected: Record<string, string> = {
    NoNewPrivileges: "yes",
    CapabilityBoundingSet: "",
    AmbientCapabilities: "",
    ProtectSystem: "strict",
    ProtectHome: "yes",
    PrivateTmp: "yes",
    PrivateDevices: "yes",
    ProtectKernelTunables: "yes",
    ProtectKernelModules: "yes",
    ProtectControlGroups: "yes",
    RestrictSUIDSGID: "yes",
    LockPersonality: "yes",
    SystemCallArchitectures: "native",
    UMask: "0077",
  };
  for (const [key, value] of Object.entries(expected)) assert.equal(one(key), value, key);
  // V8's JIT needs W+X memory: this one would kill node at start.
  assert.equal(service.get("MemoryDenyWriteExecute"), undefined);
  // Nothing may be writable but the StateDirectory.
  assert.equal(service.get("ReadWritePaths"), undefined);
});

test("systemd-analyze verify accepts the unit (where systemd-analyze is installed)", async (t) => {
  const analyze = findExecutable("systemd-analyze");
  if (analyze === undefined) {
    t.diagnostic("systemd-analyze is not installed: the parse checks above are all that ran");
    return;
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), "xmpp-msg-gw-systemd-"));
  try {
    // verify checks that ExecStart's program exists: point it at this checkout.
    const local = unitText.replaceAll("/opt/xmpp-msg-gw/", `${REPO_ROOT.replace(/\/$/, "")}/`);
    const file = path.join(dir, "xmpp-msg-gw.service");
    await writeFile(file, local);
    const verify = await run(analyze, ["verify", "--man=no", file]);
    assert.equal(verify.code, 0, verify.output);
    // Unknown keys and bad values are only warnings to verify: there must be none.
    assert.equal(verify.output, "", "systemd-analyze verify printed warnings");
    const security = await run(analyze, ["security", "--offline=yes", file]);
    const exposure = /Overall exposure level for xmpp-msg-gw\.service: (\d+\.\d+)/.exec(
      security.output,
    );
    if (exposure === null) {
      t.diagnostic(`no offline security review here: ${security.output.split("\n")[0]}`);
    } else {
      assert.ok(Number(exposure[1]) <= 2.0, `exposure ${exposure[1]} (at most 2.0 wanted)`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("docs/systemd.md shows the unit and the env file exactly as tested", () => {
  assertEmbedsVerbatim("docs/systemd.md", [UNIT, ENV]);
});

function run(file: string, args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 20_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, output: `${stdout}${stderr}`.trim() });
    });
  });
}
