/**
 * What a run measured and the targets of issue 12, which are ratios against the minimal
 * client's ceiling (and absolute only for memory and start-up). The benchmark reports
 * against them; it never fails on them.
 */
import type { AcceptResult } from "./accept.ts";
import type { Ceilings } from "./ceiling.ts";
import type { EndToEnd } from "./e2e.ts";
import type { Environment } from "./environment.ts";
import type { BurstRun, Run } from "./phases.ts";
import type { PostgresResults } from "./postgres.ts";
import type { LongRun } from "./soak.ts";

/** Everything a run measured. */
export interface Results {
  env: Environment;
  prosodyConfig: string;
  durationS: number;
  ceilings: Ceilings;
  /** The minimal client (MAM on) once more at the end of the run. */
  ceilingEnd: Run;
  gatewayNodeArgs: string[];
  /** Cores other processes kept busy just before the run. */
  background: number;
  /** Warning and error lines the gateways of the delivery phases logged. */
  complaints: string[];
  e2e: EndToEnd;
  concurrency: number;
  rateSeconds: number;
  burst: BurstRun;
  accept: AcceptResult;
  startup: { healthMs: number[]; readyMs: number[] };
  long: LongRun;
  /** The accept path and end to end with the gateway on PostgreSQL (issue 14). */
  postgres: PostgresResults;
  /** Room messages the observer could not attribute to the benchmark. */
  unparsed: number;
}

/** The targets of issue 12. */
export const TARGETS = {
  /** Gateway, callers waiting for the reply, 32 connections / ceiling. */
  waitingRatio: 0.9,
  /** Gateway, `?wait=0` / ceiling. */
  noWaitRatio: 0.95,
  /** p99 request → arrival at 50% of the ceiling / the minimal client's p99 at that rate. */
  p99Ratio: 2,
  /** Accept path (durable, 202) / trivial node:http server, same load generator. */
  acceptRatio: 0.6,
  burstRssMb: 120,
  longRssMb: 150,
  /** "Flat over the last half": fitted growth over the long phase's second half below this. */
  longFlatMb: 10,
  startupMs: 1500,
};

export const f0 = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString("en-US") : "–");
export const f1 = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : "–");
export const f2 = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : "–");
export const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? Number.NaN) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
};
const bestOf = (runs: Run[]) => Math.max(...runs.map((r) => r.delivery.throughput));

/** Headline figures, for the targets table and the history row. */
export function headline(r: Results) {
  const c = r.ceilings;
  const ceiling = Math.max(c.value, r.ceilingEnd.delivery.throughput);
  const waiting = bestOf(r.e2e.waiting);
  const noWait = bestOf(r.e2e.noWait);
  const gw50 = r.e2e.rates.find((x) => x.pct === 50)?.delivery.e2e.p99 ?? Number.NaN;
  const min50 = c.mamOn.rates.find((x) => x.pct === 50)?.delivery.e2e.p99 ?? Number.NaN;
  const pg = r.postgres.e2e;
  const phases = [...r.e2e.waiting, ...r.e2e.noWait, ...r.e2e.rates, r.burst, r.long];
  phases.push(pg.waiting, pg.noWait);
  const ceilingPhases = [c.mamOn, c.mamOff, c.library].flatMap((b) => [...b.runs, b.windowed]);
  return {
    ceiling,
    mamOff: Math.max(bestOf(c.mamOff.runs), c.mamOff.windowed.delivery.throughput),
    library: Math.max(bestOf(c.library.runs), c.library.windowed.delivery.throughput),
    waiting,
    noWait,
    gw50,
    min50,
    p99Ratio: gw50 / min50,
    acceptRatio: r.accept.gateway.rps / r.accept.trivial.rps,
    burstRss: Math.max(r.burst.usage.gatewayHwmMb, r.burst.usage.gatewayPeakRssMb),
    longRss: r.long.endRssMb,
    longGrowth: r.long.lastHalfGrowthMb,
    startup: median(r.startup.readyMs),
    lost: phases.reduce((n, p) => n + p.delivery.lost, 0),
    duplicates: phases.reduce((n, p) => n + p.delivery.duplicates, 0),
    ceilingLost: [...ceilingPhases, ...c.mamOn.rates].reduce(
      (n, p) => n + p.delivery.lost + p.delivery.duplicates,
      0,
    ),
  };
}

