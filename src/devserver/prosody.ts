// A throwaway, loopback-only Prosody 0.12 for integration tests and `xmpp-msg-gw demo`: own
// temp dir, own self-signed CA, random ports, killed by PID on stop() and at process exit.
// Option names below were checked against /usr/lib/prosody (Debian 0.12.3), not guessed.

import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { generateCerts, run, type TestCerts } from "./certs.ts";
import {
  findExecutable,
  freePort,
  listenAndClose,
  PortInUseError,
  requireExecutable,
  retryWhilePortInUse,
  type ServerProcess,
  serverControls,
  spawnServer,
  streamProbe,
} from "./process.ts";
import type { XmppTestServer } from "./xmpp-server.ts";

/** A running throwaway Prosody (see {@link XmppTestServer}), also on ::1 when the host has it. */
export interface ProsodyServer extends XmppTestServer {
  kind: "prosody";
}

/** Options for {@link startProsody}. */
export interface StartProsodyOptions {
  /** Accounts to create before the server is handed out. */
  users?: Array<{ user: string; password: string }>;
  /** Lua appended to the global section, for tests that need a non-default server. */
  extraConfig?: string;
}

const DOMAIN = "localhost";
const MUC_DOMAIN = "conference.localhost";
const HOST = "127.0.0.1";
const START_TIMEOUT_MS = 10_000;

/** Returns the path of the prosody binary, or throws one line telling how to install it. */
export function requireProsody(): string {
  return requireExecutable(
    "prosody",
    "Prosody is not installed: run `sudo apt-get install -y prosody` (Debian/Ubuntu) or see " +
      "https://prosody.im/download/start; the integration tests need a real XMPP server.",
  );
}

/** Starts a fresh Prosody on random loopback ports and registers `opts.users`. */
export async function startProsody(opts: StartProsodyOptions = {}): Promise<ProsodyServer> {
  const prosody = requireProsody();
  const ctl = findExecutable("prosodyctl") ?? path.join(path.dirname(prosody), "prosodyctl");
  const [certs, ipv6] = await Promise.all([generateCerts(), loopbackV6Works()]);
  return retryWhilePortInUse(async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "xmpp-msg-gw-prosody-"));
    try {
      return await startIn(dir, prosody, ctl, certs, ipv6, opts);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  });
}

async function startIn(
  dir: string,
  prosody: string,
  ctl: string,
  certs: TestCerts,
  ipv6: boolean,
  opts: StartProsodyOptions,
): Promise<ProsodyServer> {
  const file = (name: string): string => path.join(dir, name);
  await mkdir(file("data"));
  await writeFile(file("ca.pem"), certs.caPem);
  await writeFile(file("localhost.crt"), certs.certPem);
  await writeFile(file("localhost.key"), certs.keyPem, { mode: 0o600 });
  const c2sPort = await freePort(ipv6);
  let directTlsPort = await freePort(ipv6);
  while (directTlsPort === c2sPort) directTlsPort = await freePort(ipv6);
  const interfaces = ipv6 ? [HOST, "::1"] : [HOST];
  const configFile = file("prosody.cfg.lua");
  await writeFile(configFile, renderConfig(dir, c2sPort, directTlsPort, interfaces, opts));

  const register = async (user: string, password: string): Promise<void> => {
    await run(ctl, ["--config", configFile, "register", user, DOMAIN, password]);
  };
  // Accounts are plain files, so prosodyctl can write them while Prosody boots.
  const registered = Promise.allSettled(
    (opts.users ?? []).map((u) => register(u.user, u.password)),
  );
  let proc: ServerProcess;
  try {
    proc = await launch(prosody, configFile, dir, c2sPort);
  } finally {
    await registered; // never leave prosodyctl writing into a dir about to be removed
  }
  for (const result of await registered) {
    if (result.status === "rejected") {
      await proc.stop();
      throw result.reason;
    }
  }

  const controls = serverControls(
    proc,
    () => launch(prosody, configFile, dir, c2sPort),
    dir,
    (pid) => {
      server.pid = pid;
    },
  );
  const server: ProsodyServer = {
    kind: "prosody",
    domain: DOMAIN,
    mucDomain: MUC_DOMAIN,
    host: HOST,
    c2sPort,
    directTlsPort,
    caFile: file("ca.pem"),
    dir,
    pid: proc.pid,
    logFile: file("prosody.log"),
    register,
    ...controls,
  };
  return server;
}

