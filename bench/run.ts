/**
 * `npm run bench`: the gateway against the XMPP server's own ceiling, on this machine, in
 * one run of under 10 minutes. A throwaway Prosody (generational GC, no mod_limits; its
 * configuration is printed), an observer in the rooms, the gateway as its own process;
 * writes BENCHMARKS.md and bench/plot.svg.
 *
 * The ceiling is the minimal client's (bench/minimal.ts: one hand-written TLS stream), in
 * the gateway's own archived room (MAM on); the same client in a room without an archive
 * (MAM off) and the library client (xmpp.js, as in the gateway) are rows beside it. Then
 * the gateway end to end, a burst, the accept path, start-up, and a long phase at 50% of
 * the ceiling for its memory. End to end and the accept path run once more with the
 * gateway on a PostgreSQL spool (issue 14), each right after its SQLite twin: one
 * throwaway PostgreSQL for the run (bench/postgres.ts), stopped at the end.
 *
 * `--no-write` runs everything but writes nothing (for experiments, e.g. with
 * `BENCH_GATEWAY_NODE_ARGS`); the history then keeps only real runs. `BENCH_QUICK=1` is a
 * smoke run of about a minute with small sizes (it never writes); `BENCH_N` and
 * `BENCH_LONG_N` set the run size and the long phase's (see bench/settings.ts);
 * `BENCH_REPORT_DIR=<dir>` writes the report into <dir> instead of the repository.
 * `--profile` instead runs the gateway under `--cpu-prof` through the end-to-end and
 * accept phases and prints where its CPU time goes (nothing is written).
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { acceptRun } from "./accept.ts";
import { createNoMamRoom, endCeiling, measureCeilings } from "./ceiling.ts";
import { describe, endToEnd } from "./e2e.ts";
import { environment } from "./environment.ts";
import { GATEWAY_NODE_ARGS, GW_USER } from "./gateway.ts";
import { createLedger } from "./load.ts";
import { burstRun, type Ctx, startupRuns } from "./phases.ts";
import {
  type BenchPostgres,
  commitsLine,
  postgresAccept,
  postgresEndToEnd,
  startBenchPostgres,
} from "./postgres.ts";
import { postgresSummary } from "./postgres-rows.ts";
import { killChildren, nowMs } from "./proc.ts";
import { profileRun } from "./profile.ts";
import { writeReport } from "./report.ts";
import {
  checkProsodyConfig,
  NO_MAM_ROOM_CONFIG,
  PROSODY_EXTRA,
  SIZES,
  WRITES,
} from "./settings.ts";
import { longRun } from "./soak.ts";
import { backgroundLoad } from "./stats.ts";
import { type Results, summaryLines } from "./targets.ts";
import { type Arrivals, MAX_SEQ, settingsFor, startObserver } from "./xmpp.ts";

const OBSERVER = { user: "observer", password: "observer-bench-pass" };
const SENDER = { user: "sender", password: "sender-bench-pass" };
/** Time kept after the long phase for the last ceiling run, the report and the clean-up. */
const END_RESERVE_MS = 30_000;

