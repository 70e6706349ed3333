/** Table rows of BENCHMARKS.md, and the history it keeps between runs. */
import type { HttpRun } from "./load.ts";
import type { Memory, Run } from "./phases.ts";
import { f0, f1, f2, headline, type Results } from "./targets.ts";

/** Cores used by others above which a phase is flagged as disturbed. */
export const NOISY = 0.25;

export const statuses = (s: Record<string, number>) =>
  Object.entries(s)
    .map(([code, n]) => `${code === "0" ? "error" : code}: ${n}`)
    .join(", ");

/** Header of the delivery table, matching {@link runRow}. */
export const RUN_HEADER = `| run | messages | msg/s delivered | × ceiling | e2e p50 / p90 / p99 / max | reply p50 / p99 | lost / dup | gateway CPU (cores) | Prosody cores | bench cores | other / steal cores | gateway RSS MB |
| --- | ---: | ---: | ---: | --- | --- | --- | --- | ---: | ---: | ---: | ---: |`;

/** One delivery-table row; `gateway` false for the clients that measure the ceiling. */
export function runRow(label: string, run: Run, ceiling: number, gateway = true): string {
  const d = run.delivery;
  const u = run.usage;
  const noisy = u.otherCores + u.stealCores > NOISY ? " ⚠" : "";
  return `| ${label} | ${f0(d.n)} | ${f0(d.throughput)} | ${f2(d.throughput / ceiling)} | ${f1(d.e2e.p50)} / ${f1(d.e2e.p90)} / ${f1(d.e2e.p99)} / ${f0(d.e2e.max)} | ${
    gateway ? `${f1(d.reply.p50)} / ${f1(d.reply.p99)}` : "–"
  } | ${d.lost} / ${d.duplicates} | ${gateway ? `${f2(u.gatewayCpuS)} s (${f2(u.gatewayCores)})` : "–"} | ${f2(u.prosodyCores)} | ${f2(u.benchCores)} | ${f2(u.otherCores)} / ${f2(u.stealCores)}${noisy} | ${
    gateway ? f0(u.gatewayHwmMb) : "–"
  } |`;
}

/** Every delivery row of a run, ceilings first. */
export function deliveryRows(r: Results): string {
  const c = r.ceilings;
  const ceiling = headline(r).ceiling;
  const w = c.window;
  const rows = [
    ...c.mamOn.runs.map((x, i) =>
      runRow(`minimal client, MAM on, all at once (${i + 1})`, x, ceiling, false),
    ),
    runRow(`minimal client, MAM on, ${w} in flight`, c.mamOn.windowed, ceiling, false),
    ...c.mamOff.runs.map((x, i) =>
      runRow(`minimal client, MAM off, all at once (${i + 1})`, x, ceiling, false),
    ),
    runRow(`minimal client, MAM off, ${w} in flight`, c.mamOff.windowed, ceiling, false),
    ...c.library.runs.map((x, i) =>
      runRow(`library client (xmpp.js), MAM on, all at once (${i + 1})`, x, ceiling, false),
    ),
    runRow(`library client (xmpp.js), MAM on, ${w} in flight`, c.library.windowed, ceiling, false),
    runRow("minimal client, MAM on, all at once, end of run", r.ceilingEnd, ceiling, false),
    ...c.mamOn.rates.map((x) =>
      runRow(`minimal client, open loop ${x.pct}% = ${f0(x.offered)}/s`, x, ceiling, false),
    ),
    ...r.e2e.waiting.map((x, i) =>
      runRow(`gateway, ${r.concurrency} connections, callers waiting (${i + 1})`, x, ceiling),
    ),
    ...r.e2e.noWait.map((x, i) =>
      runRow(`gateway, ${r.concurrency} connections, \`?wait=0\` (${i + 1})`, x, ceiling),
    ),
    runRow(
      `gateway on PostgreSQL, ${r.concurrency} connections, callers waiting`,
      r.postgres.e2e.waiting,
      ceiling,
    ),
    runRow(
      `gateway on PostgreSQL, ${r.concurrency} connections, \`?wait=0\``,
      r.postgres.e2e.noWait,
      ceiling,
    ),
    ...r.e2e.rates.map((x) =>
      runRow(`gateway, open loop ${x.pct}% = ${f0(x.offered)}/s`, x, ceiling),
    ),
    runRow(`gateway, burst, ${r.burst.connections} connections`, r.burst, ceiling),
    runRow(
      `gateway, long phase, open loop ${r.long.pct}% = ${f0(r.long.offered)}/s`,
      r.long,
      ceiling,
    ),
  ];
  return `${RUN_HEADER}\n${rows.join("\n")}`;
}

