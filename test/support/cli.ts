// `xmpp-msg-gw` as users run it: `node bin/xmpp-msg-gw.js <command>` in a child process,
// in an empty directory (no .env to pick up), with only the environment a test gives it,
// its output captured; a test file's after() kills what is left with killCliChildren().
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The executable, run by the tests as the container and the systemd unit run it. */
export const BIN = new URL("../../bin/xmpp-msg-gw.js", import.meta.url).pathname;

/** How a child ended: its exit code, or the signal that ended it. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running `xmpp-msg-gw` child and what it has printed so far. */
export interface CliProcess {
  readonly child: ChildProcess;
  /** Its stdout so far. */
  stdout(): string;
  /** Its stderr so far. */
  stderr(): string;
  /** Its stdout and stderr so far, interleaved as they arrived. */
  output(): string;
  /** Resolves when it has exited. */
  readonly exited: Promise<Exit>;
  /** Resolves when it has exited and its output is complete. */
  readonly closed: Promise<Exit>;
  /** The first match of `pattern` in output(); rejects with the output if it ends first or `ms` pass. */
  waitFor(pattern: RegExp, ms: number): Promise<RegExpExecArray>;
  /** Sends `signal` and waits for the exit (SIGKILL and rejection after `ms`); says how long it took. */
  stop(signal: NodeJS.Signals, ms?: number): Promise<Exit & { ms: number }>;
}

const children = new Set<ChildProcess>();

/** SIGKILLs every child still running, for a test file's after(). */
export function killCliChildren(): void {
  for (const child of children) child.kill("SIGKILL");
}

/** Captures the output of a child spawned with piped stdio, and tracks it for killCliChildren. */
export function captureCli(child: ChildProcess): CliProcess {
  children.add(child);
  let stdout = "";
  let stderr = "";
  let output = "";
  const onOutput = new Set<() => void>();
  child.stdout?.on("data", (d) => {
    stdout += d;
    output += d;
    for (const f of onOutput) f();
  });
  child.stderr?.on("data", (d) => {
    stderr += d;
    output += d;
    for (const f of onOutput) f();
  });
  const exited = new Promise<Exit>((resolve) =>
    child.once("exit", (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  const closed = new Promise<Exit>((resolve) =>
    child.once("close", (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    output: () => output,
    exited,
    closed,
    waitFor(pattern, ms) {
      return new Promise((resolve, reject) => {
        const settle = (): void => {
          clearTimeout(timer);
          onOutput.delete(check);
        };
        const check = (): void => {
          const match = pattern.exec(output);
          if (match === null) return;
          settle();
          resolve(match);
        };
        const timer = setTimeout(() => {
          settle();
          reject(new Error(`no ${pattern} in the output within ${ms} ms:\n${output}`));
        }, ms);
        onOutput.add(check);
        check();
        void closed.then(({ code, signal }) => {
          if (!onOutput.has(check)) return;
          settle();
          reject(
            new Error(`exited (code ${code}, signal ${signal}) before ${pattern}:\n${output}`),
          );
        });
      });
    },
    async stop(signal, ms = 30_000) {
      const started = Date.now();
      child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          child.kill("SIGKILL");
          reject(new Error(`the process did not exit within ${ms} ms of ${signal}:\n${output}`));
        }, ms);
      });
      try {
        return { ...(await Promise.race([exited, timeout])), ms: Date.now() - started };
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/**
 * Spawns `node bin/xmpp-msg-gw.js …args` in `cwd` with PATH, TMPDIR, HOME=cwd and `env`;
 * without `cwd`, in a new empty dir that is removed once the child has exited.
 */
export function spawnCli(
  args: readonly string[],
  env: Record<string, string>,
  cwd?: string,
): CliProcess {
  const dir = cwd ?? mkdtempSync(join(tmpdir(), "gw-cli-"));
  // TMPDIR passed on: the test command's one temp dir (bin/run-tests.js) holds the demo's Prosody too.
  const inherited = {
    PATH: process.env.PATH ?? "",
    ...(process.env.TMPDIR && { TMPDIR: process.env.TMPDIR }),
  };
  const p = captureCli(
    spawn(process.execPath, [BIN, ...args], { cwd: dir, env: { ...inherited, HOME: dir, ...env } }),
  );
  if (cwd === undefined) void p.closed.then(() => rmSync(dir, { recursive: true, force: true }));
  return p;
}

/** What a finished command printed, and how it ended. */
export interface CliResult extends Exit {
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved as they arrived. */
  output: string;
}

/** Runs a command to its end with `stdin` as its input; SIGKILLed after `ms`. */
export async function runCli(
  args: readonly string[],
  env: Record<string, string> = {},
  opts: { stdin?: string; ms?: number } = {},
): Promise<CliResult> {
  const p = spawnCli(args, env);
  p.child.stdin?.end(opts.stdin ?? "");
  const timer = setTimeout(() => p.child.kill("SIGKILL"), opts.ms ?? 20_000);
  try {
    return { ...(await p.closed), stdout: p.stdout(), stderr: p.stderr(), output: p.output() };
  } finally {
    clearTimeout(timer);
  }
}

/** A `serve` child that has started listening. */
export interface ServeProcess extends CliProcess {
  /** Where HTTP listens, from the "listening on" log line. */
  readonly url: string;
}

/** The log line `serve` writes once HTTP listens, with the address in group 1. */
export const LISTENING = /listening on (http:\/\/[\d.:]+)/;

/** Starts `serve` with `env`, resolving once it listens; rejects if it exits first or after `ms`. */
export async function startServe(
  env: Record<string, string>,
  opts: { cwd?: string; ms?: number } = {},
): Promise<ServeProcess> {
  const p = spawnCli(["serve"], env, opts.cwd);
  const [, url] = await p.waitFor(LISTENING, opts.ms ?? 20_000);
  return { ...p, url: url as string };
}
