/**
 * From raw timestamps to figures: latency percentiles, per-phase delivery figures, and
 * the CPU and memory the processes used while a phase ran.
 */
import type { Ledger } from "./load.ts";
import { nowMs, procSample, rssSampler, systemCpu, treeCpuMs } from "./proc.ts";
import type { Arrivals } from "./xmpp.ts";

/** Percentiles in milliseconds. */
export interface Latency {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles of `values` (NaN entries ignored). */
export function latency(values: ArrayLike<number>): Latency {
  const v = Float64Array.from(values).filter((x) => !Number.isNaN(x));
  v.sort();
  const at = (q: number) => (v.length === 0 ? Number.NaN : (v[Math.ceil(q * v.length) - 1] ?? 0));
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: v[v.length - 1] ?? Number.NaN };
}

/** What a phase delivered, from the ledger (requests) and the observer (arrivals). */
export interface Delivery {
  n: number;
  arrived: number;
  lost: number;
  duplicates: number;
  /** Arrivals per second: n / (last arrival − first request start). */
  throughput: number;
  /** Replies per second: n / (last reply − first request start). */
  httpRate: number;
  /** Request start → arrival at the observer. */
  e2e: Latency;
  /** Request start → end of the HTTP reply. */
  reply: Latency;
  /** Reply status → count. */
  statuses: Record<string, number>;
}

/** Figures for seqs [from, from + n). */
export function delivery(ledger: Ledger, arrivals: Arrivals, from: number, n: number): Delivery {
  let first = Number.POSITIVE_INFINITY;
  let lastArrival = 0;
  let lastReply = 0;
  let arrived = 0;
  let duplicates = 0;
  const e2e = new Float64Array(n).fill(Number.NaN);
  const reply = new Float64Array(n).fill(Number.NaN);
  const statuses: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const seq = from + i;
    const start = ledger.start[seq] ?? 0;
    const at = arrivals.at[seq] ?? 0;
    if (start < first) first = start;
    if (at !== 0) {
      arrived++;
      e2e[i] = at - start;
      if (at > lastArrival) lastArrival = at;
    }
    duplicates += arrivals.dups[seq] ?? 0;
    const r = ledger.reply[seq] ?? Number.NaN;
    reply[i] = r;
    if (!Number.isNaN(r) && start + r > lastReply) lastReply = start + r;
    const s = String(ledger.status[seq] ?? 0);
    statuses[s] = (statuses[s] ?? 0) + 1;
  }
  return {
    n,
    arrived,
    lost: n - arrived,
    duplicates,
    throughput: arrived / ((lastArrival - first) / 1000),
    httpRate: n / ((lastReply - first) / 1000),
    e2e: latency(e2e),
    reply: latency(reply),
    statuses,
  };
}

/** CPU and memory over a phase. */
export interface Usage {
  wallS: number;
  /** Gateway CPU seconds (user + system) and cores (CPU seconds / wall seconds). */
  gatewayCpuS: number;
  gatewayCores: number;
  prosodyCores: number;
  /** The PostgreSQL server (postmaster and backends) when one runs; NaN otherwise. */
  databaseCores: number;
  /** This process: load generator, observer thread, bookkeeping. */
  benchCores: number;
  /**
   * Everything else busy on the machine meanwhile (other processes, the kernel's own
   * work), and the time the hypervisor stole: what makes a phase noisy.
   */
  otherCores: number;
  stealCores: number;
  /** Largest gateway RSS seen by polling during the phase, and its VmHWM at the end (MB). */
  gatewayPeakRssMb: number;
  gatewayHwmMb: number;
}

/**
 * Starts measuring; `stop()` returns the usage since. `database` is a postmaster's PID: its
 * process tree is counted apart, not among the "other" processes.
 */
export function meter(pids: { gateway?: number; prosody: number; database?: number }): {
  stop(): Usage;
} {
  const t0 = nowMs();
  const cpu0 = process.cpuUsage();
  const gw0 = pids.gateway === undefined ? undefined : procSample(pids.gateway);
  const pr0 = procSample(pids.prosody);
  const db0 = pids.database === undefined ? Number.NaN : treeCpuMs(pids.database);
  const sys0 = systemCpu();
  const rss = pids.gateway === undefined ? undefined : rssSampler(pids.gateway);
  return {
    stop() {
      const wallS = (nowMs() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const gw1 = pids.gateway === undefined ? undefined : procSample(pids.gateway);
      const pr1 = procSample(pids.prosody);
      const db1 = pids.database === undefined ? Number.NaN : treeCpuMs(pids.database);
      const sys1 = systemCpu();
      const gatewayCpuS = gw0 && gw1 ? (gw1.cpuMs - gw0.cpuMs) / 1000 : Number.NaN;
      const gatewayCores = gatewayCpuS / wallS;
      const prosodyCores = pr0 && pr1 ? (pr1.cpuMs - pr0.cpuMs) / 1000 / wallS : Number.NaN;
      const databaseCores = (db1 - db0) / 1000 / wallS;
      const benchCores = (cpu.user + cpu.system) / 1e6 / wallS;
      const busyCores = (sys1.busyMs - sys0.busyMs) / 1000 / wallS;
      const known = (x: number) => (Number.isNaN(x) ? 0 : x);
      const ours = known(gatewayCores) + prosodyCores + known(databaseCores) + benchCores;
      return {
        wallS,
        gatewayCpuS,
        gatewayCores,
        prosodyCores,
        databaseCores,
        benchCores,
        otherCores: Math.max(0, busyCores - ours),
        stealCores: (sys1.stealMs - sys0.stealMs) / 1000 / wallS,
        gatewayPeakRssMb: (rss?.stop() ?? Number.NaN) / 1024,
        gatewayHwmMb: (gw1?.hwmKb ?? Number.NaN) / 1024,
      };
    },
  };
}

/** Cores the rest of the machine keeps busy while this process sleeps for `ms`. */
export async function backgroundLoad(ms = 1000): Promise<number> {
  const t0 = nowMs();
  const sys0 = systemCpu();
  const cpu0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, ms));
  const cpu = process.cpuUsage(cpu0);
  const wallS = (nowMs() - t0) / 1000;
  const busy = (systemCpu().busyMs - sys0.busyMs) / 1000 / wallS;
  return Math.max(0, busy - (cpu.user + cpu.system) / 1e6 / wallS);
}
