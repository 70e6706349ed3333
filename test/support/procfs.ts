// What Linux's /proc says about a process: its program, its arguments, its parent, the
// signals it catches, and what else still runs in its process group. For the tests that
// check that the PID a user has is the gateway itself and that nothing is left behind.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** A live process (zombies, which have exited, are left out). */
export interface Proc {
  pid: number;
  ppid: number;
  pgid: number;
  /** The program's path, as /proc/PID/exe resolves it. */
  exe: string;
  argv: string[];
}

/** Fields of /proc/PID/stat after the command name (which may hold spaces). */
function stat(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    return text.slice(text.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined; // gone
  }
}

/** The process `pid`, or undefined once it has exited (or is a zombie). */
export function proc(pid: number): Proc | undefined {
  const fields = stat(pid);
  if (fields === undefined || fields[0] === "Z" || fields[0] === "X") return undefined;
  try {
    return {
      pid,
      ppid: Number(fields[1]),
      pgid: Number(fields[2]),
      exe: readlinkSync(`/proc/${pid}/exe`),
      argv: readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").slice(0, -1),
    };
  } catch {
    return undefined;
  }
}

/** Every live process. */
function all(): Proc[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map((name) => proc(Number(name)))
    .filter((p) => p !== undefined);
}

/** The live children of `pid`. */
export const childrenOf = (pid: number): Proc[] => all().filter((p) => p.ppid === pid);

/** The live members of process group `pgid` (a child spawned with `detached: true` leads one). */
export const groupOf = (pgid: number): Proc[] => all().filter((p) => p.pgid === pgid);

/** True when `pid` has a handler for `signal` (its bit in SigCgt of /proc/PID/status). */
export function catches(pid: number, signal: number): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const mask = /^SigCgt:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? "0";
    return (BigInt(`0x${mask}`) & (1n << BigInt(signal - 1))) !== 0n;
  } catch {
    return false;
  }
}
