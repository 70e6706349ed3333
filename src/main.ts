/**
 * Composition root of `serve`: load config → trust → logger → spool → XMPP sessions →
 * delivery loop → HTTP. SIGTERM/SIGINT → stop accepting (503), let in-flight messages
 * be confirmed for a grace period, leave the rooms, close the stream and the spool.
 */
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { Env } from "./config/env-file.ts";
import { type Config, loadConfig } from "./config/index.ts";
import type { BackoffOptions } from "./core/backoff.ts";
import { systemClock } from "./core/clock.ts";
import { renderPost } from "./core/render/index.ts";
import { accountsOf, createSwappableRouteTable, roomPasswords, topologyOf } from "./core/routes.ts";
import { messageByteLimit } from "./core/split.ts";
import { createAccept, createPreview, type Preparation } from "./delivery/accept.ts";
import { createLeadership } from "./delivery/leadership.ts";
import { createDeliveryLoop, type DeliveryLoop } from "./delivery/loop.ts";
import { settled } from "./delivery/readiness.ts";
import { buildApp } from "./http/app.ts";
import { listenError } from "./listen-error.ts";
import { createLogger } from "./log.ts";
import { createMetrics } from "./metrics.ts";
import { spoolFull } from "./spool/limits.ts";
import { openLeases, openSpoolForServe } from "./spool/open.ts";
import type { Spool } from "./spool/types.ts";
import { createXmppCarrier, type XmppCarrier } from "./xmpp/carrier.ts";
import { DEFAULT_LIVENESS } from "./xmpp/stream.ts";
import { configureTrust } from "./xmpp/trust.ts";

/** A running gateway. */
export interface Gateway {
  readonly config: Config;
  readonly app: FastifyInstance;
  readonly carrier: XmppCarrier;
  readonly spool: Spool;
  readonly loop: DeliveryLoop;
  /** The address HTTP listens on, e.g. `http://127.0.0.1:10080`. */
  readonly url: string;
  /**
   * Reloads routes and templates from `env` (SIGHUP) without dropping the XMPP sessions:
   * new rooms are joined, new nicks get sessions. A bad configuration throws ConfigError
   * and the running one stays. Returns the settings that only a restart can change.
   */
  reload(env: Env): { routes: number; needRestart: string[] };
  /** Ordered, graceful stop; resolves when everything is closed. */
  stop(): Promise<void>;
}

/** Parts of the configuration a reload cannot change in a running gateway. */
const RESTART_ONLY: Array<[string, (c: Config) => unknown]> = [
  ["XMPP account and server", (c) => c.xmpp],
  ["HTTP address and proxy trust", (c) => c.http],
  ["DATA_DIR and SPOOL_URL", (c) => [c.dataDir, c.spoolUrl]],
  ["spool limits", (c) => c.spool],
  ["message and body limits", (c) => c.limits],
  ["LOG_LEVEL", (c) => c.logLevel],
  ["GLOBAL_RATE_LIMIT_*", (c) => c.globalRateLimit],
  ["DELIVERY_WAIT_MS", (c) => c.deliveryWaitMs],
  ["MESSAGE_TTL", (c) => c.messageTtlMs],
  ["SHUTDOWN_GRACE_MS", (c) => c.shutdownGraceMs],
];

/** Faster reconnects and liveness checks, for tests. */
export interface TestTiming {
  /** Reconnect and rejoin backoff (default: 1 s doubling to 60 s). */
  readonly backoff: BackoffOptions;
  readonly random?: () => number;
  /** Silence after which the server is pinged. */
  readonly pingIntervalMs: number;
  /** Further silence after which the stream is dead. */
  readonly pingTimeoutMs: number;
}

/** Test seams: a logger and faster XMPP timing. */
export interface GatewayOptions {
  log?: Logger;
  timing?: TestTiming;
  selfPingMs?: number;
}

/** Longest wait at start-up for the first logins and joins. */
const START_WAIT_MS = 15_000;

/** How often the spool is scanned for work that arrived from elsewhere (`spool retry`). */
const SCAN_INTERVAL_MS = 5000;
/** The same with several gateways on one spool: posts a standby took wait for this at most. */
const SHARED_SCAN_INTERVAL_MS = 500;

/**
 * Longest wait, after the grace period, for leaving the rooms and closing the streams. A
 * polite close waits for the server's own `</stream>`, which a frozen or unreachable
 * server never sends (xmpp.js would wait 2 × its 10 s timeout); `serve` exits anyway.
 */
const XMPP_CLOSE_MS = 2000;

