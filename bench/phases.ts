/**
 * The measurements, one function each. Every message carries a unique sequence number;
 * the ledger holds when its request started and how it was answered, the observer when
 * it arrived in the room.
 */
import type { ProsodyServer } from "../src/devserver/prosody.ts";
import { complaints, type GatewayProcess, startGateway } from "./gateway.ts";
import { closedLoop, createPoster, type Ledger, openLoop } from "./load.ts";
import { httpGet, procSample, sleep } from "./proc.ts";
import { type Delivery, delivery, meter, type Usage } from "./stats.ts";
import type { Arrivals } from "./xmpp.ts";

/** What every phase works with. */
export interface Ctx {
  readonly server: ProsodyServer;
  /** The gateway's room (archived: MAM on). */
  readonly room: string;
  /** A room without an archive (MAM off), for the minimal client's second ceiling. */
  readonly noMamRoom: string;
  readonly arrivals: Arrivals;
  /** The run's PostgreSQL (issue 14), whose postmaster and backends the phases meter apart. */
  readonly database?: { readonly pid: number };
  readonly ledger: Ledger;
  /** Reserves `n` fresh sequence numbers; returns the first. */
  next(n: number): number;
  say(line: string): void;
}

/** One measured run: what arrived and what it cost. */
export interface Run {
  delivery: Delivery;
  usage: Usage;
}

/** Longest wait for the last messages of a run to arrive after the load stopped. */
export const ARRIVAL_TIMEOUT_MS = 30_000;

/** A closed-loop run, and the spool's group commits meanwhile. */
export interface ClosedRun extends Run {
  commits: CommitRate;
}

/** `n` posts from `concurrency` keep-alive connections, each waiting for its reply. */
export async function closedRun(
  ctx: Ctx,
  gw: GatewayProcess,
  n: number,
  concurrency: number,
  query: string,
): Promise<ClosedRun> {
  const from = ctx.next(n);
  const poster = createPoster(gw.postUrl + query, concurrency, ctx.ledger);
  const c0 = await commitCounters(gw);
  const m = meter({ gateway: gw.pid, prosody: ctx.server.pid, database: ctx.database?.pid });
  await closedLoop(poster.post, from, n, concurrency);
  await ctx.arrivals.waitRange(from, n, ARRIVAL_TIMEOUT_MS);
  const usage = m.stop();
  const commits = commitRate(c0, await commitCounters(gw), usage.wallS);
  poster.close();
  return { delivery: delivery(ctx.ledger, ctx.arrivals, from, n), usage, commits };
}

/** An open-loop run: `rate` posts per second for `seconds`, on a timer. */
export interface RateRun extends Run {
  pct: number;
  offered: number;
  lagP99: number;
  lagMax: number;
}

export async function rateRun(
  ctx: Ctx,
  gw: GatewayProcess,
  pct: number,
  ceiling: number,
  seconds: number,
): Promise<RateRun> {
  const rate = (ceiling * pct) / 100;
  const n = Math.round(rate * seconds);
  const from = ctx.next(n);
  const poster = createPoster(`${gw.postUrl}?wait=0`, 64, ctx.ledger);
  const m = meter({ gateway: gw.pid, prosody: ctx.server.pid, database: ctx.database?.pid });
  const lag = await openLoop(poster.postAt, from, n, rate);
  await ctx.arrivals.waitRange(from, n, ARRIVAL_TIMEOUT_MS);
  const usage = m.stop();
  poster.close();
  return {
    pct,
    offered: rate,
    ...lag,
    delivery: delivery(ctx.ledger, ctx.arrivals, from, n),
    usage,
  };
}

/** A burst: `n` posts as fast as `connections` connections allow, on a fresh gateway. */
export interface BurstRun extends Run {
  connections: number;
  /** The gateway's memory just before the burst (started, warmed up, idle) ... */
  before: Memory;
  /** ... and as the last reply came in (all spooled, most not yet delivered). */
  replied: Memory;
}

/** RSS from /proc and V8's heap from the gateway's own `/metrics` (prom-client), MB. */
export interface Memory {
  rssMb: number;
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
}

