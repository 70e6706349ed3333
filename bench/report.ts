/**
 * BENCHMARKS.md and bench/plot.svg from one run's results. The "Notes" and "History"
 * sections of the previous file are kept; the run appends its own row to the history.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { Environment } from "./environment.ts";
import type { HttpRun } from "./load.ts";
import type { AcceptResult, BurstRun, Memory, RateRun, Run } from "./phases.ts";
import { renderPlot } from "./plot.ts";
import { REPO } from "./proc.ts";

/** Everything a run measured. */
export interface Results {
  env: Environment;
  prosodyConfig: string;
  durationS: number;
  ceiling: {
    runs: Run[];
    windowed: Run;
    end: Run;
    /** The best plain-client run before the gateway phases: the open-loop rates are % of it. */
    value: number;
    window: number;
    /** The plain client at the open-loop rates: the server's own latency. */
    rates: RateRun[];
  };
  gatewayNodeArgs: string[];
  /** Cores other processes kept busy just before the run. */
  background: number;
  /** Warning and error lines the gateways of the delivery phases logged. */
  complaints: string[];
  e2e: Run[];
  concurrency: number;
  waiting: Run;
  rates: RateRun[];
  rateSeconds: number;
  burst: BurstRun;
  accept: AcceptResult;
  startup: { healthMs: number[]; readyMs: number[] };
  /** Room messages the observer could not attribute to the benchmark. */
  unparsed: number;
}

/** Cores used by others above which a phase is flagged as disturbed. */
const NOISY = 0.25;

/** The targets of issue 6. */
export const TARGETS = {
  ratio: 0.9,
  p99At50Ms: 50,
  acceptRps: 10_000,
  burstRssMb: 150,
  startupMs: 1500,
};

const f0 = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString("en-US") : "–");
const f1 = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : "–");
const f2 = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : "–");
const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? Number.NaN) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
};
const verdict = (ok: boolean) => (ok ? "met" : "**not met**");
const statuses = (s: Record<string, number>) =>
  Object.entries(s)
    .map(([code, n]) => `${code === "0" ? "error" : code}: ${n}`)
    .join(", ");

/** Headline figures, for the targets table and the history row. */
function headline(r: Results) {
  const best = r.e2e.reduce((a, b) => (b.delivery.throughput > a.delivery.throughput ? b : a));
  const ceilingAll = Math.max(r.ceiling.value, r.ceiling.end.delivery.throughput);
  const at50 = r.rates.find((x) => x.pct === 50);
  const phases = [...r.e2e, r.waiting, ...r.rates, r.burst];
  return {
    best,
    ceilingAll,
    ratio: best.delivery.throughput / ceilingAll,
    p99At50: at50?.delivery.e2e.p99 ?? Number.NaN,
    acceptRps: r.accept.gateway.rps,
    burstRss: Math.max(r.burst.usage.gatewayHwmMb, r.burst.usage.gatewayPeakRssMb),
    startup: median(r.startup.readyMs),
    lost: phases.reduce((n, p) => n + p.delivery.lost, 0),
    duplicates: phases.reduce((n, p) => n + p.delivery.duplicates, 0),
  };
}

function runRow(label: string, run: Run, gateway = true): string {
  const d = run.delivery;
  const u = run.usage;
  return `| ${label} | ${f0(d.n)} | ${f0(d.throughput)} | ${f1(d.e2e.p50)} / ${f1(d.e2e.p90)} / ${f1(d.e2e.p99)} / ${f0(d.e2e.max)} | ${
    gateway ? `${f1(d.reply.p50)} / ${f1(d.reply.p99)}` : "–"
  } | ${d.lost} / ${d.duplicates} | ${gateway ? `${f2(u.gatewayCpuS)} s (${f2(u.gatewayCores)})` : "–"} | ${f2(u.prosodyCores)} | ${f2(u.benchCores)} | ${f2(u.otherCores)} / ${f2(u.stealCores)}${u.otherCores + u.stealCores > NOISY ? " ⚠" : ""} | ${
    gateway ? f0(u.gatewayHwmMb) : "–"
  } |`;
}

