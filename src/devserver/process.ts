// The child processes of the throwaway servers (Prosody for the tests and `demo`; ejabberd,
// nginx and Alertmanager for the tests): found on PATH, given free loopback ports, stopped by
// PID within a bounded time, and killed when this process exits first, so none is orphaned.
import { type ChildProcess, spawn } from "node:child_process";
import {
  accessSync,
  closeSync,
  constants,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from "node:fs";
import { rm as rmAsync } from "node:fs/promises";
import net from "node:net";
import path from "node:path";

const HOST = "127.0.0.1";
const STOP_GRACE_MS = 3_000;

/** The path of an executable on PATH (or the usual system dirs), or undefined. */
export function findExecutable(name: string): string | undefined {
  const dirs = (process.env.PATH ?? "").split(path.delimiter).filter(Boolean);
  for (const dir of [...dirs, "/usr/bin", "/usr/sbin", "/usr/local/bin"]) {
    try {
      accessSync(path.join(dir, name), constants.X_OK);
      return path.join(dir, name);
    } catch {
      // Not here; keep looking.
    }
  }
  return undefined;
}

/** The path of the first of `names` found, or throws `installHint`: one line saying how to install it. */
export function requireExecutable(names: string | readonly string[], installHint: string): string {
  for (const name of typeof names === "string" ? [names] : names) {
    const found = findExecutable(name);
    if (found !== undefined) return found;
  }
  throw new Error(installHint);
}

/** Raised when a server could not bind a port picked for it, so new ports may well work. */
export class PortInUseError extends Error {}

/** Runs `start` again, up to `attempts` times in all, while it fails with {@link PortInUseError}. */
export async function retryWhilePortInUse<T>(start: () => Promise<T>, attempts = 3): Promise<T> {
  // A port picked by freePort() can be taken by someone else before the server binds it.
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (!(err instanceof PortInUseError) || attempt >= attempts) throw err;
    }
  }
}

/** Binds `host:port` exclusively (port 0: any) and releases it; resolves with the port bound. */
export function listenAndClose(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen({ host, port, exclusive: true }, () => {
      const address = server.address();
      const bound = typeof address === "object" && address !== null ? address.port : port;
      server.close(() => resolve(bound));
    });
  });
}

/** A port free on 127.0.0.1 (and on ::1 as well with `alsoIpv6`) at the time of asking. */
export async function freePort(alsoIpv6 = false): Promise<number> {
  for (;;) {
    const port = await listenAndClose(HOST, 0);
    if (!alsoIpv6 || (await listenAndClose("::1", port).catch(() => 0)) === port) return port;
  }
}

/** Sends `sig` to `pid`; a process already gone is nothing to complain about. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone: nothing left to signal.
  }
}

/** Waits at most `ms` for `promise`: true if it resolved in time, false if the time ran out. */
export async function within(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** True when `host:port` answers a client stream header for `domain` with stream features. */
export function streamProbe(host: string, port: number, domain: string): Promise<boolean> {
  // Features, not just an open port: servers bind before they can serve, and a wrong
  // domain would get a stream error (host-unknown) instead.
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let data = "";
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on("error", () => done(false));
    socket.on("connect", () => {
      socket.write(
        `<?xml version='1.0'?><stream:stream to='${domain}' xmlns='jabber:client' ` +
          "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
      );
    });
    socket.on("data", (chunk) => {
      data += chunk.toString("utf8");
      if (data.includes("stream:features")) done(true);
      else if (data.includes("stream:error")) done(false);
    });
  });
}

