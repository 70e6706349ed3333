/**
 * The long phase: a fresh gateway takes `n` messages at a fixed share of the ceiling (open
 * loop, `?wait=0`) while its RSS is read every second, to see where its memory settles
 * and whether it still grows over the second half.
 */
import { complaints, startGateway } from "./gateway.ts";
import { createPoster, openLoop } from "./load.ts";
import { type Ctx, type Memory, memory, type RateRun, warmUp } from "./phases.ts";
import { nowMs, procSample, sleep } from "./proc.ts";
import { delivery, meter } from "./stats.ts";

/** Time kept for the backlog to drain after the load stopped, within the deadline. */
const DRAIN_RESERVE_MS = 30_000;

/** What the long phase measured. */
export interface LongRun extends RateRun {
  /** Messages meant (`n`); `delivery.n` is fewer when the run's budget cut the phase short. */
  planned: number;
  /** [seconds since the load started, gateway RSS in MB], every second until the last arrival. */
  rss: Array<[number, number]>;
  /** Seconds the offered load lasted (messages sent / rate). */
  offeredS: number;
  /** RSS once every message had arrived, and when half of them had been offered (MB). */
  endRssMb: number;
  midRssMb: number;
  /** Largest RSS seen in the second half of the offered load (MB). */
  maxLastHalfMb: number;
  /** Growth over the second half of the offered load: least-squares fit, end − start (MB). */
  lastHalfGrowthMb: number;
  before: Memory;
  after: Memory;
}

/** Least-squares line through `pts`; returns its rise over [x0, x1]. */
function fittedRise(pts: Array<[number, number]>, x0: number, x1: number): number {
  const n = pts.length;
  if (n < 2) return Number.NaN;
  const mx = pts.reduce((s, p) => s + p[0], 0) / n;
  const my = pts.reduce((s, p) => s + p[1], 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of pts) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  return sxx === 0 ? 0 : (sxy / sxx) * (x1 - x0);
}

/**
 * The long phase (see the file comment). It must end by `deadline` (nowMs), the run's
 * budget: the load stops early enough for the backlog to drain, and the report says so.
 */
export async function longRun(
  ctx: Ctx,
  n: number,
  pct: number,
  ceiling: number,
  deadline: number,
  onComplaints: (lines: string[]) => void,
): Promise<LongRun> {
  const gw = await startGateway({ server: ctx.server, room: ctx.room, ready: true });
  try {
    await warmUp(ctx, gw);
    await sleep(500);
    const before = await memory(gw);
    const rate = (ceiling * pct) / 100;
    const from = ctx.next(n);
    const poster = createPoster(`${gw.postUrl}?wait=0`, 64, ctx.ledger);
    const rss: Array<[number, number]> = [];
    const t0 = nowMs();
    const sample = () => {
      const s = procSample(gw.pid);
      if (s) rss.push([(nowMs() - t0) / 1000, s.rssKb / 1024]);
    };
    const timer = setInterval(sample, 1000);
    const arrived0 = Atomics.load(ctx.arrivals.counters, 0);
    const progress = setInterval(() => {
      const arrived = Atomics.load(ctx.arrivals.counters, 0) - arrived0;
      ctx.say(`  ${arrived} arrived so far; gateway RSS ${rss.at(-1)?.[1].toFixed(0)} MB`);
    }, 30_000);
    const m = meter({ gateway: gw.pid, prosody: ctx.server.pid, database: ctx.database?.pid });
    let lag: { lagP99: number; lagMax: number; sent: number };
    try {
      lag = await openLoop(poster.postAt, from, n, rate, deadline - DRAIN_RESERVE_MS);
      if (lag.sent === 0)
        ctx.say("  ⚠ no time left in the run's budget: the long phase is skipped");
      else if (lag.sent < n)
        ctx.say(`  ⚠ the run's budget stopped the load after ${lag.sent} messages`);
      await ctx.arrivals.waitRange(from, lag.sent, Math.max(1000, deadline - nowMs()));
      sample();
    } finally {
      clearInterval(timer);
      clearInterval(progress);
    }
    const usage = m.stop();
    poster.close();
    const after = await memory(gw);
    const offeredS = lag.sent / rate;
    const half = rss.filter(([t]) => t >= offeredS / 2 && t <= offeredS);
    const mid = half[0] ?? rss.at(-1);
    return {
      pct,
      planned: n,
      offered: rate,
      lagP99: lag.lagP99,
      lagMax: lag.lagMax,
      delivery: delivery(ctx.ledger, ctx.arrivals, from, lag.sent),
      usage,
      rss,
      offeredS,
      endRssMb: rss.at(-1)?.[1] ?? Number.NaN,
      midRssMb: mid?.[1] ?? Number.NaN,
      maxLastHalfMb: Math.max(...half.map(([, v]) => v)),
      lastHalfGrowthMb: fittedRise(half, offeredS / 2, offeredS),
      before,
      after,
    };
  } finally {
    await gw.stop();
    onComplaints(complaints(gw));
  }
}