export async function memory(gw: GatewayProcess): Promise<Memory> {
  const metrics = (await httpGet(`${gw.url}/metrics`)).body;
  const mb = (name: string) =>
    Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(metrics)?.[1]) / 1024 ** 2;
  return {
    rssMb: (procSample(gw.pid)?.rssKb ?? Number.NaN) / 1024,
    heapUsedMb: mb("nodejs_heap_size_used_bytes"),
    heapTotalMb: mb("nodejs_heap_size_total_bytes"),
    externalMb: mb("nodejs_external_memory_bytes"),
  };
}

/** The gateway's spool group-commit counters (its `/metrics`): transactions, writes, seconds. */
export interface Commits {
  commits: number;
  writes: number;
  seconds: number;
}

export async function commitCounters(gw: GatewayProcess): Promise<Commits> {
  const metrics = (await httpGet(`${gw.url}/metrics`)).body;
  const value = (name: string) =>
    Number(new RegExp(`^xmpp_msg_gw_${name} (\\S+)$`, "m").exec(metrics)?.[1] ?? Number.NaN);
  return {
    commits: value("spool_commits_total"),
    writes: value("spool_commit_writes_total"),
    seconds: value("spool_commit_seconds_total"),
  };
}

/** Group commits over a phase: per second, writes per commit, time per commit. */
export interface CommitRate {
  perSecond: number;
  writesEach: number;
  msEach: number;
}

/** The commits between two readings of the counters, `wallSeconds` apart. */
export function commitRate(a: Commits, b: Commits, wallSeconds: number): CommitRate {
  const commits = b.commits - a.commits;
  return {
    perSecond: commits / wallSeconds,
    writesEach: (b.writes - a.writes) / commits,
    msEach: ((b.seconds - a.seconds) * 1000) / commits,
  };
}

/** What the spool's commits were between two readings, in words. */
export function describeCommits(a: Commits, b: Commits, wallSeconds: number): string {
  const commits = b.commits - a.commits;
  const writes = b.writes - a.writes;
  const share = (100 * (b.seconds - a.seconds)) / wallSeconds;
  return `${commits} spool commits (${(commits / wallSeconds).toFixed(0)}/s), ${(writes / commits).toFixed(1)} writes each, ${(((b.seconds - a.seconds) * 1e6) / commits).toFixed(0)} µs each, ${share.toFixed(1)}% of wall time`;
}

export async function burstRun(
  ctx: Ctx,
  n: number,
  connections: number,
  /** Receives the gateway's warning and error lines once it has stopped. */
  onComplaints: (lines: string[]) => void,
): Promise<BurstRun> {
  const gw = await startGateway({ server: ctx.server, room: ctx.room, ready: true });
  try {
    await warmUp(ctx, gw);
    await sleep(500);
    const before = await memory(gw);
    const from = ctx.next(n);
    const poster = createPoster(`${gw.postUrl}?wait=0`, connections, ctx.ledger);
    const m = meter({ gateway: gw.pid, prosody: ctx.server.pid, database: ctx.database?.pid });
    await closedLoop(poster.post, from, n, connections);
    const replied = await memory(gw);
    await ctx.arrivals.waitRange(from, n, ARRIVAL_TIMEOUT_MS);
    const usage = m.stop();
    poster.close();
    const run = { delivery: delivery(ctx.ledger, ctx.arrivals, from, n), usage };
    return { connections, before, replied, ...run };
  } finally {
    await gw.stop();
    onComplaints(complaints(gw));
  }
}

/** Some posts first, so that the measured runs see optimised code, not the JIT warming up. */
export async function warmUp(ctx: Ctx, gw: GatewayProcess, n = 500): Promise<void> {
  await closedRun(ctx, gw, n, 32, "?wait=0");
}

/** Process start → `/health` 200 and → `/ready` 200, `times` times, each on a fresh spool. */
export async function startupRuns(
  ctx: Ctx,
  times: number,
): Promise<{ healthMs: number[]; readyMs: number[] }> {
  const healthMs: number[] = [];
  const readyMs: number[] = [];
  for (let i = 0; i < times; i++) {
    const gw = await startGateway({ server: ctx.server, room: ctx.room, ready: true });
    healthMs.push(gw.toHealthMs);
    readyMs.push(gw.toReadyMs ?? Number.NaN);
    await gw.stop();
    await sleep(200);
  }
  return { healthMs, readyMs };
}
