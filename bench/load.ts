/**
 * Load generators: a closed loop (C keep-alive connections, each posting as soon as its
 * last reply came), an open loop (posts on a fixed schedule whatever the replies do, so
 * that a slow gateway cannot slow the offered load down), and autocannon for raw HTTP.
 */
import { Agent, request } from "node:http";
import autocannon from "autocannon";
import { nowMs } from "./proc.ts";
import { messageBody } from "./xmpp.ts";

/** Per-seq request bookkeeping, shared by every phase of a run. */
export interface Ledger {
  /** When the request for seq started (for the open loop: when it was scheduled to). */
  readonly start: Float64Array;
  /** Milliseconds from start to the end of the HTTP reply; NaN while unanswered. */
  readonly reply: Float64Array;
  /** Reply status per seq (0: connection error). */
  readonly status: Uint16Array;
}

export function createLedger(size: number): Ledger {
  return {
    start: new Float64Array(size),
    reply: new Float64Array(size).fill(Number.NaN),
    status: new Uint16Array(size),
  };
}

/** Posts message `seq` as text/plain to `url`; records in the ledger. */
export type Poster = (seq: number) => Promise<void>;

/** A poster over `sockets` keep-alive connections. */
export function createPoster(
  url: string,
  sockets: number,
  ledger: Ledger,
): {
  post: Poster;
  /** Like post, but the request counts as started at `scheduled` (open loop). */
  postAt: (seq: number, scheduled: number) => Promise<void>;
  close(): void;
} {
  const agent = new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  const u = new URL(url);
  const send = (seq: number, started: number) =>
    new Promise<void>((resolve) => {
      const body = messageBody(seq);
      ledger.start[seq] = started;
      const req = request(
        {
          host: u.hostname,
          port: u.port,
          path: u.pathname + u.search,
          method: "POST",
          agent,
          headers: { "content-type": "text/plain", "content-length": Buffer.byteLength(body) },
        },
        (res) => {
          res.resume();
          res.on("end", () => {
            ledger.reply[seq] = nowMs() - started;
            ledger.status[seq] = res.statusCode ?? 0;
            resolve();
          });
        },
      );
      req.on("error", () => {
        ledger.reply[seq] = nowMs() - started;
        ledger.status[seq] = 0;
        resolve();
      });
      req.end(body);
    });
  return {
    post: (seq) => send(seq, nowMs()),
    postAt: (seq, scheduled) => send(seq, scheduled),
    close: () => agent.destroy(),
  };
}

/** Posts seqs [from, from + n) with `concurrency` requests outstanding at any time. */
export async function closedLoop(post: Poster, from: number, n: number, concurrency: number) {
  let next = from;
  const end = from + n;
  const worker = async () => {
    while (next < end) await post(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/**
 * Posts seqs [from, from + n) at `rate` per second on a timer, never waiting for replies;
 * resolves when every reply is in. Returns how late the generator was against its own
 * schedule (p99 and max, ms): large values would mean the generator, not the gateway,
 * was the limit. Stops scheduling at `stopAt` (nowMs) if that comes first; `sent` says
 * how many were posted.
 */
export function openLoop(
  postAt: (seq: number, scheduled: number) => Promise<void>,
  from: number,
  n: number,
  rate: number,
  stopAt = Number.POSITIVE_INFINITY,
): Promise<{ lagP99: number; lagMax: number; sent: number }> {
  return new Promise((resolve) => {
    const interval = 1000 / rate;
    const t0 = nowMs() + 2;
    const lags = new Float64Array(n);
    const pending: Promise<void>[] = [];
    let i = 0;
    let end = n;
    const pump = () => {
      const now = nowMs();
      if (now > stopAt) end = i;
      while (i < end && t0 + i * interval <= now) {
        const scheduled = t0 + i * interval;
        lags[i] = now - scheduled;
        pending.push(postAt(from + i, scheduled));
        i++;
      }
      if (i < end) setTimeout(pump, 1);
      else
        void Promise.all(pending).then(() => {
          const sent = lags.subarray(0, end).sort();
          resolve({
            lagP99: sent[Math.floor(0.99 * (end - 1))] ?? 0,
            lagMax: sent[end - 1] ?? 0,
            sent: end,
          });
        });
    };
    setTimeout(pump, 1);
  });
}

/** What autocannon measured. */
export interface HttpRun {
  rps: number;
  total: number;
  ok2xx: number;
  non2xx: number;
  errors: number;
  latencyP50: number;
  latencyP99: number;
  statuses: Record<string, number>;
  /** CPU the benchmark process (autocannon) used, in cores (1.0 = one core busy). */
  loadGenCores: number;
}

/** autocannon against `url` with keep-alive connections, posting one text/plain message. */
export async function hammer(url: string, connections: number, seconds: number): Promise<HttpRun> {
  const cpu0 = process.cpuUsage();
  const t0 = nowMs();
  const r = await autocannon({
    url,
    method: "POST",
    connections,
    duration: seconds,
    headers: { "content-type": "text/plain" },
    body: messageBody(0),
  });
  const wall = nowMs() - t0;
  const cpu = process.cpuUsage(cpu0);
  const statuses: Record<string, number> = {};
  for (const [code, s] of Object.entries(r.statusCodeStats ?? {})) statuses[code] = s.count;
  return {
    rps: r.requests.total / r.duration,
    total: r.requests.total,
    ok2xx: r["2xx"],
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    latencyP50: r.latency.p50,
    latencyP99: r.latency.p99,
    statuses,
    loadGenCores: (cpu.user + cpu.system) / 1000 / wall,
  };
}