/** Starts the gateway from an environment; throws ConfigError on a bad configuration. */
export async function startGateway(env: Env, opts: GatewayOptions = {}): Promise<Gateway> {
  const config = loadConfig(env);
  configureTrust(config.xmpp.caFile);
  const log = opts.log ?? createLogger(config.logLevel);
  const xmppLog = log.child({ component: "xmpp" }, { level: config.xmpp.logLevel });
  const spool = await openSpoolForServe(config, {
    onCommit: (info) => metrics.committed(info),
    log,
    clock: systemClock,
  });
  // Read at scrape time only, when the loop exists.
  const metrics = createMetrics({
    stats: () => spool.stats(),
    readiness: () => loop.readiness(),
    routes: config.routes.map((r) => r.name),
  });
  const topology = topologyOf(config.routes);
  // A nick keeps the account it started with; a reload that changes it needs a restart.
  const accounts = accountsOf(config.routes);
  const carrier = createXmppCarrier({
    settings: config.xmpp,
    nicks: topology.keys(),
    passwords: roomPasswords(config.routes),
    accounts,
    log: xmppLog,
    clock: systemClock,
    liveness: opts.timing && {
      ...DEFAULT_LIVENESS,
      idleMs: opts.timing.pingIntervalMs,
      timeoutMs: opts.timing.pingTimeoutMs,
    },
    selfPingMs: opts.selfPingMs,
  });
  const accountOf = (nick: string) => accounts.get(nick)?.jid ?? config.xmpp.jid;
  // Several gateways on one PostgreSQL spool: one sender per account, by lease (issue 14).
  const leases = await openLeases(config, { ttlMs: config.leaseTtlMs });
  const leadership = leases
    ? createLeadership({
        store: leases,
        accounts: [...new Set([...topology.keys()].map(accountOf))],
        ttlMs: config.leaseTtlMs,
        clock: systemClock,
        log,
      })
    : undefined;
  if (leadership) {
    leadership.on("acquired", metrics.tookOver);
    leadership.on("lost", metrics.lostLease);
  }
  const loop: DeliveryLoop = createDeliveryLoop({
    spool,
    carrier,
    topology,
    log,
    accountOf,
    ...(leadership && { leadership }),
    ttlMs: config.messageTtlMs,
    backoff: opts.timing?.backoff,
    random: opts.timing?.random,
    observer: { ...metrics.observer, reconnected: metrics.reconnected },
  });
  let shuttingDown = false;
  const preparation: Preparation = {
    render: renderPost,
    // MAX_MESSAGE_BYTES, lowered to the smallest stanza limit a server advertises (XEP-0478).
    maxMessageBytes: () => messageByteLimit(config.limits.maxMessageBytes, loop.stanzaLimits()),
    maxMessageParts: config.limits.maxMessageParts,
    dedupeWindowMs: config.dedupeWindowMs,
    now: Date.now,
  };
  const accept = createAccept({
    ...preparation,
    spool,
    loop,
    waitMs: config.deliveryWaitMs,
    isShuttingDown: () => shuttingDown,
    onAccepted: metrics.accepted,
  });
  const table = createSwappableRouteTable(config.routes);
  const app = buildApp({
    routes: table,
    accept,
    preview: createPreview({ ...preparation, spool }),
    log,
    bodyLimit: config.limits.maxBodyBytes,
    trustProxy: config.http.trustProxy,
    globalRateLimit: config.globalRateLimit,
    // Not ready while the spool cannot be written: every post would get a 503.
    // Not ready while the spool cannot take a post (cannot be written, or full): every
    // post would get a 503, and a load balancer should send it elsewhere.
    readiness: () => {
      const r = loop.readiness();
      const health = spool.health();
      const stats = spool.stats();
      const full = spoolFull(config.spool, stats, { messages: 1, bytes: 1 });
      return {
        ...r,
        ready: r.ready && health.writable && full === undefined,
        spool: { ...stats, ...health, ...(full && { full: full.message }) },
      };
    },
    metrics: metrics.scrape,
    onPostAnswered: metrics.request,
  });
  const url = await app
    .listen({ host: config.http.host, port: config.http.port })
    .catch(async (err: unknown) => {
      // Nothing has started yet: close what was opened, say which setting to change.
      await Promise.allSettled([app.close(), carrier.close(0), spool.close()]);
      throw listenError(err, config.http.host, config.http.port);
    });
  const backlog = spool.stats();
  log.info(
    {
      url,
      routes: config.routes.map((r) => r.name),
      jid: config.xmpp.jid,
      spooled: backlog.messages,
    },
    `listening on ${url}; ${config.routes.length} route(s); ${backlog.messages} message(s) waiting in the spool`,
  );
  loop.start();
  leadership?.start(); // its first round connects the accounts it takes
  // Like the old gateway, start-up returns once the first logins and joins are settled
  // (bounded: a server that is down does not hold the HTTP side, which listens already).
  const startBy = Date.now() + START_WAIT_MS;
  // With several gateways: first learn which accounts this one sends as.
  if (leadership) {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise((r) => {
      timer = setTimeout(r, START_WAIT_MS);
    });
    await Promise.race([leadership.firstRound(), late]);
    clearTimeout(timer);
  }
  while (!settled(loop.readiness()) && Date.now() < startBy) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const scan = () =>
    loop.scan().catch((err) => log.error({ err }, "spool: looking for queued work failed"));
  scan();
  const scanner = setInterval(scan, leadership ? SHARED_SCAN_INTERVAL_MS : SCAN_INTERVAL_MS);
  scanner.unref();
  return {
    config,
    app,
    carrier,
    spool,
    loop,
    url,
    reload(next) {
      const fresh = loadConfig(next);
      table.swap(fresh.routes);
      const more = topologyOf(fresh.routes);
      // Nicks with a session keep their account; new nicks take theirs from the reload.
      const fresher = accountsOf(fresh.routes);
      const moved = [...more.keys()].filter(
        (nick) =>
          carrier.sessions.has(nick) &&
          JSON.stringify(accounts.get(nick)) !== JSON.stringify(fresher.get(nick)),
      );
      for (const [nick, account] of fresher)
        if (!carrier.sessions.has(nick)) accounts.set(nick, account);
      carrier.extend(more.keys(), roomPasswords(fresh.routes), accounts);
      loop.extend(more);
      const needRestart = RESTART_ONLY.filter(
        ([, part]) => JSON.stringify(part(fresh)) !== JSON.stringify(part(config)),
      ).map(([name]) => name);
      if (moved.length > 0) needRestart.push(`the XMPP account of nick ${moved.join(", ")}`);
      log.info(
        { routes: fresh.routes.map((r) => r.name), needRestart },
        `configuration reloaded: ${fresh.routes.length} route(s)${needRestart.length ? `; restart to apply: ${needRestart.join(", ")}` : ""}`,
      );
      return { routes: fresh.routes.length, needRestart };
    },
    async stop() {
      shuttingDown = true;
      clearInterval(scanner);
      const inFlight = loop.inFlight();
      if (inFlight > 0)
        log.info(
          { inFlight },
          `waiting up to ${config.shutdownGraceMs} ms for ${inFlight} confirmation(s)`,
        );
      await loop.drain(config.shutdownGraceMs);
      await app.close();
      // Bounded: a frozen server never sends its `</stream>`.
      await carrier.close(XMPP_CLOSE_MS);
      // Only now, with nothing in flight: a standby takes over at once, not after the TTL.
      await leadership?.stop();
      await leases?.close();
      await spool.close(); // flushes the writes still queued
      const left = spool.stats().messages;
      log.info(
        { spooled: left },
        `stopped; ${left} message(s) stay in the spool for the next start`,
      );
    },
  };
}

