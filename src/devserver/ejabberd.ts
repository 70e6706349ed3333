// A throwaway, loopback-only ejabberd (Debian's 23.01) for the integration tests, the twin of
// prosody.ts: own temp dir, own Erlang node name and cookie, the distribution on a loopback
// port without epmd, mnesia in the temp dir, killed by PID on stop() and at process exit.
// ejabberdctl only runs as root (it switches to the user ejabberd) or as that user.

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { chown, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { generateCerts, run } from "./certs.ts";
import { INETRC, renderCtlConfig, renderEjabberdYml } from "./ejabberd-config.ts";
import {
  assertTraversable,
  descendantNamed,
  freePort,
  PortInUseError,
  requireExecutable,
  retryWhilePortInUse,
  type ServerProcess,
  serverControls,
  spawnServer,
  streamProbe,
} from "./process.ts";
import type { XmppTestServer } from "./xmpp-server.ts";

/** A running throwaway ejabberd (see {@link XmppTestServer}); `pid` is its beam.smp. */
export interface EjabberdServer extends XmppTestServer {
  kind: "ejabberd";
}

/** Options for {@link startEjabberd}; limits left out keep Debian's defaults. */
export interface StartEjabberdOptions {
  /** Accounts to create before the server is handed out. */
  users?: Array<{ user: string; password: string }>;
  /** `max_stanza_size` of both c2s listeners, in bytes (Debian: 262144). */
  maxStanzaSize?: number;
  /** `max_user_sessions`: sessions per account before the oldest is closed (Debian: 10). */
  maxUserSessions?: number;
  /** "debian" (default): c2s traffic limited to 3000 B/s, bursts of 20000; "none": unlimited. */
  shaper?: "debian" | "none";
  /** YAML merged at the top level of ejabberd.yml; mappings such as `modules` merge key by key. */
  extraConfig?: string;
}

const DOMAIN = "localhost";
const MUC_DOMAIN = "conference.localhost";
const HOST = "127.0.0.1";
const START_TIMEOUT_MS = 20_000;
const RUN_AS = "ejabberd"; // INSTALLUSER in Debian's ejabberdctl

/** Returns the path of ejabberdctl, or throws one line telling how to install ejabberd. */
export function requireEjabberdctl(): string {
  return requireExecutable(
    "ejabberdctl",
    "ejabberd is not installed: run `sudo apt-get install -y ejabberd` (Debian/Ubuntu) and " +
      "`sudo service ejabberd stop`; the integration tests start their own.",
  );
}

/** Starts a fresh ejabberd on random loopback ports and registers `opts.users`. */
export async function startEjabberd(opts: StartEjabberdOptions = {}): Promise<EjabberdServer> {
  const ctl = requireEjabberdctl();
  const [owner, certs] = await Promise.all([dirOwner(), generateCerts()]);
  const parent = os.tmpdir();
  // As root the node runs as the user ejabberd.
  if (process.getuid?.() === 0) assertTraversable(parent, RUN_AS);
  return retryWhilePortInUse(async () => {
    const dir = await mkdtemp(path.join(parent, "xmpp-msg-gw-ejabberd-"));
    try {
      const file = (name: string): string => path.join(dir, name);
      await Promise.all([mkdir(file("spool")), mkdir(file("logs"))]);
      await writeFile(file("ca.pem"), certs.caPem);
      await writeFile(file("server.pem"), `${certs.certPem}${certs.keyPem}`, { mode: 0o600 });
      return await startIn(dir, ctl, owner, opts);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  });
}

async function startIn(
  dir: string,
  ctl: string,
  owner: { uid: number; gid: number } | undefined,
  opts: StartEjabberdOptions,
): Promise<EjabberdServer> {
  const file = (name: string): string => path.join(dir, name);
  const [c2sPort, directTlsPort, distPort] = (await distinctFreePorts(3)) as [
    number,
    number,
    number,
  ];
  const layout = { domain: DOMAIN, mucDomain: MUC_DOMAIN, host: HOST, c2sPort, directTlsPort };
  const certfiles = [file("server.pem"), file("ca.pem")];
  await writeFile(file("ejabberd.yml"), renderEjabberdYml({ ...layout, certfiles }, opts));
  // Unique per instance, so parallel test files never talk to each other's node.
  const node = `ejabberd-test-${randomBytes(4).toString("hex")}@localhost`;
  const cookie = randomBytes(16).toString("hex");
  await writeFile(file("ejabberdctl.cfg"), renderCtlConfig(node, cookie, distPort));
  await writeFile(file("inetrc"), INETRC);
  if (owner !== undefined) {
    // ejabberdctl runs the node as the user ejabberd, which must own its config and spool.
    const entries = await readdir(dir, { recursive: true });
    for (const entry of ["", ...entries]) await chown(file(entry), owner.uid, owner.gid);
  }
  // --config-dir also places ERL_INETRC and vm.args (none) in the temp dir.
  const ctlArgs = [
    ...["--config-dir", dir, "--ctl-config", file("ejabberdctl.cfg")],
    ...["--spool", file("spool"), "--logs", file("logs")],
  ];
  const register = async (user: string, password: string): Promise<void> => {
    await run(ctl, [...ctlArgs, "register", user, DOMAIN, password]);
  };

  const proc = await launch(ctl, ctlArgs, dir, c2sPort);
  try {
    // Accounts live in mnesia, inside the running node: ejabberdctl needs it up, unlike
    // prosodyctl. Registering (or `status`) also proves the ctl reaches the node.
    const users = opts.users ?? [];
    if (users.length === 0) await run(ctl, [...ctlArgs, "status"]);
    await Promise.all(users.map((u) => register(u.user, u.password)));
  } catch (err) {
    await proc.stop();
    throw err;
  }

  // SIGTERM is a clean init:stop() in OTP >= 20; SIGKILL leaves mnesia to repair itself.
  // Accounts persist in the spool: a restart registers nothing again.
  const controls = serverControls(
    proc,
    () => launch(ctl, ctlArgs, dir, c2sPort),
    dir,
    (pid) => {
      server.pid = pid;
    },
  );
  const server: EjabberdServer = {
    kind: "ejabberd",
    domain: DOMAIN,
    mucDomain: MUC_DOMAIN,
    host: HOST,
    c2sPort,
    directTlsPort,
    caFile: file("ca.pem"),
    dir,
    pid: proc.serverPid,
    logFile: path.join(dir, "logs", "ejabberd.log"),
    register,
    ...controls,
  };
  return server;
}

/** Runs `ejabberdctl … foreground` and resolves once beam.smp serves `localhost` on c2sPort. */
async function launch(
  ctl: string,
  ctlArgs: string[],
  dir: string,
  c2sPort: number,
): Promise<ServerProcess> {
  const proc = await spawnServer(ctl, [...ctlArgs, "foreground"], {
    cwd: dir,
    stdout: path.join(dir, "ejabberd.stdout"),
    stderr: path.join(dir, "ejabberd.stderr"),
    removeOnExit: dir,
  });
  // ejabberdctl → su → sh → beam.smp: su forks and starts a new session, so neither a
  // signal to our child nor to its process group would reach the node. Signal beam.smp.
  const adoptBeam = (): boolean => {
    if (proc.serverPid !== proc.pid) return true;
    const beam = descendantNamed(proc.pid, "beam.smp");
    if (beam !== undefined) proc.servedBy(beam);
    return beam !== undefined;
  };
  const ready = () => Promise.resolve(adoptBeam() && streamProbe(HOST, c2sPort, DOMAIN));
  if (await proc.waitUntil(ready, START_TIMEOUT_MS)) return proc;
  const died = proc.hasExited();
  adoptBeam();
  await proc.stop();
  const logs = tailLogs(dir);
  const why = died
    ? `ejabberd exited (code ${proc.child.exitCode}, signal ${proc.child.signalCode}) during start-up`
    : `ejabberd did not answer on port ${c2sPort} within ${START_TIMEOUT_MS} ms`;
  // "address already in use" (log) for a c2s port, "register/listen error: eaddrinuse"
  // (stderr) for distPort: both times the VM halts with exit code 1.
  const portBusy = /eaddrinuse|address already in use/i.test(logs);
  throw new (portBusy ? PortInUseError : Error)(`${why}; log tail:\n${logs}`);
}

/** Who must own the temp dir: the user ejabberd when we are root, no change when we are it. */
async function dirOwner(): Promise<{ uid: number; gid: number } | undefined> {
  const me = process.getuid?.();
  const id = (flag: string): Promise<number> =>
    run("id", [flag, RUN_AS]).then(
      (out) => Number.parseInt(out, 10),
      () => Number.NaN,
    );
  const [uid, gid] = await Promise.all([id("-u"), id("-g")]);
  if (me === uid) return undefined;
  if (me === 0 && Number.isInteger(uid) && Number.isInteger(gid)) return { uid, gid };
  throw new Error(
    Number.isInteger(uid)
      ? `ejabberdctl only runs as root or as the user ${RUN_AS}; run the ejabberd tests as root`
      : `there is no user ${RUN_AS}: reinstall ejabberd (sudo apt-get install -y ejabberd)`,
  );
}

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

function tailLogs(dir: string): string {
  const parts: string[] = [];
  for (const name of ["ejabberd.stderr", "ejabberd.stdout", "logs/error.log"]) {
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
