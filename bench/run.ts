/**
 * `npm run bench`: the gateway against the XMPP server's own ceiling, on this machine, in
 * one run. A throwaway Prosody (generational GC, no mod_limits), an observer in the room,
 * the gateway as its own process; writes BENCHMARKS.md and bench/plot.svg.
 *
 * `npm run bench -- --profile` instead runs the gateway under `--cpu-prof` through the
 * end-to-end and accept phases and prints where its CPU time goes (nothing is written).
 * `--no-write` runs everything but writes nothing (for experiments, e.g. with
 * `BENCH_GATEWAY_NODE_ARGS`); the history then keeps only real runs.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { environment } from "./environment.ts";
import { complaints, GATEWAY_NODE_ARGS, GW_USER, startGateway } from "./gateway.ts";
import { createLedger } from "./load.ts";
import {
  acceptRun,
  burstRun,
  type Ctx,
  ceilingRateRun,
  ceilingRun,
  closedRun,
  type RateRun,
  type Run,
  rateRun,
  startupRuns,
  warmUp,
} from "./phases.ts";
import { killChildren, nowMs, sleep } from "./proc.ts";
import { profileRun } from "./profile.ts";
import { type Results, writeReport } from "./report.ts";
import { backgroundLoad } from "./stats.ts";
import { type Arrivals, joinedClient, MAX_SEQ, settingsFor, startObserver } from "./xmpp.ts";

/** Sizes and durations: small enough for a few minutes, large enough to be stable. */
const N = 10_000;
const REPEATS = 3;
const CONCURRENCY = 32;
const RATE_PCTS = [25, 50, 75, 100, 125];
const RATE_SECONDS = 6;
const BURST = 10_000;
const BURST_CONNECTIONS = 256;
const ACCEPT_CONNECTIONS = 64;
const ACCEPT_SECONDS = 10;
const STARTUPS = 5;
/** The whole run is abandoned (everything stopped) after this long. */
const BUDGET_MS = 9.5 * 60_000;

const OBSERVER = { user: "observer", password: "observer-bench-pass" };
const SENDER = { user: "sender", password: "sender-bench-pass" };

/**
 * Appended to the harness's global section (later assignments win; Prosody warns about
 * the duplicate `log`). The harness logs every stanza at debug level, which no production
 * server does and which would make the server, not the gateway, slow. The room archive
 * keeps 10,000 messages by default, after which Prosody rewrites the whole archive every
 * 100 messages; a run sends more than that, so the cap is raised to keep every phase
 * under the same conditions.
 */
export const PROSODY_EXTRA = `-- Benchmark settings (bench/run.ts)
gc = { mode = "generational" }
log = { { levels = { min = "info" }, to = "file", filename = "prosody.log" } }
storage_archive_item_limit = 10000000`;