/** Renders the Lua config; every option used here exists in Prosody 0.12's sources. */
function renderConfig(
  dir: string,
  c2sPort: number,
  directTlsPort: number,
  interfaces: string[],
  opts: StartProsodyOptions,
): string {
  const s = (value: string): string => `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
  const isRoot = process.getuid?.() === 0;
  const ifaces = interfaces.map(s).join(", ");
  // Each global option once: one that extraConfig sets replaces the harness's own, since
  // Prosody 0.12 fails to word its duplicate-option warning (and exits) when the config
  // file's path is longer than Lua's 60-character source names.
  const globals: Array<[string, string]> = [
    ...(isRoot
      ? [["run_as_root", "true -- mod_posix refuses root otherwise"] as [string, string]]
      : []),
    ["pidfile", s(path.join(dir, "prosody.pid"))],
    ["data_path", s(path.join(dir, "data"))],
    ["certificates", s(dir)],
    [
      "ssl",
      `{ certificate = ${s(path.join(dir, "localhost.crt"))}; key = ${s(path.join(dir, "localhost.key"))} }`,
    ],
    [
      "log",
      `{
  { levels = { min = "debug" }, to = "file", filename = ${s(path.join(dir, "prosody.log"))} };
  { levels = { min = "error" }, to = "console" };
}`,
    ],
    ["interfaces", `{ ${ifaces} }`],
    ["local_interfaces", `{ ${ifaces} }`],
    ["c2s_ports", `{ ${c2sPort} }`],
    ["c2s_direct_tls_ports", `{ ${directTlsPort} }`],
    ["s2s_ports", "{ }"],
    ["http_ports", "{ }"],
    ["https_ports", "{ }"],
    ["authentication", '"internal_hashed"'],
    // RFC 5802's floor instead of 10000: @xmpp/client's SCRAM costs ~50 us per iteration.
    ["default_iteration_count", "4096"],
    ["storage", '"internal"'],
    ["c2s_require_encryption", "true"],
    ["allow_registration", "false"],
    ["modules_enabled", '{ "roster", "saslauth", "tls", "disco", "ping", "smacks" }'],
    // No server-to-server traffic in a test; s2s is autoloaded, so disable it explicitly.
    ["modules_disabled", '{ "s2s", "s2s_auth_certs" }'],
  ];
  const extra = opts.extraConfig ?? "";
  const overridden = new Set([...extra.matchAll(/^([A-Za-z_]\w*)\s*=/gm)].map((m) => m[1]));
  const own = globals
    .filter(([name]) => !overridden.has(name))
    .map(([name, value]) => `${name} = ${value}`);
  return `-- Generated by src/devserver/prosody.ts; thrown away with this directory.
${own.join("\n")}
${extra}

VirtualHost "${DOMAIN}"

Component "${MUC_DOMAIN}" "muc"
  modules_enabled = { "muc_mam" }
  restrict_room_creation = false
  -- Room locking stays on (the default): the gateway must unlock rooms it creates.
  muc_room_default_history_length = 20
  muc_log_by_default = true
`;
}

/** Spawns Prosody in the foreground and resolves once it serves `localhost` on c2sPort. */
async function launch(
  prosody: string,
  config: string,
  dir: string,
  port: number,
): Promise<ServerProcess> {
  const proc = await spawnServer(prosody, ["-F", "--config", config], {
    cwd: dir,
    stdout: path.join(dir, "prosody.stdout"),
    stderr: path.join(dir, "prosody.stderr"),
    removeOnExit: dir,
  });
  // Prosody answers a stream header only once its loop runs, i.e. after every port is bound.
  if (await proc.waitUntil(() => streamProbe(HOST, port, DOMAIN), START_TIMEOUT_MS)) return proc;
  // Whether it died by itself must be read before stop() kills it.
  const died = proc.hasExited();
  await proc.stop();
  const logs = tailLogs(dir);
  const why = died
    ? `Prosody exited (code ${proc.child.exitCode}, signal ${proc.child.signalCode}) during start-up`
    : `Prosody did not answer on port ${port} within ${START_TIMEOUT_MS} ms`;
  const portBusy = /Failed to open server port|Address already in use/i.test(logs);
  throw new (portBusy ? PortInUseError : Error)(`${why}; log tail:\n${logs}`);
}

function tailLogs(dir: string): string {
  const parts: string[] = [];
  for (const name of ["prosody.stderr", "prosody.stdout", "prosody.log"]) {
    let text = "";
    try {
      text = readFileSync(path.join(dir, name), "utf8").trim();
    } catch {
      // Not written yet: nothing to show.
    }
    if (text !== "") parts.push(`--- ${name}\n${text.split("\n").slice(-30).join("\n")}`);
  }
  return parts.join("\n") || "(no output)";
}

let v6: Promise<boolean> | undefined;

/** Whether ::1 can be bound here (containers often lack IPv6 on loopback). */
function loopbackV6Works(): Promise<boolean> {
  v6 ??= listenAndClose("::1", 0)
    .then(() => true)
    .catch(() => false);
  return v6;
}
