/**
 * Prometheus metrics (`GET /metrics`): the default process metrics plus the gateway's
 * own, labelled by route *name* (a token never becomes a label value), room and nick.
 * Each gateway has its own registry: several gateways can run in one process (tests),
 * and prom-client's global default registry would mix them or refuse duplicates.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { LoopObserver } from "./delivery/loop.ts";
import type { Readiness } from "./delivery/readiness.ts";
import type { CommitInfo } from "./spool/sqlite-open.ts";
import type { SpoolStats } from "./spool/types.ts";

/** Prefix of every gateway metric. */
export const PREFIX = "xmpp_msg_gw_";

/**
 * Delivery latency buckets in seconds: a room's reflection comes in milliseconds on a
 * LAN, a message held through an XMPP outage can wait minutes (5 ms … 5 min).
 */
export const LATENCY_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
];

/** A scrape: the exposition text and its content type. */
export interface Scrape {
  readonly contentType: string;
  readonly body: string;
}

/** The gateway's metrics and the hooks that feed them. */
export interface GatewayMetrics {
  /** Counts delivered, dead-lettered and retried messages and the delivery latency. */
  readonly observer: LoopObserver;
  /** Counts messages durably accepted (one per target and part) for a route. */
  accepted(route: string, count: number): void;
  /** Counts a new stream of `nick`'s session after a lost one. */
  reconnected(nick: string): void;
  /** Counts one answered post by route name ("" when no route matched) and status. */
  request(route: string, status: number): void;
  /** Counts one spool transaction: how many writes it carried and how long it took. */
  committed(info: CommitInfo): void;
  /** Counts a lease this gateway took: it sends as `account` now (several gateways). */
  tookOver(account: string): void;
  /** Counts a lease this gateway lost: another sends as `account` now. */
  lostLease(account: string): void;
  /** Renders every metric in the Prometheus text format. */
  scrape(): Promise<Scrape>;
}

/** Creates a registry with the gateway's metrics; gauges are read from `deps` at each scrape. */
export function createMetrics(deps: {
  stats: () => SpoolStats;
  readiness: () => Readiness;
  /** Configured route names: their series exist at 0 from the start, so rate() sees the first one. */
  routes?: readonly string[];
}): GatewayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const counter = (name: string, help: string, labelNames: string[]) =>
    new Counter({ name: PREFIX + name, help, labelNames, registers });

  const accepted = counter(
    "messages_accepted_total",
    "Messages durably accepted into the spool (one per target and part), by route.",
    ["route"],
  );
  const delivered = counter(
    "messages_delivered_total",
    "Messages confirmed by their room (reflection) or by the server (direct messages), by route.",
    ["route"],
  );
  const failed = counter(
    "messages_failed_total",
    "Messages dead-lettered: refused for good or not delivered within MESSAGE_TTL, by route.",
    ["route"],
  );
  const retries = counter(
    "messages_retries_total",
    "Sends that failed and will be retried with backoff, by route.",
    ["route"],
  );
  const latency = new Histogram({
    name: `${PREFIX}delivery_latency_seconds`,
    help: "Time from acceptance to confirmation of a delivered message, by route.",
    labelNames: ["route"],
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const reconnects = counter(
    "xmpp_reconnects_total",
    'New XMPP streams after a lost one, by sender nick ("" is the direct-message session).',
    ["nick"],
  );
  const requests = counter(
    "http_requests_total",
    'Answered posts, by route name ("" when the token matched no route) and HTTP status.',
    ["route", "status"],
  );

  const commits = counter(
    "spool_commits_total",
    "Spool transactions committed (each one fsync): posts and bookkeeping share them.",
    [],
  );
  const commitWrites = counter(
    "spool_commit_writes_total",
    "Spool writes (enqueues, confirmations, failures) carried by the committed transactions.",
    [],
  );
  const commitSeconds = counter(
    "spool_commit_seconds_total",
    "Time spent in spool transactions, fsync included (the event loop waits meanwhile).",
    [],
  );

  const takeovers = counter(
    "lease_takeovers_total",
    "Sender leases this gateway took (it began sending as the account), by account.",
    ["account"],
  );
  const leaseLosses = counter(
    "lease_losses_total",
    "Sender leases this gateway lost (another gateway sends as the account now), by account.",
    ["account"],
  );

  for (const route of deps.routes ?? []) {
    for (const c of [accepted, delivered, failed, retries]) c.inc({ route }, 0);
    latency.zero({ route });
  }

  // Gauges are read at scrape time: the spool and the sessions hold the truth.
  const spoolGauge = (name: string, help: string, pick: (s: SpoolStats) => number) =>
    new Gauge({
      name: PREFIX + name,
      help,
      registers,
      collect() {
        this.set(pick(deps.stats()));
      },
    });
  spoolGauge("queue_depth", "Messages in the spool waiting for confirmation.", (s) => s.messages);
  spoolGauge("queue_bytes", "Bytes of message text waiting in the spool.", (s) => s.bytes);
  spoolGauge("dead_letters", "Messages in the dead-letter table.", (s) => s.deadLetters);
  new Gauge({
    name: `${PREFIX}xmpp_session_up`,
    help: '1 while the sender session\'s XMPP stream is up, by nick ("" is the direct-message session).',
    labelNames: ["nick"],
    registers,
    collect() {
      this.reset(); // a session that is gone must not keep its last value
      for (const s of deps.readiness().sessions) this.set({ nick: s.nick }, s.online ? 1 : 0);
    },
  });
  new Gauge({
    name: `${PREFIX}room_joined`,
    help: "1 while the nick is an occupant of the room, by room and nick.",
    labelNames: ["room", "nick"],
    registers,
    collect() {
      this.reset();
      for (const s of deps.readiness().sessions) {
        for (const r of s.rooms)
          this.set({ room: r.room, nick: s.nick }, r.state === "joined" ? 1 : 0);
      }
    },
  });

  return {
    observer: {
      delivered(m, latencyMs) {
        delivered.inc({ route: m.route });
        latency.observe({ route: m.route }, Math.max(0, latencyMs) / 1000);
      },
      failed: (m) => failed.inc({ route: m.route }),
      retried: (m) => retries.inc({ route: m.route }),
    },
    accepted: (route, count) => accepted.inc({ route }, count),
    reconnected: (nick) => reconnects.inc({ nick }),
    request: (route, status) => requests.inc({ route, status: String(status) }),
    tookOver: (account) => takeovers.inc({ account }),
    lostLease: (account) => leaseLosses.inc({ account }),
    committed(info) {
      commits.inc();
      commitWrites.inc(info.operations);
      commitSeconds.inc(info.ms / 1000);
    },
    async scrape() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
