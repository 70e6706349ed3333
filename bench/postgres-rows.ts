/**
 * The PostgreSQL spool against SQLite in the same run (issue 14): one table for
 * BENCHMARKS.md, the same lines for the console. SQLite's end-to-end figure is the median
 * of its runs of that mode (`SIZES.e2eRepeats`); PostgreSQL ran each mode once. With
 * SQLite the database is the gateway's own process: its server CPU shows as "–".
 */
import type { ClosedRun } from "./phases.ts";
import { f0, f1, f2, median, type Results } from "./targets.ts";

/** One figure on both spools. */
export interface Comparison {
  what: string;
  sqlite: number;
  postgres: number;
  /** How to print the figures. */
  format: (v: number) => string;
}

const perRun = (runs: ClosedRun[], pick: (r: ClosedRun) => number) => median(runs.map(pick));

/** The figures compared, accept path first. */
export function comparisons(r: Results): Comparison[] {
  const a = r.accept;
  const pa = r.postgres.accept;
  const accept = `accept path (${a.connections} connections, ${a.seconds} s)`;
  const rows: Comparison[] = [
    { what: `${accept}, req/s`, sqlite: a.gateway.rps, postgres: pa.gateway.rps, format: f0 },
    {
      what: `${accept}, latency p99 ms`,
      sqlite: a.gateway.latencyP99,
      postgres: pa.gateway.latencyP99,
      format: f1,
    },
    {
      what: `${accept}, gateway CPU µs per post`,
      sqlite: (a.gatewayUsage.gatewayCpuS * 1e6) / a.gateway.total,
      postgres: (pa.gatewayUsage.gatewayCpuS * 1e6) / pa.gateway.total,
      format: f0,
    },
    {
      what: `${accept}, database server CPU µs per post`,
      sqlite: Number.NaN, // in the gateway's process
      postgres: (pa.gatewayUsage.databaseCores * pa.gatewayUsage.wallS * 1e6) / pa.gateway.total,
      format: f0,
    },
    {
      what: `${accept}, spool commits/s`,
      sqlite: a.commits.perSecond,
      postgres: pa.commits.perSecond,
      format: f0,
    },
    {
      what: `${accept}, posts per commit`,
      sqlite: a.commits.writesEach,
      postgres: pa.commits.writesEach,
      format: f1,
    },
    {
      what: `${accept}, ms per commit`,
      sqlite: a.commits.msEach,
      postgres: pa.commits.msEach,
      format: f2,
    },
  ];
  const modes = [
    ["callers waiting", r.e2e.waiting, r.postgres.e2e.waiting],
    ["`?wait=0`", r.e2e.noWait, r.postgres.e2e.noWait],
  ] as const;
  for (const [mode, sqlite, postgres] of modes) {
    const what = `end to end, ${mode}, ${r.concurrency} connections`;
    /** `inGateway`: SQLite has no server of its own for this figure ("–"). */
    const row = (
      label: string,
      pick: (x: ClosedRun) => number,
      format: (v: number) => string,
      inGateway = false,
    ) =>
      rows.push({
        what: `${what}, ${label}`,
        sqlite: inGateway ? Number.NaN : perRun(sqlite, pick),
        postgres: pick(postgres),
        format,
      });
    row("msg/s delivered", (x) => x.delivery.throughput, f0);
    row("e2e p99 ms", (x) => x.delivery.e2e.p99, f1);
    row("gateway CPU µs per message", (x) => (x.usage.gatewayCpuS * 1e6) / x.delivery.n, f0);
    row(
      "database server CPU µs per message",
      (x) => (x.usage.databaseCores * x.usage.wallS * 1e6) / x.delivery.n,
      f0,
      true,
    );
    row("ms per commit", (x) => x.commits.msEach, f2);
  }
  return rows;
}

/** The comparison as a Markdown table. */
export function postgresTable(r: Results): string {
  const lines = comparisons(r).map(
    (c) =>
      `| ${c.what} | ${c.format(c.sqlite)} | ${c.format(c.postgres)} | ${f2(c.postgres / c.sqlite)} |`,
  );
  return `| what | SQLite | PostgreSQL | PostgreSQL / SQLite |
| --- | ---: | ---: | ---: |
${lines.join("\n")}`;
}

/** The comparison as console lines. */
export function postgresSummary(r: Results): string[] {
  return comparisons(r).map(
    (c) =>
      `PostgreSQL spool: ${c.what.replaceAll("`", "")}: ${c.format(c.postgres)} (SQLite ${c.format(c.sqlite)}) = ${f2(c.postgres / c.sqlite)} × SQLite`,
  );
}