/** The PID of the first descendant of `pid` whose name (/proc comm) is `name`, or undefined. */
export function descendantNamed(pid: number, name: string): number | undefined {
  // Linux only: wrappers such as ejabberdctl → su → sh fork instead of exec'ing the server.
  const read = (file: string): string => {
    try {
      return readFileSync(file, "utf8");
    } catch {
      return ""; // the process is gone, or this is not Linux
    }
  };
  const queue = [pid];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${next}/task`);
    } catch {
      continue;
    }
    for (const task of tasks) {
      for (const child of read(`/proc/${next}/task/${task}/children`).split(" ")) {
        const childPid = Number(child);
        if (!Number.isInteger(childPid) || childPid <= 0) continue;
        if (read(`/proc/${childPid}/comm`).trim() === name) return childPid;
        queue.push(childPid);
      }
    }
  }
  return undefined;
}

/**
 * Throws unless others may traverse `dir` and its parents: a server the harness starts as
 * another system user (`user`) must reach its files inside.
 */
export function assertTraversable(dir: string, user: string): void {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) {
      throw new Error(
        `${d} is not reachable for the user ${user}: chmod o+x it (0711) or set TMPDIR`,
      );
    }
    if (d === path.dirname(d)) return;
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** How to run a server with {@link spawnServer}. */
export interface ServerOptions {
  /** Its working directory. */
  cwd: string;
  /** The file its stdout is appended to. */
  stdout: string;
  /** The file its stderr is appended to; the stdout file when absent. */
  stderr?: string;
  /** Its environment; this process's when absent. */
  env?: NodeJS.ProcessEnv;
  /** A directory removed with the server when this process exits without having stopped it. */
  removeOnExit?: string;
  /** The user and group it runs as (needs root): for servers that refuse to run as root. */
  user?: { uid: number; gid: number };
}

/** A running server process, killed by PID if this process exits before it. */
export interface ServerProcess {
  /** Its PID, valid until it has exited. */
  readonly pid: number;
  /** The child itself, for its exit code and signal. */
  readonly child: ChildProcess;
  /** The PID that stop() and the exit hooks signal: `pid`, or the one given to `servedBy`. */
  readonly serverPid: number;
  /** Resolves when it has exited. */
  readonly exited: Promise<void>;
  /** Whether it has exited. */
  hasExited(): boolean;
  /** Polls `ready` every `everyMs` while it runs: true once `ready` holds, false if it exits or `timeoutMs` passes. */
  waitUntil(ready: () => Promise<boolean>, timeoutMs: number, everyMs?: number): Promise<boolean>;
  /** Makes `serverPid` (a descendant) the one signalled: some wrappers fork and pass no signal on. */
  servedBy(serverPid: number): void;
  /** Sends `sig` (SIGTERM by default), SIGKILL after a bounded wait, and waits (bounded) for the exit. */
  stop(sig?: NodeJS.Signals): Promise<void>;
}

/** Spawns a server whose output goes to files, and tracks it until it exits. */
export async function spawnServer(
  command: string,
  args: readonly string[],
  opts: ServerOptions,
): Promise<ServerProcess> {
  // Output straight to files: no pipes to drain, nothing lost if the test dies.
  const out = openSync(opts.stdout, "a");
  const err = opts.stderr === undefined ? out : openSync(opts.stderr, "a");
  let child: ChildProcess;
  try {
    child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ["ignore", out, err],
      ...opts.user,
    });
  } finally {
    closeSync(out);
    if (err !== out) closeSync(err);
  }
  const spawnFailed = new Promise<Error>((resolve) => child.once("error", resolve));
  let gone = false;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  void exited.then(() => {
    gone = true;
    if (child.pid !== undefined) live.delete(child.pid);
  });
  if (child.pid === undefined) throw await spawnFailed;
  const pid = child.pid;
  const entry: LiveServer = { dir: opts.removeOnExit, serverPid: pid };
  live.set(pid, entry);
  installExitHooks();
  // A test that forgets stop() must not hang the runner; the exit hooks still kill the server.
  child.unref();
  return {
    pid,
    child,
    get serverPid() {
      return entry.serverPid;
    },
    exited,
    hasExited: () => gone,
    servedBy(serverPid) {
      entry.serverPid = serverPid;
    },
    async waitUntil(ready, timeoutMs, everyMs = 20) {
      const deadline = Date.now() + timeoutMs;
      while (!gone && Date.now() < deadline) {
        if (await ready()) return true;
        await sleep(everyMs);
      }
      return false;
    },
    async stop(sig = "SIGTERM") {
      if (gone) return;
      signal(entry.serverPid, sig);
      if (await within(exited, STOP_GRACE_MS)) return;
      signal(entry.serverPid, "SIGKILL");
      signal(pid, "SIGKILL");
      await within(exited, STOP_GRACE_MS);
    },
  };
}

/** What the exit hooks kill and remove for one server. */
interface LiveServer {
  dir: string | undefined;
  serverPid: number;
}

/** Servers not yet exited (child PID → what to kill and remove), killed if we exit first. */
const live = new Map<number, LiveServer>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const killAll = (): void => {
    for (const [pid, { dir, serverPid }] of live) {
      // The server first: killing only a forking wrapper would orphan it.
      signal(serverPid, "SIGKILL");
      signal(pid, "SIGKILL");
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    }
    live.clear();
  };
  process.on("exit", killAll);
  // Signals skip 'exit': kill our servers, then let the signal do what it would have done.
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    const onSignal = (): void => {
      killAll();
      process.removeListener(sig, onSignal);
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

/** How a test takes a throwaway server down and up again; `stop` also removes its dir. */
export interface ServerControls {
  /** Stops and starts the server on the same ports and data. */
  restart(): Promise<void>;
  /** Takes it down (SIGKILL with `crash`, else SIGTERM), keeping its data for `start`. */
  down(opts?: { crash?: boolean }): Promise<void>;
  /** Starts it again after `down`. */
  start(): Promise<void>;
  /** SIGTERM, SIGKILL after a bounded wait, then removes `dir`; safe to call twice. */
  stop(): Promise<void>;
}

/**
 * The controls of a server whose process is `first` and which `relaunch` starts again;
 * `started` hears the PID of every new process.
 */
export function serverControls(
  first: ServerProcess,
  relaunch: () => Promise<ServerProcess>,
  dir: string,
  started: (pid: number) => void,
): ServerControls {
  let proc = first;
  let stopping: Promise<void> | undefined;
  const controls: ServerControls = {
    async restart() {
      await controls.down();
      await controls.start();
    },
    async down(o = {}) {
      await proc.stop(o.crash ? "SIGKILL" : "SIGTERM");
    },
    async start() {
      proc = await relaunch();
      started(proc.serverPid);
    },
    stop() {
      stopping ??= proc.stop().then(() => rmAsync(dir, { recursive: true, force: true }));
      return stopping;
    },
  };
  return controls;
}
