/**
 * Sizes and durations of a run, and the benchmark's Prosody settings. The defaults make
 * the full run (`npm run bench`) stable and keep it under 10 minutes; the environment can
 * shrink it for development:
 *
 * - `BENCH_QUICK=1`: a smoke run of about a minute (small N everywhere, one repeat, a short
 *   long phase); implies `--no-write`, so that its figures never reach BENCHMARKS.md.
 * - `BENCH_N=<n>`: messages per closed-loop and all-at-once run (default 10,000).
 * - `BENCH_LONG_N=<n>`: messages of the long phase (default 200,000).
 * - `BENCH_REPORT_DIR=<dir>`: write BENCHMARKS.md and bench/plot.svg into <dir> instead of
 *   the repository, whatever the run's size (to try the report on a quick run).
 */

const quick = process.env.BENCH_QUICK === "1";
const int = (name: string, fallback: number) => {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 100) throw new Error(`${name} must be an integer ≥ 100: ${v}`);
  return n;
};

const N = int("BENCH_N", quick ? 1000 : 10_000);

/** The sizes a run uses. */
export const SIZES = {
  quick,
  /** Messages per closed-loop and all-at-once run. */
  n: N,
  /** Repeats of the minimal client's all-at-once run in the archived room (the ceiling). */
  repeats: quick ? 1 : 3,
  /** The same in the room without an archive, and for the library client (rows beside it). */
  mamOffRepeats: quick ? 1 : 2,
  libraryRepeats: 1,
  /** Gateway end-to-end repeats per mode (callers waiting, `?wait=0`). */
  e2eRepeats: quick ? 1 : 2,
  concurrency: 32,
  ratePcts: [25, 50, 75, 100, 125],
  rateSeconds: quick ? 2 : 5,
  burst: quick ? 2000 : 10_000,
  burstConnections: 256,
  acceptConnections: 64,
  acceptSeconds: quick ? 2 : 10,
  startups: quick ? 2 : 5,
  /** The long phase: this many messages at `longPct` % of the ceiling, open loop. */
  longN: int("BENCH_LONG_N", quick ? 10_000 : 200_000),
  longPct: 50,
  /** The whole run is abandoned (everything stopped) after this long. */
  budgetMs: 9.5 * 60_000,
} as const;

/** Whether the run writes BENCHMARKS.md and bench/plot.svg. */
export const WRITES = !quick && !process.argv.includes("--no-write");

/**
 * Appended to the harness's global section (later assignments win; Prosody warns about
 * the duplicate `log`). The harness logs every stanza at debug level, which no production
 * server does and which would make the server, not the gateway, slow. The room archive
 * keeps 10,000 messages by default, after which Prosody rewrites the whole archive every
 * 100 messages; a run sends more than that, so the cap is raised to keep every phase
 * under the same conditions. `mod_limits` (read throttling) is not loaded by the harness;
 * {@link checkProsodyConfig} makes sure of it.
 */
export const PROSODY_EXTRA = `-- Benchmark settings (bench/settings.ts)
gc = { mode = "generational" }
log = { { levels = { min = "info" }, to = "file", filename = "prosody.log" } }
storage_archive_item_limit = 10000000`;

/**
 * Room configuration (XEP-0045 §10.2) of the benchmark's second room, which the minimal
 * client creates: no archive (mod_muc_mam's own form field), and persistent so that it
 * outlives its creator's departure.
 */
export const NO_MAM_ROOM_CONFIG = {
  "muc#roomconfig_enablearchiving": "0",
  "muc#roomconfig_persistentroom": "1",
};

/** Throws if the generated config would not give the benchmark the server it expects. */
export function checkProsodyConfig(config: string): void {
  const enabled = config.match(/modules_enabled\s*=\s*\{[^}]*\}/g) ?? [];
  if (enabled.some((line) => /"limits"/.test(line))) {
    throw new Error("the Prosody config loads mod_limits; the benchmark needs it off");
  }
  if (!/gc = \{ mode = "generational" \}/.test(config)) {
    throw new Error("the Prosody config lacks the benchmark's generational GC setting");
  }
}