function memRow(label: string, m: Memory): string {
  return `| ${label} | ${f0(m.rssMb)} | ${f0(m.heapUsedMb)} | ${f0(m.heapTotalMb)} | ${f0(m.externalMb)} |`;
}

function httpRow(label: string, h: HttpRun, gatewayCores?: number): string {
  return `| ${label} | ${f0(h.rps)} | ${f0(h.total)} | ${f1(h.latencyP50)} / ${f1(h.latencyP99)} | ${statuses(h.statuses)}${
    h.errors ? `, errors: ${h.errors}` : ""
  } | ${f2(h.loadGenCores)} | ${gatewayCores === undefined ? "–" : f2(gatewayCores)} |`;
}

/** The previous file's section `name` (without its heading), or undefined. */
function section(previous: string, name: string): string | undefined {
  const start = previous.indexOf(`\n## ${name}\n`);
  if (start < 0) return undefined;
  const body = previous.slice(start + name.length + 5);
  const end = body.indexOf("\n## ");
  return (end < 0 ? body : body.slice(0, end)).trim();
}

/** Writes BENCHMARKS.md and bench/plot.svg; returns their paths. */
export function writeReport(r: Results): string[] {
  const h = headline(r);
  const e = r.env;
  const ceiling = r.ceiling.value;
  const point = (x: RateRun) => ({
    offered: x.offered,
    throughput: x.delivery.throughput,
    p50: x.delivery.e2e.p50,
    p99: x.delivery.e2e.p99,
  });
  const svg = renderPlot(
    r.rates.map(point),
    r.ceiling.rates.map(point),
    ceiling,
    TARGETS.p99At50Ms,
    `xmpp-msg-gw ${e.commit.split(" ")[0]}, ${e.date.slice(0, 10)}: open loop, ${r.rateSeconds} s per rate`,
  );
  writeFileSync(`${REPO}/bench/plot.svg`, svg);

  const file = `${REPO}/BENCHMARKS.md`;
  const previous = existsSync(file) ? readFileSync(file, "utf8") : "";
  const notes =
    section(previous, "Notes") ??
    "(Findings and profiles go here; this section is kept between runs.)";
  const historyRows = (section(previous, "History") ?? "")
    .split("\n")
    .filter((l) => /^\| \d{4}-/.test(l));
  historyRows.push(
    `| ${e.date.slice(0, 16).replace("T", " ")} | ${e.commit.split(" ")[0]}${e.commit.includes(" ") ? "+" : ""} | ${f0(h.ceilingAll)} | ${f0(h.best.delivery.throughput)} | ${f2(h.ratio)} | ${f1(h.p99At50)} | ${f0(h.acceptRps)} | ${f0(h.burstRss)} | ${f0(h.startup)} | ${h.lost} / ${h.duplicates} | ${f0(r.durationS)} s |`,
  );
  const a = r.accept;
  const md = `# Benchmarks

\`npm run bench\` measures the gateway against the XMPP server's own ceiling on the machine it
runs on, in one run of a few minutes, and rewrites this file and [bench/plot.svg](bench/plot.svg).
It starts a throwaway Prosody like the integration tests do (loopback, TLS, random ports),
an observer account that timestamps every arrival in the room, and the gateway as its own
process (\`node bin/xmpp-msg-gw.js serve\`, configured by the environment) so that its CPU and
memory can be read from \`/proc\`. The load generator runs in the benchmark process.
\`npm run bench -- --profile\` runs the end-to-end and accept phases with the gateway under
\`--cpu-prof\` and prints its top functions by self time instead.

The machine is small and shared: compare figures within one run (the ratios), not
across machines. Every figure below comes from the run of ${e.date}; before it started,
other processes kept ${f2(r.background)} cores busy.

## Latest run against the targets

| what | target | measured | |
| --- | --- | --- | --- |
| gateway end-to-end rate | ≥ ${TARGETS.ratio} × ceiling (≥ ${f0(TARGETS.ratio * h.ceilingAll)} msg/s) | ${f0(h.best.delivery.throughput)} msg/s = **${f2(h.ratio)} × ceiling** (${f0(h.ceilingAll)} msg/s) | ${verdict(h.ratio >= TARGETS.ratio)} |
| p99 request → arrival at 50% of ceiling | < ${TARGETS.p99At50Ms} ms | ${f1(h.p99At50)} ms | ${verdict(h.p99At50 < TARGETS.p99At50Ms)} |
| accept path, durable (XMPP down, 202) | ≥ ${f0(TARGETS.acceptRps)} req/s on 2 cores | ${f0(h.acceptRps)} req/s | ${verdict(h.acceptRps >= TARGETS.acceptRps)} |
| peak RSS under the ${f0(r.burst.delivery.n)} burst | < ${TARGETS.burstRssMb} MB | ${f0(h.burstRss)} MB | ${verdict(h.burstRss < TARGETS.burstRssMb)} |
| start-up to \`/ready\` (login included), median of ${r.startup.readyMs.length} | < ${f0(TARGETS.startupMs)} ms | ${f0(h.startup)} ms | ${verdict(h.startup < TARGETS.startupMs)} |
| messages lost / duplicated, all gateway phases | 0 / 0 | ${h.lost} / ${h.duplicates} | ${verdict(h.lost === 0 && h.duplicates === 0)} |

The ceiling is the best plain-client run before the gateway phases (all at once:
${r.ceiling.runs.map((x) => f0(x.delivery.throughput)).join(", ")} msg/s; ${r.ceiling.window} in flight: ${f0(r.ceiling.windowed.delivery.throughput)} msg/s), ${f0(ceiling)} msg/s;
the open-loop rates are percentages of it. The ratio above is taken against the best of
those and the end-of-run measurement (${f0(r.ceiling.end.delivery.throughput)} msg/s), whichever is higher.
${r.gatewayNodeArgs.length ? `\nThe gateway ran with extra node options: \`${r.gatewayNodeArgs.join(" ")}\`.\n` : ""}
## Delivery: ceiling, end to end, open loop, burst