export function memRow(label: string, m: Memory): string {
  return `| ${label} | ${f0(m.rssMb)} | ${f0(m.heapUsedMb)} | ${f0(m.heapTotalMb)} | ${f0(m.externalMb)} |`;
}

export function httpRow(label: string, h: HttpRun, gatewayCores?: number): string {
  return `| ${label} | ${f0(h.rps)} | ${f0(h.total)} | ${f1(h.latencyP50)} / ${f1(h.latencyP99)} | ${statuses(h.statuses)}${
    h.errors ? `, errors: ${h.errors}` : ""
  } | ${f2(h.loadGenCores)} | ${gatewayCores === undefined ? "–" : f2(gatewayCores)} |`;
}

/** The long phase's RSS at every tenth of its offered load, as "t s: MB" pairs. */
export function rssTimeline(r: Results): string {
  const { rss, offeredS } = r.long;
  const out: string[] = [];
  for (let k = 1; k <= 10; k++) {
    const t = (offeredS * k) / 10;
    const s = rss.find(([x]) => x >= t) ?? rss.at(-1);
    if (s) out.push(`${f0(s[0])} s: ${f0(s[1])}`);
  }
  return out.join(", ");
}

const HISTORY_HEADER = `| date (UTC) | commit | ceiling msg/s | MAM off msg/s | library × ceiling | waiting × ceiling | \`?wait=0\` × ceiling | p99 @50% × minimal | accept × trivial | burst RSS MB | long RSS MB (growth) | start-up ms | lost / dup | duration |
| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: |`;

const OLD_HEADER = `| date (UTC) | commit | ceiling msg/s | gateway msg/s | ratio | p99 @50% ms | accept req/s | burst RSS MB | start-up ms | lost / dup | duration |
| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |`;

/** The History section: the previous rows, this run's appended; the old format apart. */
export function history(previous: string | undefined, r: Results): string {
  const rows = (previous ?? "").split("\n").filter((l) => /^\| \d{4}-/.test(l));
  const cells = (l: string) => l.split("|").length - 2;
  const old = rows.filter((l) => cells(l) === 11);
  const current = rows.filter((l) => cells(l) !== 11);
  const h = headline(r);
  const e = r.env;
  current.push(
    `| ${e.date.slice(0, 16).replace("T", " ")} | ${e.commit.split(" ")[0]}${e.commit.includes(" ") ? "+" : ""} | ${f0(h.ceiling)} | ${f0(h.mamOff)} | ${f2(h.library / h.ceiling)} | ${f2(h.waiting / h.ceiling)} | ${f2(h.noWait / h.ceiling)} | ${f2(h.p99Ratio)} | ${f2(h.acceptRatio)} | ${f0(h.burstRss)} | ${f0(h.longRss)} (${f1(h.longGrowth)}) | ${f0(h.startup)} | ${h.lost} / ${h.duplicates} | ${f0(r.durationS)} s |`,
  );
  const earlier = old.length
    ? `\n\nEarlier runs, before issue 12: the ceiling was the library client's (MAM on), the
targets absolute.\n\n${OLD_HEADER}\n${old.join("\n")}`
    : "";
  return `One row per run of \`npm run bench\` (commit + = uncommitted changes). The ceiling is the
minimal client's in the archived room (MAM on); ratios as in the targets table.

${HISTORY_HEADER}
${current.join("\n")}${earlier}`;
}
