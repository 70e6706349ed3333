/**
 * The measurements, one function each. Every message carries a unique sequence number;
 * the ledger holds when its request started and how it was answered, the observer when
 * it arrived in the room.
 */
import type { ProsodyServer } from "../src/devserver/prosody.ts";
import { complaints, type GatewayProcess, startGateway } from "./gateway.ts";
import { closedLoop, createPoster, type HttpRun, hammer, type Ledger, openLoop } from "./load.ts";
import {
  freePort,
  httpGet,
  nowMs,
  procSample,
  REPO,
  sleep,
  spawnNode,
  waitStatus,
} from "./proc.ts";
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

/** `n` posts from `concurrency` keep-alive connections, each waiting for its reply. */
export async function closedRun(
  ctx: Ctx,
  gw: GatewayProcess,
  n: number,
  concurrency: number,
  query: string,
): Promise<Run> {
  const from = ctx.next(n);
  const poster = createPoster(gw.postUrl + query, concurrency, ctx.ledger);
  const m = meter({ gateway: gw.pid, prosody: ctx.server.pid });
  await closedLoop(poster.post, from, n, concurrency);
  await ctx.arrivals.waitRange(from, n, ARRIVAL_TIMEOUT_MS);
  const usage = m.stop();
  poster.close();
  return { delivery: delivery(ctx.ledger, ctx.arrivals, from, n), usage };
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
  const m = meter({ gateway: gw.pid, prosody: ctx.server.pid });
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
    const m = meter({ gateway: gw.pid, prosody: ctx.server.pid });
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

/** The accept path alone (XMPP unreachable), and the load generator's own limit. */
export interface AcceptResult {
  connections: number;
  seconds: number;
  trivial: HttpRun;
  gateway: HttpRun;
  gatewayUsage: Usage;
  /** Messages in the spool afterwards, as the gateway's `/ready` reports them. */
  spooled: number | undefined;
  /** The benchmark's own node:http client against the trivial server (32 connections). */
  posterRate: number;
}

export async function acceptRun(
  ctx: Ctx,
  connections: number,
  seconds: number,
): Promise<AcceptResult> {
  const trivialPort = await freePort();
  const trivial = spawnNode(
    [`${REPO}/bench/trivial-server.ts`, String(trivialPort)],
    {},
    {
      name: "trivial",
    },
  );
  const closedPort = await freePort(); // nothing listens there: XMPP unreachable
  let gw: GatewayProcess | undefined;
  try {
    const trivialUrl = `http://127.0.0.1:${trivialPort}`;
    await waitStatus(trivialUrl, 202, 10_000);
    const trivialRun = await hammer(trivialUrl, connections, Math.min(seconds, 5));
    // The same check for the client the delivery phases use.
    const n = 5000;
    const from = ctx.next(n);
    const poster = createPoster(trivialUrl, 32, ctx.ledger);
    const t0 = nowMs();
    await closedLoop(poster.post, from, n, 32);
    const posterRate = n / ((nowMs() - t0) / 1000);
    poster.close();

    gw = await startGateway({
      server: ctx.server,
      room: ctx.room,
      ready: false,
      xmppPort: closedPort,
    });
    await hammer(gw.postUrl, connections, 1); // warm-up
    const before = await spoolSize(gw);
    const m = meter({ gateway: gw.pid, prosody: ctx.server.pid });
    const gatewayRun = await hammer(gw.postUrl, connections, seconds);
    const gatewayUsage = m.stop();
    const after = await spoolSize(gw);
    return {
      connections,
      seconds,
      trivial: trivialRun,
      gateway: gatewayRun,
      gatewayUsage,
      spooled: after === undefined || before === undefined ? undefined : after - before,
      posterRate,
    };
  } finally {
    await Promise.all([trivial.stop(), gw?.stop()]);
  }
}

async function spoolSize(gw: GatewayProcess): Promise<number | undefined> {
  const res = await httpGet(`${gw.url}/ready`);
  try {
    return (JSON.parse(res.body) as { spool?: { messages?: number } }).spool?.messages;
  } catch {
    return undefined;
  }
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