Latencies in ms: request start (for the open loop: its scheduled time) → the observer
receives the message in the room; reply = request start → end of the HTTP reply. CPU in
cores = CPU seconds / wall seconds of the phase; "bench" is the load generator and the
observer together; "other" is whatever else kept the machine busy meanwhile (other
processes on this shared machine, the kernel) and "steal" the CPU time the hypervisor gave
to other guests; ⚠ when the two add up to more than ${NOISY} cores: treat that row as
disturbed. RSS is the gateway's VmHWM (peak since its start).

| run | messages | msg/s delivered | e2e p50 / p90 / p99 / max | reply p50 / p99 | lost / dup | gateway CPU (cores) | Prosody cores | bench cores | other / steal cores | gateway RSS MB |
| --- | ---: | ---: | --- | --- | --- | --- | ---: | ---: | ---: | ---: |
${r.ceiling.runs.map((x, i) => runRow(`ceiling: plain client, all at once (${i + 1})`, x, false)).join("\n")}
${runRow(`ceiling: plain client, ${r.ceiling.window} in flight`, r.ceiling.windowed, false)}
${runRow("ceiling: plain client, all at once, end of run", r.ceiling.end, false)}
${r.ceiling.rates.map((x) => runRow(`plain client, open loop ${x.pct}% = ${f0(x.offered)}/s`, x, false)).join("\n")}
${r.e2e.map((x, i) => runRow(`gateway, ${r.concurrency} connections, \`?wait=0\` (${i + 1})`, x)).join("\n")}
${runRow(`gateway, ${r.concurrency} connections, waiting for delivery`, r.waiting)}
${r.rates.map((x) => runRow(`gateway, open loop ${x.pct}% = ${f0(x.offered)}/s`, x)).join("\n")}
${runRow(`gateway, burst, ${r.burst.connections} connections`, r.burst)}

