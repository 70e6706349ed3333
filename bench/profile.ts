/**
 * `npm run bench -- --profile`: the gateway under `node --cpu-prof`, once through the
 * end-to-end phase and once through the accept path; prints the functions with the most
 * self time in the measured window (start-up and warm-up excluded) and where the
 * `.cpuprofile` files are (open them in Chrome DevTools; they are not committed).
 */
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { type GatewayProcess, startGateway } from "./gateway.ts";
import { hammer } from "./load.ts";
import { type Ctx, closedRun, commitCounters, describeCommits, warmUp } from "./phases.ts";
import { freePort, nowMs, REPO } from "./proc.ts";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  /** Samples per source line (whole profile, not only the window). */
  positionTicks?: Array<{ line: number; ticks: number }>;
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function and per area (package, source file, GC, idle) within [fromMs, toMs]. */
export function summarise(file: string, fromMs: number, toMs: number, top = 25): string {
  const p = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  // V8's profile clock and process.hrtime are both CLOCK_MONOTONIC on Linux; if they do
  // not agree (another platform), fall back to the whole profile.
  const aligned = Math.abs(p.startTime / 1000 - fromMs) < 600_000;
  const fns = new Map<string, number>();
  const areas = new Map<string, number>();
  let total = 0;
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    const ms = t / 1000;
    if (aligned && (ms < fromMs || ms > toMs)) continue;
    const self = (p.timeDeltas[i + 1] ?? 0) / 1000;
    const node = byId.get(p.samples[i] ?? -1);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = shortUrl(url);
    const key = `${functionName || "(anonymous)"}${where ? ` ${where}:${lineNumber + 1}` : ""}`;
    fns.set(key, (fns.get(key) ?? 0) + self);
    const area = areaOf(functionName, where);
    areas.set(area, (areas.get(area) ?? 0) + self);
    total += self;
  }
  const table = (m: Map<string, number>, n: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(
        ([k, v]) =>
          `  ${((100 * v) / total).toFixed(1).padStart(5)}%  ${v.toFixed(0).padStart(6)} ms  ${k}`,
      )
      .join("\n");
  // Hot lines of our own code (native work such as a SQLite step is charged to the line
  // that called it).
  const lines = new Map<string, number>();
  let ticks = 0;
  for (const n of p.nodes) {
    for (const t of n.positionTicks ?? []) {
      ticks += t.ticks;
      const where = shortUrl(n.callFrame.url);
      if (!where.startsWith("src/")) continue;
      const key = `${where}:${t.line} (${n.callFrame.functionName || "anonymous"})`;
      lines.set(key, (lines.get(key) ?? 0) + t.ticks);
    }
  }
  const hot = [...lines.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 10)
    .map(([k, v]) => `  ${((100 * v) / Math.max(ticks, 1)).toFixed(1).padStart(5)}%  ${k}`)
    .join("\n");
  return `${path.basename(file)}: ${total.toFixed(0)} ms sampled${aligned ? " in the measured window" : " (whole profile: clocks not aligned)"}
 by area:
${table(areas, 15)}
 by function (self time):
${table(fns, top)}
 hottest lines in src/ (share of all line ticks, whole profile):
${hot}`;
}

function shortUrl(url: string): string {
  const u = url.replace(/^file:\/\//, "");
  if (u.startsWith(`${REPO}/`)) return u.slice(REPO.length + 1);
  return u;
}

function areaOf(fn: string, where: string): string {
  if (!where) return fn.startsWith("(") ? fn : "(native)";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(where);
  if (pkg) return `node_modules/${pkg[1]}`;
  if (where.startsWith("node:")) return "node: internals";
  const src = /^src\/[^/]+/.exec(where);
  return src ? `${src[0]}/` : where;
}

async function profiled(
  cpuProfDir: string,
  start: () => Promise<GatewayProcess>,
  measure: (gw: GatewayProcess) => Promise<string>,
): Promise<string> {
  const gw = await start();
  let line: string;
  let from: number;
  let to: number;
  try {
    from = nowMs();
    line = await measure(gw);
    to = nowMs();
  } finally {
    await gw.stop(20_000); // the profile is written on the way out
  }
  const files = readdirSync(cpuProfDir).filter((f) => f.endsWith(".cpuprofile"));
  const file = path.join(cpuProfDir, files[files.length - 1] ?? "missing.cpuprofile");
  return `${line}\n${summarise(file, from, to)}\nprofile: ${file}\n`;
}

/** The profiling run (see the file comment). */
export async function profileRun(
  ctx: Ctx,
  o: { n: number; concurrency: number; acceptSeconds: number },
): Promise<void> {
  const base = mkdtempSync(path.join(os.tmpdir(), "bench-profile-"));
  const e2eDir = path.join(base, "e2e");
  ctx.say(`profiling the end-to-end phase: ${o.n} posts, ${o.concurrency} connections, ?wait=0`);
  const e2e = await profiled(
    e2eDir,
    async () => {
      const gw = await startGateway({
        server: ctx.server,
        room: ctx.room,
        ready: true,
        cpuProfDir: e2eDir,
      });
      await warmUp(ctx, gw);
      return gw;
    },
    async (gw) => {
      const c0 = await commitCounters(gw);
      const t0 = nowMs();
      const run = await closedRun(ctx, gw, o.n, o.concurrency, "?wait=0");
      const commits = describeCommits(c0, await commitCounters(gw), (nowMs() - t0) / 1000);
      return `end to end (profiled): ${run.delivery.throughput.toFixed(0)} msg/s, gateway ${run.usage.gatewayCores.toFixed(2)} cores, Prosody ${run.usage.prosodyCores.toFixed(2)} cores, lost ${run.delivery.lost}\n${commits}`;
    },
  );
  process.stdout.write(e2e);
  const acceptDir = path.join(base, "accept");
  ctx.say(`profiling the accept path: autocannon, 64 connections, ${o.acceptSeconds} s`);
  const closedPort = await freePort();
  const accept = await profiled(
    acceptDir,
    async () => {
      const gw = await startGateway({
        server: ctx.server,
        room: ctx.room,
        ready: false,
        xmppPort: closedPort,
        cpuProfDir: acceptDir,
      });
      await hammer(gw.postUrl, 64, 1);
      return gw;
    },
    async (gw) => {
      const c0 = await commitCounters(gw);
      const t0 = nowMs();
      const run = await hammer(gw.postUrl, 64, o.acceptSeconds);
      const commits = describeCommits(c0, await commitCounters(gw), (nowMs() - t0) / 1000);
      return `accept path (profiled): ${run.rps.toFixed(0)} req/s\n${commits}`;
    },
  );
  process.stdout.write(accept);
}
