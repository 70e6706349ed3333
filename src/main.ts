/**
 * Composition root of `serve`: load config → trust → logger → XMPP sessions →
 * delivery → HTTP; SIGTERM/SIGINT → ordered stop.
 */
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { Env } from "./config/env-file.ts";
import { type Config, loadConfig } from "./config/index.ts";
import { renderPost } from "./core/render/index.ts";
import { buildRouteTable } from "./core/routes.ts";
import { createDelivery } from "./delivery/index.ts";
import { buildApp } from "./http/app.ts";
import { createLogger } from "./log.ts";
import { createSessionPool, type SessionPool } from "./xmpp/pool.ts";
import { configureTrust } from "./xmpp/trust.ts";

/** A running gateway. */
export interface Gateway {
  readonly config: Config;
  readonly app: FastifyInstance;
  readonly pool: SessionPool;
  /** The address HTTP listens on, e.g. `http://127.0.0.1:10080`. */
  readonly url: string;
  stop(): Promise<void>;
}

/** Starts the gateway from an environment; throws ConfigError on a bad configuration. */
export async function startGateway(env: Env, opts: { log?: Logger } = {}): Promise<Gateway> {
  const config = loadConfig(env);
  configureTrust(config.xmpp.caFile);
  const log = opts.log ?? createLogger(config.logLevel);
  const xmppLog = log.child({ component: "xmpp" }, { level: config.xmpp.logLevel });
  const pool = createSessionPool({ settings: config.xmpp, routes: config.routes, log: xmppLog });
  const accept = createDelivery({
    sessions: pool.sessions,
    render: renderPost,
    waitMs: config.deliveryWaitMs,
    log,
  });
  const app = buildApp({ routes: buildRouteTable(config.routes), accept, log });
  const url = await app.listen({ host: config.http.host, port: config.http.port });
  log.info(
    { url, routes: config.routes.map((r) => r.name), jid: config.xmpp.jid },
    `listening on ${url}; ${config.routes.length} route(s)`,
  );
  await pool.start();
  return {
    config,
    app,
    pool,
    url,
    async stop() {
      await app.close();
      await pool.stop();
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