Replies while waiting for delivery: ${statuses(r.waiting.delivery.statuses)}. The gateways of these runs logged
${r.complaints.length === 0 ? "no warnings or errors" : `${r.complaints.length} warning/error line(s), e.g. \`${r.complaints[0]?.slice(0, 200).replaceAll("`", "'")}\``}. Open loop: the
generator's own lateness against its schedule was at most ${f1(Math.max(...r.rates.map((x) => x.lagMax)))} ms (p99 ${f1(Math.max(...r.rates.map((x) => x.lagP99)))} ms).
Burst: the gateway answered all ${f0(r.burst.delivery.n)} posts at ${f0(r.burst.delivery.httpRate)} req/s. Its memory (MB; V8 heap
from its own \`/metrics\`):

| when | RSS | V8 heap used | V8 heap total | external |
| --- | ---: | ---: | ---: | ---: |
${memRow("before the burst (started, 500 posts, idle)", r.burst.before)}
${memRow("at the last reply (all spooled)", r.burst.replied)}
| peak: polled every 20 ms / VmHWM | ${f0(r.burst.usage.gatewayPeakRssMb)} / ${f0(r.burst.usage.gatewayHwmMb)} | | | |

![throughput and latency against offered load](bench/plot.svg)

## Accept path alone

XMPP unreachable (\`XMPP_PORT\` points at a closed port), so every post is spooled durably
and answered 202 at once. autocannon, ${a.connections} keep-alive connections, ${a.seconds} s against the
gateway; the same against a trivial node:http server that answers 202 and does nothing else
shows what the load generator itself can do on this machine.

| target | req/s | requests | latency p50 / p99 ms | replies | load generator cores | gateway cores |
| --- | ---: | ---: | --- | --- | ---: | ---: |
${httpRow("trivial node:http server (control)", a.trivial)}
${httpRow("gateway, spooling to SQLite", a.gateway, a.gatewayUsage.gatewayCores)}

Other processes used ${f2(a.gatewayUsage.otherCores)} cores during the gateway's run. Messages the spool gained during it: ${a.spooled === undefined ? "unknown" : f0(a.spooled)} (2xx replies: ${f0(a.gateway.ok2xx)}).
The benchmark's node:http client (used for the delivery phases) reached ${f0(a.posterRate)} req/s
against the trivial server with 32 connections.

## Start-up

Process start (\`spawn\`) → first \`/health\` 200 → first \`/ready\` 200 (logged in, room
joined), polled every 5 ms, each on a fresh spool: to /health ${r.startup.healthMs.map(f0).join(", ")} ms
(median ${f0(median(r.startup.healthMs))}); to /ready ${r.startup.readyMs.map(f0).join(", ")} ms (median ${f0(median(r.startup.readyMs))}).

## Machine and versions

- CPU: ${e.cpu}, ${e.cores} cores available; RAM ${e.ramGb} GB; ${e.kernel}
- Spools in the temp dir on ${e.tmpFs}: 4 KiB write + fsync ${f2(e.fsyncMs)} ms (median of 100)
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
global section (\`bench/run.ts\`); \`mod_limits\` is not loaded.

\`\`\`lua
${r.prosodyConfig.trim()}
\`\`\`

## Notes

${notes}

## History

One row per run of \`npm run bench\` (commit + = uncommitted changes).

| date (UTC) | commit | ceiling msg/s | gateway msg/s | ratio | p99 @50% ms | accept req/s | burst RSS MB | start-up ms | lost / dup | duration |
| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |
${historyRows.join("\n")}
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
  return [file, `${REPO}/bench/plot.svg`];
}