/** One line of the targets table. */
export interface TargetRow {
  what: string;
  target: string;
  measured: string;
  met: boolean;
}

export function targetRows(r: Results): TargetRow[] {
  const h = headline(r);
  const t = TARGETS;
  const c = f0(h.ceiling);
  return [
    {
      what: `gateway end to end, callers waiting, ${r.concurrency} keep-alive connections / ceiling`,
      target: `≥ ${t.waitingRatio}`,
      measured: `${f0(h.waiting)} / ${c} msg/s = **${f2(h.waiting / h.ceiling)}**`,
      met: h.waiting / h.ceiling >= t.waitingRatio,
    },
    {
      what: "gateway end to end, `?wait=0` / ceiling",
      target: `≥ ${t.noWaitRatio}`,
      measured: `${f0(h.noWait)} / ${c} msg/s = **${f2(h.noWait / h.ceiling)}**`,
      met: h.noWait / h.ceiling >= t.noWaitRatio,
    },
    {
      what: "p99 request → arrival at 50% of the ceiling / the minimal client's own p99 at that rate",
      target: `≤ ${t.p99Ratio}`,
      measured: `${f1(h.gw50)} / ${f1(h.min50)} ms = **${f2(h.p99Ratio)}**`,
      met: h.p99Ratio <= t.p99Ratio,
    },
    {
      what: "accept path (durable, 202) / trivial node:http server, same load generator",
      target: `≥ ${t.acceptRatio}`,
      measured: `${f0(r.accept.gateway.rps)} / ${f0(r.accept.trivial.rps)} req/s = **${f2(h.acceptRatio)}**`,
      met: h.acceptRatio >= t.acceptRatio,
    },
    {
      what: `peak RSS under the ${f0(r.burst.delivery.n)} burst`,
      target: `< ${t.burstRssMb} MB`,
      measured: `${f0(h.burstRss)} MB`,
      met: h.burstRss < t.burstRssMb,
    },
    {
      what: `RSS after ${f0(r.long.delivery.n)} messages at ${r.long.pct}% of the ceiling${
        r.long.delivery.n < r.long.planned
          ? ` (cut short by the budget: ${f0(r.long.planned)} meant)`
          : ""
      }; growth over the last half`,
      target: `< ${t.longRssMb} MB; < ${t.longFlatMb} MB`,
      measured: `${f0(h.longRss)} MB; ${f1(h.longGrowth)} MB`,
      met: h.longRss < t.longRssMb && h.longGrowth < t.longFlatMb,
    },
    {
      what: `start-up to \`/ready\`, login included (median of ${r.startup.readyMs.length})`,
      target: `< ${f0(t.startupMs)} ms`,
      measured: `${f0(h.startup)} ms`,
      met: h.startup < t.startupMs,
    },
    {
      what: "lost / duplicated, every gateway phase",
      target: "0 / 0",
      measured: `${h.lost} / ${h.duplicates}`,
      met: h.lost === 0 && h.duplicates === 0,
    },
  ];
}

/** The targets as plain text, for a run that writes nothing. */
export function summaryLines(r: Results): string[] {
  const h = headline(r);
  return [
    `ceiling (minimal client, MAM on) ${f0(h.ceiling)} msg/s; MAM off ${f0(h.mamOff)} (${f2(h.mamOff / h.ceiling)}); library client ${f0(h.library)} (${f2(h.library / h.ceiling)})`,
    ...targetRows(r).map(
      (t) =>
        `${t.met ? "met    " : "NOT MET"}  ${t.what}: ${t.measured.replaceAll("**", "")} (target ${t.target})`,
    ),
    ...(h.ceilingLost ? [`ceiling phases: ${h.ceilingLost} lost or duplicated`] : []),
  ];
}
