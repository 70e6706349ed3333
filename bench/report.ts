/**
 * BENCHMARKS.md and bench/plot.svg from one run's results. The "Notes" and "History"
 * sections of the previous file are kept; the run appends its own row to the history.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import type { RateRun } from "./phases.ts";
import { renderPlot } from "./plot.ts";
import { postgresTable } from "./postgres-rows.ts";
import { REPO } from "./proc.ts";
import {
  deliveryRows,
  history,
  httpRow,
  memRow,
  NOISY,
  rssTimeline,
  statuses,
} from "./report-rows.ts";
import { f0, f1, f2, headline, median, type Results, TARGETS, targetRows } from "./targets.ts";

/** The previous file's section `name` (without its heading), or undefined. */
function section(previous: string, name: string): string | undefined {
  const start = previous.indexOf(`\n## ${name}\n`);
  if (start < 0) return undefined;
  const body = previous.slice(start + name.length + 5);
  const end = body.indexOf("\n## ");
  return (end < 0 ? body : body.slice(0, end)).trim();
}

/** Writes BENCHMARKS.md and bench/plot.svg (into `dir`, the repository by default); returns their paths. */
export function writeReport(r: Results, dir = REPO): string[] {
  const h = headline(r);
  const e = r.env;
  const c = r.ceilings;
  const point = (x: RateRun) => ({
    offered: x.offered,
    throughput: x.delivery.throughput,
    p50: x.delivery.e2e.p50,
    p99: x.delivery.e2e.p99,
  });
  const svg = renderPlot(
    r.e2e.rates.map(point),
    c.mamOn.rates.map(point),
    c.value,
    TARGETS.p99Ratio * h.min50,
    `xmpp-msg-gw ${e.commit.split(" ")[0]}, ${e.date.slice(0, 10)}: open loop, ${r.rateSeconds} s per rate`,
  );
  mkdirSync(`${dir}/bench`, { recursive: true });
  writeFileSync(`${dir}/bench/plot.svg`, svg);

  const file = `${dir}/BENCHMARKS.md`;
  const previous = existsSync(file) ? readFileSync(file, "utf8") : "";
  const notes =
    section(previous, "Notes") ??
    "(Findings and profiles go here; this section is kept between runs.)";
  const a = r.accept;
  const l = r.long;
  const rates = r.e2e.rates;
  const pg = r.postgres;
  const sqliteRuns =
    r.e2e.waiting.length === 1
      ? "its one run of the mode"
      : `the median of its ${r.e2e.waiting.length} runs of the mode`;
  const pgShown = Object.entries(pg.info.settings)
    .map(([k, v]) => `\`${k}=${v}\``)
    .join(", ");
  const md = `# Benchmarks

\`npm run bench\` measures the gateway against the XMPP server's own ceiling on the machine it
runs on, in one run of under 10 minutes, and rewrites this file and [bench/plot.svg](bench/plot.svg).
It starts a throwaway Prosody like the integration tests do (loopback, TLS, random ports),
an observer account that timestamps every arrival in the rooms, and the gateway as its own
process (\`node bin/xmpp-msg-gw.js serve\`, configured by the environment) so that its CPU and
memory can be read from \`/proc\`. The load generator runs in the benchmark process.
\`npm run bench -- --profile\` runs the end-to-end and accept phases with the gateway under
\`--cpu-prof\` and prints its top functions by self time instead; \`BENCH_QUICK=1\` is a smoke
run with small sizes that writes nothing (see \`bench/settings.ts\`).

The machine is small and shared: compare figures within one run (the ratios), not
across machines. Every figure below comes from the run of ${e.date}; before it started,
other processes kept ${f2(r.background)} cores busy.

## Latest run against the targets

| what | target | measured | |
| --- | --- | --- | --- |
${targetRows(r)
  .map((t) => `| ${t.what} | ${t.target} | ${t.measured} | ${t.met ? "met" : "**not met**"} |`)
  .join("\n")}

**The ceiling** is the minimal client's (\`bench/minimal.ts\`: one hand-written TLS stream,
SASL PLAIN, bound and joined, writing pre-serialised groupchat stanzas as fast as the socket
takes them, no stream management) **in the archived room (MAM on)**, the room the gateway
delivers into, so that the server does the same work per message in both: the best of its
runs before the gateway phases (all at once: ${c.mamOn.runs.map((x) => f0(x.delivery.throughput)).join(", ")} msg/s; ${c.window} unreflected in flight:
${f0(c.mamOn.windowed.delivery.throughput)} msg/s), or the end-of-run measurement (${f0(r.ceilingEnd.delivery.throughput)} msg/s) if higher: **${f0(h.ceiling)} msg/s**.
The open-loop rates are percentages of the first (${f0(c.value)} msg/s). Beside it, the same
client into a room created without an archive (\`muc#roomconfig_enablearchiving=0\`): **MAM off
${f0(h.mamOff)} msg/s = ${f2(h.mamOff / h.ceiling)} × ceiling**; and the library client (xmpp.js
through the gateway's own session code, stream management on) into the archived room:
**${f0(h.library)} msg/s = ${f2(h.library / h.ceiling)} × ceiling**. Archive files after the
ceiling phases: ${f0(c.archiveBytes.on)} bytes (MAM on), ${f0(c.archiveBytes.off)} bytes (MAM off).
${r.gatewayNodeArgs.length ? `\nThe gateway ran with extra node options: \`${r.gatewayNodeArgs.join(" ")}\`.\n` : ""}
## Delivery: ceilings, end to end, open loop, burst, long phase

