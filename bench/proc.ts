/**
 * Processes the benchmark starts and measures: the gateway (`bin/xmpp-msg-gw.js serve`)
 * and a trivial HTTP server, each a child with its own PID so that its CPU seconds and
 * resident memory can be read from /proc; every child is stopped by PID, bounded.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";

/** Milliseconds on CLOCK_MONOTONIC: the same clock in every thread of this process. */
export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const REPO = path.resolve(import.meta.dirname, "..");

const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/** CPU time (user + system, ms) and memory (kB) of a process, from /proc. */
export interface ProcSample {
  cpuMs: number;
  rssKb: number;
  /** Peak resident set since the process started (VmHWM). */
  hwmKb: number;
}

/** Reads /proc/<pid>/stat and /proc/<pid>/status; undefined once the process is gone. */
export function procSample(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after "(comm)": state is field 3, utime 14 and stime 15 (proc(5)).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(status)?.[1]);
    return { cpuMs: (ticks * 1000) / CLK_TCK, rssKb: kb("VmRSS"), hwmKb: kb("VmHWM") };
  } catch {
    return undefined;
  }
}

/**
 * CPU time (user + system, ms) of a process and its direct children, e.g. a postmaster and
 * the backends it forks: each connection's backend is a child of its own. A child that
 * exits between two readings takes its time with it, so measure while connections stay.
 */
export function treeCpuMs(pid: number): number {
  let ticks = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // After "(comm)": state, ppid (field 4), …, utime (14), stime (15) (proc(5)).
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(entry) === pid || Number(fields[1]) === pid) {
        ticks += Number(fields[11]) + Number(fields[12]);
      }
    } catch {
      // Gone meanwhile.
    }
  }
  return (ticks * 1000) / CLK_TCK;
}

/** CPU time the whole machine spent busy (all cores, ms), and stolen by the hypervisor. */
export function systemCpu(): { busyMs: number; stealMs: number } {
  // /proc/stat "cpu" line: user nice system idle iowait irq softirq steal guest guest_nice.
  const f =
    readFileSync("/proc/stat", "utf8").split("\n")[0]?.trim().split(/\s+/).slice(1).map(Number) ??
    [];
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
  const ms = (ticks: number) => (ticks * 1000) / CLK_TCK;
  return { busyMs: ms(user + nice + system + irq + softirq), stealMs: ms(steal) };
}

/** Polls a process's RSS and keeps the largest value seen (VmHWM covers all its life). */
export function rssSampler(pid: number, everyMs = 20): { stop(): number } {
  let max = 0;
  const tick = () => {
    const s = procSample(pid);
    if (s && s.rssKb > max) max = s.rssKb;
  };
  tick();
  const timer = setInterval(tick, everyMs);
  return {
    stop() {
      clearInterval(timer);
      tick();
      return max;
    },
  };
}

/** A port nobody listens on at the moment (there is a small race; good enough on loopback). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0 }, () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** GET `url`: the status (0 when the connection failed) and the body. */
export function httpGet(url: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = request(url, { timeout: timeoutMs, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", () => resolve({ status: 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve({ status: 0, body: "" }));
    req.end();
  });
}

/** Polls `url` every `everyMs` until it answers `status`; resolves with the time taken, or throws. */
export async function waitStatus(
  url: string,
  status: number,
  timeoutMs: number,
  everyMs = 5,
): Promise<number> {
  const t0 = nowMs();
  for (;;) {
    const res = await httpGet(url, 1000);
    if (res.status === status) return nowMs() - t0;
    if (nowMs() - t0 > timeoutMs) {
      throw new Error(
        `${url} did not answer ${status} within ${timeoutMs} ms (last: ${res.status} ${res.body})`,
      );
    }
    await sleep(everyMs);
  }
}

/** A child process of the benchmark. */
export interface Child {
  readonly pid: number;
  /** The last lines of its stdout and stderr (kept after its directory is removed). */
  logTail(): string;
  /** Resolves when it has exited. */
  readonly exited: Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it is gone (bounded). */
  stop(graceMs?: number): Promise<void>;
}

const children = new Map<number, ChildProcess>();

/** Kills every child still running (SIGKILL), e.g. when the benchmark itself is interrupted. */
export function killChildren(): void {
  for (const pid of children.keys()) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
    const cwd = dirs.get(pid);
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  }
  children.clear();
}

/** Working directories of the children, removed with them. */
const dirs = new Map<number, string>();

/** Spawns `node <args>` with exactly `env` (plus PATH and HOME), output to a log file. */
export function spawnNode(
  args: string[],
  env: Record<string, string>,
  opts: { cwd?: string; name: string },
): Child {
  // The child's working directory, removed once it has exited: spools, logs and all.
  const cwd = opts.cwd ?? mkdtempSync(path.join(os.tmpdir(), `bench-${opts.name}-`));
  const logFile = path.join(cwd, `${opts.name}.log`);
  const fd = openSync(logFile, "a");
  let proc: ChildProcess;
  try {
    proc = spawn(process.execPath, args, {
      cwd,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? cwd, ...env },
      stdio: ["ignore", fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  if (proc.pid === undefined) throw new Error(`could not start ${opts.name}`);
  const pid = proc.pid;
  children.set(pid, proc);
  dirs.set(pid, cwd);
  let gone = false;
  let lastLines: string | undefined;
  const exited = new Promise<void>((resolve) =>
    proc.once("exit", () => {
      gone = true;
      children.delete(pid);
      dirs.delete(pid);
      lastLines = tail(logFile, 2000);
      rmSync(cwd, { recursive: true, force: true });
      resolve();
    }),
  );
  const within = (ms: number) =>
    Promise.race([exited.then(() => true), sleep(ms).then(() => false)]);
  return {
    pid,
    logTail: () => lastLines ?? tail(logFile),
    exited,
    async stop(graceMs = 5000) {
      if (gone) return;
      proc.kill("SIGTERM");
      if (await within(graceMs)) return;
      proc.kill("SIGKILL");
      await within(2000);
    },
  };
}

/** The last lines of a child's log, for error messages. */
export function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}