/**
 * `serve`: runs until SIGTERM or SIGINT, then stops in order and exits 0. SIGHUP reloads
 * routes and templates from `loadEnv()` (the environment and its files read anew). The
 * signal handlers are in place before the settings are read (bin/xmpp-msg-gw.js covers
 * the module loading before); a signal during start-up acts once the gateway is up.
 */
export async function serve(loadEnv: () => Env): Promise<void> {
  let gateway: Gateway | undefined;
  let stopping = false;
  let stopRequested: string | undefined;
  const log = () => gateway?.app.log;
  const shutdown = (signal: string) => {
    if (!gateway) {
      stopRequested = signal; // still starting: stop as soon as it is up
      return;
    }
    if (stopping) return;
    stopping = true;
    log()?.info({ signal }, "stopping");
    gateway.stop().then(
      () => process.exit(0),
      (err) => {
        log()?.error({ err }, "error while stopping");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  let reloadRequested = false;
  const reload = () => {
    // Starting: the settings were read before this signal; read them again once up.
    if (!gateway) {
      reloadRequested = true;
      return;
    }
    try {
      gateway.reload(loadEnv());
    } catch (err) {
      log()?.error(
        { err: (err as Error).message },
        `reload refused, the running configuration stays: ${(err as Error).message}`,
      );
    }
  };
  process.on("SIGHUP", reload);
  // The last line of defence: a bug must not leave a half-alive process. Log it, close
  // the spool (everything acknowledged is already durable), exit non-zero for the
  // supervisor (systemd, Docker) to restart the gateway. No test triggers this.
  const crash = (err: unknown) => {
    const l = log();
    if (l) l.fatal({ err }, `unexpected error, exiting: ${(err as Error)?.message ?? err}`);
    else process.stderr.write(`xmpp-msg-gw: unexpected error, exiting: ${String(err)}\n`);
    const closing = gateway?.spool.close() ?? Promise.resolve();
    const timer = setTimeout(() => process.exit(70), 2000);
    closing.finally(() => {
      clearTimeout(timer);
      process.exit(70);
    });
  };
  process.on("uncaughtException", crash);
  process.on("unhandledRejection", crash);
  gateway = await startGateway(loadEnv());
  if (stopRequested) shutdown(stopRequested);
  else if (reloadRequested) reload();
}
