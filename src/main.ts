/**
 * Composition root of `serve`: load config → trust → logger → spool → XMPP sessions →
 * delivery loop → HTTP. SIGTERM/SIGINT → stop accepting (503), let in-flight messages
 * be confirmed for a grace period, leave the rooms, close the stream and the spool.
 */
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { Env } from "./config/env-file.ts";
import { type Config, loadConfig } from "./config/index.ts";
import { renderPost } from "./core/render/index.ts";
import { createSwappableRouteTable } from "./core/routes.ts";
import { messageByteLimit } from "./core/split.ts";
import { createAccept, createPreview, type Preparation } from "./delivery/accept.ts";
import { createDeliveryLoop, type DeliveryLoop } from "./delivery/loop.ts";
import { buildApp } from "./http/app.ts";
import { createLogger } from "./log.ts";
import { createMetrics } from "./metrics.ts";
import { openSqliteSpool, spoolPath } from "./spool/sqlite.ts";
import type { Spool } from "./spool/types.ts";
import type { ConnectionTiming } from "./xmpp/connection.ts";
import { createSessionPool, type SessionPool } from "./xmpp/pool.ts";
import { configureTrust } from "./xmpp/trust.ts";

/** A running gateway. */
export interface Gateway {
  readonly config: Config;
  readonly app: FastifyInstance;
  readonly pool: SessionPool;
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
  ["DATA_DIR", (c) => c.dataDir],
  ["spool limits", (c) => c.spool],
  ["message and body limits", (c) => c.limits],
  ["LOG_LEVEL", (c) => c.logLevel],
  ["GLOBAL_RATE_LIMIT_*", (c) => c.globalRateLimit],
  ["DELIVERY_WAIT_MS", (c) => c.deliveryWaitMs],
  ["MESSAGE_TTL", (c) => c.messageTtlMs],
  ["SHUTDOWN_GRACE_MS", (c) => c.shutdownGraceMs],
];

/** Test seams: a logger and faster XMPP timing. */
export interface GatewayOptions {
  log?: Logger;
  timing?: ConnectionTiming;
  selfPingMs?: number;
}

/** How often the spool is scanned for work that arrived from elsewhere (`spool retry`). */
const SCAN_INTERVAL_MS = 5000;

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
  const spool = openSqliteSpool({ path: spoolPath(config.dataDir), limits: config.spool });
  // Read at scrape time only, when the pool exists.
  const metrics = createMetrics({
    stats: () => spool.stats(),
    readiness: () => pool.readiness(),
    routes: config.routes.map((r) => r.name),
  });
  let loop: DeliveryLoop | undefined;
  const pool = createSessionPool({
    settings: config.xmpp,
    routes: config.routes,
    log: xmppLog,
    timing: opts.timing,
    selfPingMs: opts.selfPingMs,
    unconfirmed: (room, nick) => loop?.unconfirmed({ room, nick }),
    onReconnect: metrics.reconnected,
  });
  loop = createDeliveryLoop({
    spool,
    sessions: pool.sessions,
    log,
    ttlMs: config.messageTtlMs,
    observer: metrics.observer,
  });
  let shuttingDown = false;
  const preparation: Preparation = {
    render: renderPost,
    // MAX_MESSAGE_BYTES, lowered to the smallest stanza limit a server advertises (XEP-0478).
    maxMessageBytes: () =>
      messageByteLimit(
        config.limits.maxMessageBytes,
        [...pool.sessions.values()].map((s) => s.maxStanzaBytes),
      ),
    maxMessageParts: config.limits.maxMessageParts,
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
    preview: createPreview(preparation),
    log,
    bodyLimit: config.limits.maxBodyBytes,
    trustProxy: config.http.trustProxy,
    globalRateLimit: config.globalRateLimit,
    readiness: () => ({ ...pool.readiness(), spool: spool.stats() }),
    metrics: metrics.scrape,
    onPostAnswered: metrics.request,
  });
  const url = await app.listen({ host: config.http.host, port: config.http.port });
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
  await pool.start();
  loop.scan();
  const scanner = setInterval(() => loop.scan(), SCAN_INTERVAL_MS);
  scanner.unref();
  return {
    config,
    app,
    pool,
    spool,
    loop,
    url,
    reload(next) {
      const fresh = loadConfig(next);
      table.swap(fresh.routes);
      for (const session of pool.extend(fresh.routes)) loop.watch(session);
      const needRestart = RESTART_ONLY.filter(
        ([, part]) => JSON.stringify(part(fresh)) !== JSON.stringify(part(config)),
      ).map(([name]) => name);
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
      let closeTimer: NodeJS.Timeout | undefined;
      const closed = await Promise.race([
        pool.stop().then(() => true),
        new Promise<false>((resolve) => {
          closeTimer = setTimeout(() => resolve(false), XMPP_CLOSE_MS);
        }),
      ]);
      clearTimeout(closeTimer);
      if (!closed)
        log.warn(
          `the XMPP server did not answer the close within ${XMPP_CLOSE_MS} ms; not waiting for it`,
        );
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
 * routes and templates from `loadEnv()` (the environment and its files read anew).
 */
export async function serve(loadEnv: () => Env): Promise<void> {
  const gateway = await startGateway(loadEnv());
  const log = gateway.app.log;
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping");
    gateway.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, "error while stopping");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGHUP", () => {
    try {
      gateway.reload(loadEnv());
    } catch (err) {
      log.error(
        { err: (err as Error).message },
        `reload refused, the running configuration stays: ${(err as Error).message}`,
      );
    }
  });
}
