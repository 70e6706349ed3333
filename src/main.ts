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
import { buildRouteTable } from "./core/routes.ts";
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
  /** Ordered, graceful stop; resolves when everything is closed. */
  stop(): Promise<void>;
}

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
  const app = buildApp({
    routes: buildRouteTable(config.routes),
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
      const left = spool.stats().messages;
      await spool.close();
      log.info(
        { spooled: left },
        `stopped; ${left} message(s) stay in the spool for the next start`,
      );
    },
  };
}

/** `serve`: runs until SIGTERM or SIGINT, then stops in order and exits 0. */
export async function serve(env: Env): Promise<void> {
  const gateway = await startGateway(env);
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
}