async function main(): Promise<void> {
  const profile = process.argv.includes("--profile");
  const t0 = nowMs();
  const say = (line: string) =>
    process.stdout.write(`[${((nowMs() - t0) / 1000).toFixed(1).padStart(5)} s] ${line}\n`);
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench: over the ${BUDGET_MS / 60_000} min budget; stopping everything\n`);
    killChildren();
    process.exit(2);
  }, BUDGET_MS);
  watchdog.unref();
  // The gateway runs as deployed (the container image): compiled JavaScript from dist/.
  say("building dist/ (npm run build)");
  execFileSync(
    process.execPath,
    [
      new URL("../node_modules/typescript/bin/tsc", import.meta.url).pathname,
      "-p",
      "tsconfig.build.json",
    ],
    {
      cwd: new URL("..", import.meta.url).pathname,
      stdio: "inherit",
    },
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
  try {
    const background = await backgroundLoad();
    say(
      `other processes keep ${background.toFixed(2)} cores busy${background > 0.25 ? ": expect noisy figures" : ""}; starting Prosody`,
    );
    server = await startProsody({ users: [GW_USER, OBSERVER, SENDER], extraConfig: PROSODY_EXTRA });
    const prosodyConfig = readFileSync(`${server.dir}/prosody.cfg.lua`, "utf8");
    const env = await environment(server);
    const room = `bench@${server.mucDomain}`;
    arrivals = await startObserver(settingsFor(server, OBSERVER.user, OBSERVER.password), room);
    let seq = 1;
    const ctx: Ctx = {
      server,
      room,
      arrivals,
      ledger: createLedger(MAX_SEQ),
      next(n) {
        if (seq + n > MAX_SEQ) throw new Error("out of sequence numbers");
        const from = seq;
        seq += n;
        return from;
      },
      say,
    };
    if (profile) {
      await profileRun(ctx, { n: 4 * N, concurrency: CONCURRENCY, acceptSeconds: ACCEPT_SECONDS });
      return;
    }

    say(`ceiling: a plain client sends ${N} messages into the room, all at once, ×${REPEATS}`);
    const sender = await joinedClient(
      settingsFor(server, SENDER.user, SENDER.password),
      room,
      "sender",
    );
    await ceilingRun(ctx, sender, 500); // warm-up
    const ceilingRuns = [];
    for (let i = 0; i < REPEATS; i++) ceilingRuns.push(await ceilingRun(ctx, sender, N));
    say(`  ${ceilingRuns.map((r) => r.delivery.throughput.toFixed(0)).join(", ")} msg/s`);
    const windowed = await ceilingRun(ctx, sender, N, CONCURRENCY);
    say(`  with ${CONCURRENCY} in flight: ${windowed.delivery.throughput.toFixed(0)} msg/s`);
    const ceiling = Math.max(...[...ceilingRuns, windowed].map((r) => r.delivery.throughput));
    const serverRates = [];
    for (const pct of RATE_PCTS) {
      await sleep(300);
      const r = await ceilingRateRun(ctx, sender, pct, ceiling, RATE_SECONDS);
      serverRates.push(r);
      say(`  plain client, open loop ${pct}%: ${describeRate(r)}`);
    }
    await sender.stop();

    say("gateway end to end");
    const gw = await startGateway({ server, room, ready: true });
    const complained: string[] = [];
    const e2e = [];
    const rates = [];
    let waiting: Awaited<ReturnType<typeof closedRun>>;
    try {
      await warmUp(ctx, gw);
      for (let i = 0; i < REPEATS; i++) {
        e2e.push(await closedRun(ctx, gw, N, CONCURRENCY, "?wait=0"));
        const d = e2e[e2e.length - 1]?.delivery;
        say(
          `  ${d?.throughput.toFixed(0)} msg/s, p99 ${d?.e2e.p99.toFixed(1)} ms, lost ${d?.lost}`,
        );
      }
      waiting = await closedRun(ctx, gw, N / 2, CONCURRENCY, "");
      say(`  waiting for delivery: ${describe(waiting)}`);
      for (const pct of RATE_PCTS) {
        await sleep(500);
        const r = await rateRun(ctx, gw, pct, ceiling, RATE_SECONDS);
        rates.push(r);
        say(`  gateway, open loop ${pct}%: ${describeRate(r)}`);
      }
    } finally {
      await gw.stop();
      complained.push(...complaints(gw));
    }

    say(`burst of ${BURST}`);
    const burst = await burstRun(ctx, BURST, BURST_CONNECTIONS, (lines) =>
      complained.push(...lines),
    );
    if (complained.length > 0) {
      say(`  the gateways logged ${complained.length} warning/error line(s), e.g.:`);
      for (const line of complained.slice(0, 3)) say(`    ${line.slice(0, 300)}`);
    }
    say(
      `  RSS ${burst.before.rssMb.toFixed(0)} MB before, peak ${burst.usage.gatewayHwmMb.toFixed(0)} MB; ` +
        `${describe(burst)}`,
    );

    say("accept path (XMPP unreachable)");
    const accept = await acceptRun(ctx, ACCEPT_CONNECTIONS, ACCEPT_SECONDS);
    say(
      `  ${accept.gateway.rps.toFixed(0)} req/s (trivial server: ${accept.trivial.rps.toFixed(0)} req/s)`,
    );

    say(`start-up ×${STARTUPS}`);
    const startup = await startupRuns(ctx, STARTUPS);
    say(`  to /ready: ${startup.readyMs.map((x) => x.toFixed(0)).join(", ")} ms`);

    say("ceiling again, at the end");
    const sender2 = await joinedClient(
      settingsFor(server, SENDER.user, SENDER.password),
      room,
      "sender",
    );
    const ceilingEnd = await ceilingRun(ctx, sender2, N);
    await sender2.stop();
    say(`  ${ceilingEnd.delivery.throughput.toFixed(0)} msg/s`);

    const results: Results = {
      env,
      prosodyConfig: prosodyConfig.replaceAll(server.dir, "<tmpdir>"),
      durationS: 0,
      ceiling: {
        runs: ceilingRuns,
        windowed,
        end: ceilingEnd,
        value: ceiling,
        window: CONCURRENCY,
        rates: serverRates,
      },
      gatewayNodeArgs: GATEWAY_NODE_ARGS,
      background,
      complaints: complained,
      e2e,
      concurrency: CONCURRENCY,
      waiting,
      rates,
      rateSeconds: RATE_SECONDS,
      burst,
      accept,
      startup,
      unparsed: Atomics.load(arrivals.counters, 2),
    };
    results.durationS = (nowMs() - t0) / 1000;
    if (process.argv.includes("--no-write")) {
      say(`done in ${results.durationS.toFixed(0)} s; --no-write: nothing written`);
    } else {
      const written = writeReport(results);
      say(`wrote ${written.join(" and ")} (${results.durationS.toFixed(0)} s in all)`);
    }
  } finally {
    await arrivals?.stop();
    await server?.stop();
    killChildren();
    clearTimeout(watchdog);
  }
}

function describe(r: Run | undefined): string {
  if (!r) return "";
  const d = r.delivery;
  return (
    `${d.throughput.toFixed(0)} msg/s delivered, p50 ${d.e2e.p50.toFixed(1)} ms, ` +
    `p99 ${d.e2e.p99.toFixed(1)} ms, lost ${d.lost}; others used ${r.usage.otherCores.toFixed(2)} cores`
  );
}

function describeRate(r: RateRun): string {
  return `${r.offered.toFixed(0)}/s offered, ${describe(r)}`;
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
    killChildren();
    process.exit(1);
  },
);