async function main(): Promise<void> {
  const profile = process.argv.includes("--profile");
  const t0 = nowMs();
  const say = (line: string) =>
    process.stdout.write(`[${((nowMs() - t0) / 1000).toFixed(1).padStart(5)} s] ${line}\n`);
  const watchdog = setTimeout(() => {
    process.stderr.write(
      `bench: over the ${SIZES.budgetMs / 60_000} min budget; stopping everything\n`,
    );
    killChildren();
    process.exit(2);
  }, SIZES.budgetMs);
  watchdog.unref();
  if (SIZES.quick) say("BENCH_QUICK=1: small sizes, nothing is written");
  // The gateway runs as deployed (the container image): compiled JavaScript from dist/.
  say("building dist/ (npm run build)");
  execFileSync(
    process.execPath,
    [
      new URL("../node_modules/typescript/bin/tsc", import.meta.url).pathname,
      "-p",
      "tsconfig.build.json",
    ],
    { cwd: new URL("..", import.meta.url).pathname, stdio: "inherit" },
  );
  // Interrupted: our children go first; Prosody's own exit hook (devserver) kills it.
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      killChildren();
      process.exit(130);
    });
  }

  let server: ProsodyServer | undefined;
  let arrivals: Arrivals | undefined;
  let postgres: BenchPostgres | undefined;
  try {
    const background = await backgroundLoad();
    say(
      `other processes keep ${background.toFixed(2)} cores busy${background > 0.25 ? ": expect noisy figures" : ""}; starting Prosody`,
    );
    server = await startProsody({ users: [GW_USER, OBSERVER, SENDER], extraConfig: PROSODY_EXTRA });
    const prosodyConfig = readFileSync(`${server.dir}/prosody.cfg.lua`, "utf8").replaceAll(
      server.dir,
      "<tmpdir>",
    );
    checkProsodyConfig(prosodyConfig);
    say("Prosody configuration (src/devserver/prosody.ts + bench/settings.ts):");
    for (const line of prosodyConfig.trim().split("\n")) process.stdout.write(`    ${line}\n`);
    if (!profile) {
      postgres = await startBenchPostgres();
      const p = postgres.info;
      say(
        `PostgreSQL ${p.version} on loopback TCP (${Object.entries(p.settings)
          .map(([k, v]) => `${k}=${v}`)
          .join(", ")})`,
      );
    }
    const env = await environment(server);
    const room = `bench@${server.mucDomain}`;
    const noMamRoom = `nomam@${server.mucDomain}`;
    const sender = settingsFor(server, SENDER.user, SENDER.password);
    await createNoMamRoom(sender, noMamRoom, NO_MAM_ROOM_CONFIG);
    arrivals = await startObserver(settingsFor(server, OBSERVER.user, OBSERVER.password), [
      room,
      noMamRoom,
    ]);
    let seq = 1;
    const ctx: Ctx = {
      server,
      room,
      noMamRoom,
      arrivals,
      database: postgres?.server,
      ledger: createLedger(MAX_SEQ),
      next(n) {
        if (seq + n > MAX_SEQ) throw new Error("out of sequence numbers");
        const from = seq;
        seq += n;
        return from;
      },
      say,
    };
    // --profile measures the gateway on SQLite only: no PostgreSQL was started for it.
    if (profile || postgres === undefined) {
      const o = { n: 4 * SIZES.n, concurrency: SIZES.concurrency };
      await profileRun(ctx, { ...o, acceptSeconds: SIZES.acceptSeconds });
      return;
    }

    const ceilings = await measureCeilings(ctx, sender);
    const ceiling = ceilings.value;

    say("gateway end to end (one gateway process)");
    const e2e = await endToEnd(ctx, ceiling);
    const complained = [...e2e.complaints];
    const complain = (lines: string[]) => complained.push(...lines);

    say("gateway end to end on PostgreSQL (a fresh database)");
    const pgE2e = await postgresEndToEnd(ctx, postgres);
    complain(pgE2e.complaints);

    say(`burst of ${SIZES.burst}`);
    const burst = await burstRun(ctx, SIZES.burst, SIZES.burstConnections, complain);
    say(
      `  RSS ${burst.before.rssMb.toFixed(0)} MB before, peak ${burst.usage.gatewayHwmMb.toFixed(0)} MB; ${describe(burst)}`,
    );

    say("accept path (XMPP unreachable)");
    const accept = await acceptRun(ctx, SIZES.acceptConnections, SIZES.acceptSeconds);
    say(
      `  ${accept.gateway.rps.toFixed(0)} req/s (trivial server: ${accept.trivial.rps.toFixed(0)} req/s)`,
    );

    say("accept path on PostgreSQL (XMPP unreachable, a fresh database)");
    const pgAccept = await postgresAccept(
      ctx,
      postgres,
      SIZES.acceptConnections,
      SIZES.acceptSeconds,
    );
    say(
      `  ${pgAccept.gateway.rps.toFixed(0)} req/s (SQLite: ${accept.gateway.rps.toFixed(0)} req/s); ${commitsLine(pgAccept.commits, pgAccept.gatewayUsage)}`,
    );

    say(`start-up ×${SIZES.startups}`);
    const startup = await startupRuns(ctx, SIZES.startups);
    say(`  to /ready: ${startup.readyMs.map((x) => x.toFixed(0)).join(", ")} ms`);

    const longRate = (ceiling * SIZES.longPct) / 100;
    say(
      `long phase: ${SIZES.longN} messages at ${SIZES.longPct}% of the ceiling (${longRate.toFixed(0)}/s, ~${(SIZES.longN / longRate).toFixed(0)} s)`,
    );
    // The long phase takes what is left of the budget, keeping enough for the end.
    const deadline = t0 + SIZES.budgetMs - END_RESERVE_MS;
    const long = await longRun(ctx, SIZES.longN, SIZES.longPct, ceiling, deadline, complain);
    say(
      `  RSS ${long.midRssMb.toFixed(0)} MB at half, ${long.endRssMb.toFixed(0)} MB at the end (fitted growth over the last half ${long.lastHalfGrowthMb.toFixed(1)} MB); ${describe(long)}`,
    );

    if (complained.length > 0) {
      say(`  the gateways logged ${complained.length} warning/error line(s), e.g.:`);
      for (const line of complained.slice(0, 3)) say(`    ${line.slice(0, 300)}`);
    }

    say("minimal client again, at the end");
    const end = await endCeiling(ctx, sender);
    say(`  ${end.delivery.throughput.toFixed(0)} msg/s`);

    const results: Results = {
      env,
      prosodyConfig,
      durationS: 0,
      ceilings,
      ceilingEnd: end,
      gatewayNodeArgs: GATEWAY_NODE_ARGS,
      background,
      complaints: complained,
      e2e,
      concurrency: SIZES.concurrency,
      rateSeconds: SIZES.rateSeconds,
      burst,
      accept,
      startup,
      long,
      postgres: { info: postgres.info, accept: pgAccept, e2e: pgE2e },
      unparsed: Atomics.load(arrivals.counters, 2),
    };
    results.durationS = (nowMs() - t0) / 1000;
    const summary = [...summaryLines(results), ...postgresSummary(results)];
    process.stdout.write(`${summary.join("\n")}\n`);
    const elsewhere = process.env.BENCH_REPORT_DIR;
    if (elsewhere) {
      say(`wrote ${writeReport(results, elsewhere).join(" and ")} (BENCH_REPORT_DIR)`);
    } else if (!WRITES) {
      say(`done in ${results.durationS.toFixed(0)} s; nothing written`);
    } else {
      const written = writeReport(results);
      say(`wrote ${written.join(" and ")} (${results.durationS.toFixed(0)} s in all)`);
    }
  } finally {
    await arrivals?.stop();
    await Promise.all([server?.stop(), postgres?.server.stop()]);
    killChildren();
    clearTimeout(watchdog);
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
    killChildren();
    process.exit(1);
  },
);