Latencies in ms: request start (for the open loop: its scheduled time; for the minimal
client all at once: when its chunk was handed to the socket) → the observer receives the
message in the room; reply = request start → end of the HTTP reply. "× ceiling" is the
row's rate over the ceiling (${f0(h.ceiling)} msg/s). CPU in cores = CPU seconds / wall seconds of
the phase; "bench" is the load generator, the sending client and the observer together;
"other" is whatever else kept the machine busy meanwhile (other processes on this shared
machine, the kernel) and "steal" the CPU time the hypervisor gave to other guests; ⚠ when
the two add up to more than ${NOISY} cores: treat that row as disturbed. RSS is the gateway's
VmHWM (peak since its start). The gateway phases from "callers waiting" to the open loop
share one gateway process; the PostgreSQL rows (see below), the burst and the long phase
each start a fresh one.

${deliveryRows(r)}

Replies with callers waiting: ${r.e2e.waiting.map((x) => statuses(x.delivery.statuses)).join("; ")}. The gateways logged
${r.complaints.length === 0 ? "no warnings or errors" : `${r.complaints.length} warning/error line(s), e.g. \`${r.complaints[0]?.slice(0, 200).replaceAll("`", "'")}\``}. Open loop: the
generator's own lateness against its schedule was at most ${f1(Math.max(...rates.map((x) => x.lagMax)))} ms (p99 ${f1(Math.max(...rates.map((x) => x.lagP99)))} ms).
Burst: the gateway answered all ${f0(r.burst.delivery.n)} posts at ${f0(r.burst.delivery.httpRate)} req/s. Its memory (MB; V8 heap
from its own \`/metrics\`):

| when | RSS | V8 heap used | V8 heap total | external |
| --- | ---: | ---: | ---: | ---: |
${memRow("burst: before (started, 500 posts, idle)", r.burst.before)}
${memRow("burst: at the last reply (all spooled)", r.burst.replied)}
| burst: peak, polled every 20 ms / VmHWM | ${f0(r.burst.usage.gatewayPeakRssMb)} / ${f0(r.burst.usage.gatewayHwmMb)} | | | |
${memRow("long phase: before (started, 500 posts, idle)", l.before)}
${memRow(`long phase: after ${f0(l.delivery.n)} messages (all arrived)`, l.after)}

![throughput and latency against offered load](bench/plot.svg)

## Long phase

A fresh gateway takes ${f0(l.delivery.n)} messages at ${l.pct}% of the ceiling (${f0(l.offered)}/s offered for
${f0(l.offeredS)} s, open loop, \`?wait=0\`, 64 connections); its RSS is read every second. RSS at
half the offered load ${f0(l.midRssMb)} MB, at the end (all arrived) ${f0(l.endRssMb)} MB, largest in the
second half ${f0(l.maxLastHalfMb)} MB; least-squares growth over the second half ${f1(l.lastHalfGrowthMb)} MB
("flat" means below ${TARGETS.longFlatMb} MB). RSS (MB) at every tenth of the offered load: ${rssTimeline(r)}.

## Accept path alone

XMPP unreachable (\`XMPP_PORT\` points at a closed port), so every post is spooled durably
and answered 202 at once. autocannon, ${a.connections} keep-alive connections, ${a.seconds} s against the
gateway; the same against a trivial node:http server that answers 202 and does nothing else
shows what the load generator itself can do on this machine (the target's denominator).

| target | req/s | requests | latency p50 / p99 ms | replies | load generator cores | gateway cores |
| --- | ---: | ---: | --- | --- | ---: | ---: |
${httpRow("trivial node:http server (control)", a.trivial)}
${httpRow("gateway, spooling to SQLite", a.gateway, a.gatewayUsage.gatewayCores)}
${httpRow("gateway, spooling to PostgreSQL", pg.accept.gateway, pg.accept.gatewayUsage.gatewayCores)}

Other processes used ${f2(a.gatewayUsage.otherCores)} cores during the gateway's run. Messages the spool gained during it: ${a.spooled === undefined ? "unknown" : f0(a.spooled)} (2xx replies: ${f0(a.gateway.ok2xx)}).
The benchmark's node:http client (used for the delivery phases) reached ${f0(a.posterRate)} req/s
against the trivial server with 32 connections.

## PostgreSQL spool (issue 14)

The same gateway with \`SPOOL_URL\` naming a PostgreSQL database, each phase right after its
SQLite twin in this run, same Prosody and load: the accept path as above (XMPP unreachable,
autocannon, ${a.connections} connections, ${a.seconds} s) and end to end (callers waiting, then \`?wait=0\`, ${r.concurrency}
connections, ${f0(pg.e2e.waiting.delivery.n)} messages, once each; SQLite's figure is ${sqliteRuns}).
**PostgreSQL ${pg.info.version}**, local: Debian's server in a throwaway cluster the benchmark
starts (\`src/devserver/postgres.ts\`: \`initdb\` into the temp dir on ${e.tmpFs}, the postmaster
on 127.0.0.1 and a random port), the server's defaults but \`max_connections=40\`: ${pgShown}.
So every commit waits for its WAL flush, and **goes over TCP on loopback** (node-postgres; the
spool's pool of 4 connections, one group commit at a time, as on SQLite). Each gateway has a
fresh database and, alone on it, takes the sender lease at once; the end-to-end gateway is
measured once it holds the lease and has joined (its \`/ready\` is 200 as a standby already).

${postgresTable(r)}

PostgreSQL's own processes (postmaster and backends, metered apart from "other") used
${f2(pg.accept.gatewayUsage.databaseCores)} cores on the accept path, ${f2(pg.e2e.waiting.usage.databaseCores)} with callers waiting and ${f2(pg.e2e.noWait.usage.databaseCores)} at \`?wait=0\`. "ms per
commit" is the gateway's clock from taking the write connection to the commit's reply: on
SQLite the transaction and its fsync, run synchronously; on PostgreSQL at least three round trips
(BEGIN with the write lock, the statements, COMMIT and its WAL flush), each resumed only when
the gateway's busy event loop gets to it. On the accept path the spool gained ${pg.accept.spooled === undefined ? "an unknown number of" : f0(pg.accept.spooled)}
messages on PostgreSQL (2xx replies: ${f0(pg.accept.gateway.ok2xx)}).

## Start-up

Process start (\`spawn\`) → first \`/health\` 200 → first \`/ready\` 200 (logged in, room
joined), polled every 5 ms, each on a fresh spool: to /health ${r.startup.healthMs.map(f0).join(", ")} ms
(median ${f0(median(r.startup.healthMs))}); to /ready ${r.startup.readyMs.map(f0).join(", ")} ms (median ${f0(median(r.startup.readyMs))}).

## Machine and versions

- CPU: ${e.cpu}, ${e.cores} cores available; RAM ${e.ramGb} GB; ${e.kernel}
- Spools in the temp dir on ${e.tmpFs}: 4 KiB write + fsync ${f2(e.fsyncMs)} ms (median of 100)
- PostgreSQL ${pg.info.version} (local, loopback TCP; data in the temp dir)
- Node ${e.node}; Prosody ${e.prosody} on ${e.lua}; ${Object.entries(e.packages)
    .map(([p, v]) => `${p} ${v}`)
    .join(", ")}
- Gateway commit ${e.commit}
- Run: ${f0(r.durationS)} s in all${r.unparsed ? `; ${r.unparsed} room messages not from the benchmark` : ""}

Gateway environment: one route (\`KNOWN_ROOMS\`), \`RATE_LIMIT_PER_MINUTE=0\`, \`LOG_LEVEL=warn\`,
\`DATA_DIR\` a fresh temp dir, \`HTTP_HOST=127.0.0.1\`; defaults otherwise (JSON format,
text/plain bodies of about 150 bytes sent as they are).

## Prosody configuration

Generated by \`src/devserver/prosody.ts\` with the benchmark's additions at the end of the
global section (\`bench/settings.ts\`); \`mod_limits\` is not loaded (the benchmark checks).
The MAM-off room is created by the minimal client with \`muc#roomconfig_enablearchiving=0\`
and \`muc#roomconfig_persistentroom=1\` (XEP-0045 §10.2; mod_muc_mam's form field).

\`\`\`lua
${r.prosodyConfig.trim()}
\`\`\`

## Notes

${notes}

## History

${history(section(previous, "History"), r)}
`;
  writeFileSync(file, md);
  // The project's formatter aligns Markdown tables; `npm test` lints this file too.
  try {
    execFileSync(`${REPO}/node_modules/.bin/biome`, ["format", "--write", file], {
      cwd: REPO,
      stdio: "ignore",
    });
  } catch {
    process.stderr.write("bench: could not run biome on BENCHMARKS.md; it is left unformatted\n");
  }
  return [file, `${dir}/bench/plot.svg`];
}
