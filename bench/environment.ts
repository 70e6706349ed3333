/** The machine and the versions a run measured, for the report. */
import { execFileSync } from "node:child_process";
import {
  closeSync,
  fsyncSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import type { ProsodyServer } from "../src/devserver/prosody.ts";
import { REPO } from "./proc.ts";

/** Median time of a 4 KiB write + fsync in the temp dir, where the spools live (ms). */
function fsyncMs(): number {
  const dir = mkdtempSync(path.join(os.tmpdir(), "bench-fsync-"));
  const fd = openSync(path.join(dir, "probe"), "w");
  const block = Buffer.alloc(4096, 1);
  const times: number[] = [];
  try {
    for (let i = 0; i < 100; i++) {
      const t0 = performance.now();
      writeSync(fd, block);
      fsyncSync(fd);
      times.push(performance.now() - t0);
    }
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
  times.sort((a, b) => a - b);
  return times[50] ?? Number.NaN;
}

/** Where and with what a run ran. */
export interface Environment {
  date: string;
  cpu: string;
  cores: number;
  ramGb: number;
  kernel: string;
  /** File system of the temp dir (the spools) and its fsync latency. */
  tmpFs: string;
  fsyncMs: number;
  node: string;
  prosody: string;
  lua: string;
  commit: string;
  /** Packages the gateway's speed depends on, with their installed versions. */
  packages: Record<string, string>;
}

const sh = (file: string, args: string[]): string => {
  try {
    return execFileSync(file, args, { cwd: REPO, encoding: "utf8", timeout: 20_000 }).trim();
  } catch {
    return "";
  }
};

export async function environment(server: ProsodyServer): Promise<Environment> {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const about = sh("prosodyctl", ["--config", `${server.dir}/prosody.cfg.lua`, "about"]);
  const commit = sh("git", ["rev-parse", "--short", "HEAD"]) || "unknown";
  const dirty = sh("git", ["status", "--porcelain", "--", "src", "bin", "package.json"]) !== "";
  const version = (pkg: string) => {
    try {
      return (
        JSON.parse(readFileSync(`${REPO}/node_modules/${pkg}/package.json`, "utf8")) as {
          version: string;
        }
      ).version;
    } catch {
      return "?";
    }
  };
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    cores: os.availableParallelism(),
    ramGb: Math.round(os.totalmem() / 1024 ** 3),
    kernel: `${os.type()} ${os.release()}`,
    tmpFs: sh("findmnt", ["-n", "-o", "FSTYPE", "-T", os.tmpdir()]) || "unknown",
    fsyncMs: fsyncMs(),
    node: process.version,
    // "Prosody 0.12.3"; not "Prosody was unable to find lua-unbound" above it.
    prosody: /^Prosody (\d\S*)$/m.exec(about)?.[1] ?? "unknown",
    lua: /^Lua version:\s*(.*)$/m.exec(about)?.[1]?.trim() ?? "unknown",
    commit: dirty ? `${commit} + uncommitted changes in src/, bin/ or package.json` : commit,
    packages: Object.fromEntries(
      ["fastify", "@xmpp/client", "pino", "autocannon"].map((p) => [p, version(p)]),
    ),
  };
}
