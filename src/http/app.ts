/**
 * The HTTP edge: `POST /post/:token` (and `POST /post` with the token in an
 * Authorization header). `buildApp` returns an app that does not listen; tests use
 * `inject()` or `listen({ port: 0 })`.
 */
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from "fastify";
import type { Logger } from "pino";
import { GatewayError } from "../core/errors.ts";
import { verifySignature } from "../core/hmac.ts";
import type { Accepted, AcceptOptions, PostBody, Preview } from "../core/post.ts";
import type { RateLimit, Route, RouteTable } from "../core/routes.ts";
import { createTokenBucket, type TokenBucket } from "../core/token-bucket.ts";
import { postBodyOf, registerBodyParsers } from "./body.ts";
import { edgeOptions, registerEdge } from "./edge.ts";
import { DEFAULT_RETRY_AFTER, toReply } from "./errors.ts";

export type { Preview } from "../core/post.ts";

/** What the app needs from the rest of the gateway. */
export interface AppDeps {
  readonly routes: RouteTable;
  /** Renders and delivers one post; resolves once it is accepted (delivered or queued). */
  accept(route: Route, body: PostBody, opts: AcceptOptions): Promise<Accepted>;
  /** Renders one post without sending it (`?dry_run=1`). */
  preview?(route: Route, body: PostBody, idempotencyKey?: string): Promise<Preview>;
  /** One bucket over every post, known token or not (token guessing included). */
  readonly globalRateLimit?: RateLimit;
  /** The clock, for rate limits and signature timestamps. */
  readonly now?: () => number;
  readonly log: Logger;
  /** `/ready`: whether every session is online and every room joined, with details. */
  readiness?(): { ready: boolean };
  /** Largest request body accepted, in bytes. */
  readonly bodyLimit?: number;
  /** Proxies whose X-Forwarded-For names the client (`TRUST_PROXY`); none by default. */
  readonly trustProxy?: readonly string[];
  /** `/metrics`: the Prometheus exposition text and its content type. */
  metrics?(): Promise<{ contentType: string; body: string }>;
  /** Told of every answered post, by route name ("" when no route matched) and status. */
  onPostAnswered?(route: string, status: number): void;
}

declare module "fastify" {
  interface FastifyRequest {
    gwRoute: Route | undefined;
    /** The body as received, for signature checks. */
    rawBody: Buffer | undefined;
  }
}

/** Reads the token from the path, a Bearer header, or the password of Basic auth. */
export function tokenOf(req: FastifyRequest): string | undefined {
  const fromPath = (req.params as { token?: string }).token;
  if (fromPath) return fromPath;
  const auth = req.headers.authorization ?? "";
  const [scheme = "", value = ""] = auth.split(/\s+/, 2);
  if (scheme.toLowerCase() === "bearer" && value) return value;
  if (scheme.toLowerCase() === "basic" && value) {
    const decoded = Buffer.from(value, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    return colon >= 0 ? decoded.slice(colon + 1) : undefined;
  }
  return undefined;
}

/** The longest `Idempotency-Key` taken (Stripe's and the IETF draft's keys are far shorter). */
const MAX_IDEMPOTENCY_KEY = 255;

/**
 * The `Idempotency-Key` header (draft-ietf-httpapi-idempotency-key-header): a post that
 * repeats one on the same route within DEDUPE_WINDOW sends nothing and gets the first
 * one's reply. Quotes of the draft's structured-field string are taken off.
 */
export function idempotencyKeyOf(req: FastifyRequest): string | undefined {
  const raw = req.headers["idempotency-key"];
  if (raw === undefined) return undefined;
  const value = (Array.isArray(raw) ? raw.join(",") : raw).trim();
  const key = /^"(.*)"$/.exec(value)?.[1] ?? value;
  if (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY || !/^[\x21-\x7e ]+$/.test(key)) {
    throw new GatewayError(
      "BAD_REQUEST",
      `Idempotency-Key must be 1 to ${MAX_IDEMPOTENCY_KEY} printable ASCII characters, e.g. a UUID (got ${JSON.stringify(value.slice(0, 40))}${value.length > 40 ? "…" : ""})`,
    );
  }
  return key;
}

/** How long a client may take to send one whole request. */
const REQUEST_TIMEOUT_MS = 30_000;

/** Builds the Fastify app (not listening). */
export function buildApp(deps: AppDeps): FastifyInstance {
  const bodyLimit = deps.bodyLimit ?? 1024 * 1024;
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    // Fastify's request lines carry the URL, and the URL carries the token.
    logController: new LogController({ disableRequestLogging: true }),
    // No child logger per request (pino runs the redaction over its bindings: 3% of the
    // accept path): req.log is the app's logger, and our lines name the request themselves.
    childLoggerFactory: (logger) => logger,
    bodyLimit,
    // Slow clients must not hold sockets for ever.
    requestTimeout: REQUEST_TIMEOUT_MS,
    connectionTimeout: 60_000,
    // Router and server refusals (bad URL, 414, 431, not HTTP, closing) in the one shape.
    ...edgeOptions(deps.log, REQUEST_TIMEOUT_MS),
    // req.ip (the request log's `remote`) follows X-Forwarded-For only through these.
    trustProxy: deps.trustProxy?.length ? [...deps.trustProxy] : false,
  });
  registerEdge(app);
  app.decorateRequest("gwRoute", undefined);
  app.decorateRequest("rawBody", undefined);
  const now = deps.now ?? Date.now;
  const global = deps.globalRateLimit ? createTokenBucket(deps.globalRateLimit, now()) : undefined;
  const buckets = new Map<string, TokenBucket>();
  const limited = (bucket: TokenBucket | undefined, what: string) => {
    const wait = bucket?.take(now()) ?? 0;
    if (wait > 0)
      throw new GatewayError("RATE_LIMITED", `${what}; retry in ${wait} s`, { retryAfter: wait });
  };
  registerBodyParsers(app, bodyLimit);

  // Authenticate before the body is read: an unknown caller gets 404, not a parse error.
  app.addHook("onRequest", async (req) => {
    // Only the post routes take tokens; anything else (GET /post/…) is a plain 404.
    if (req.method !== "POST" || !req.routeOptions.url?.startsWith("/post")) return;
    limited(global, "too many posts to this gateway");
    const token = tokenOf(req);
    if (token === undefined) {
      throw new GatewayError(
        "TOKEN_MISSING",
        "no token: post to /post/<token>, or send Authorization: Bearer <token>",
      );
    }
    req.gwRoute = deps.routes.match(token);
    if (!req.gwRoute) throw new GatewayError("TOKEN_MISMATCH", "Token mismatch");
    const { name, rateLimit } = req.gwRoute;
    if (rateLimit && !buckets.has(name)) buckets.set(name, createTokenBucket(rateLimit, now()));
    limited(
      buckets.get(name),
      `too many posts for route ${name} (at most ${rateLimit?.perMinute} a minute)`,
    );
  });

  // Grafana signs its webhooks: a route with a secret takes only signed bodies.
  app.addHook("preHandler", async (req) => {
    const check = req.gwRoute?.hmac;
    if (!check) return;
    if (req.isMultipart())
      throw new GatewayError(
        "SIGNATURE_INVALID",
        "signed routes take JSON, form or text bodies, not multipart",
      );
    const result = verifySignature(check, req.rawBody ?? Buffer.alloc(0), req.headers, now());
    if (!result.ok) throw new GatewayError("SIGNATURE_INVALID", result.reason);
  });

  app.addHook("onResponse", async (req, reply) => {
    if (req.url.startsWith("/post"))
      deps.onPostAnswered?.(req.gwRoute?.name ?? "", reply.statusCode);
    req.log.info(
      {
        reqId: req.id,
        method: req.method,
        path: req.routeOptions.url ?? "(no route)",
        route: req.gwRoute?.name,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
        remote: req.ip,
      },
      "request",
    );
  });

  app.setErrorHandler((err, req, reply) => {
    const r = toReply(err, bodyLimit);
    // A 500 is the gateway's own bug; a 503 (spool full, shutting down) is its state.
    const at = { reqId: req.id, route: req.gwRoute?.name };
    if (r.status === 500) req.log.error({ err, ...at }, r.body.error);
    else if (r.status >= 500) req.log.warn(at, r.body.error);
    return reply.code(r.status).headers(r.headers).send(r.body);
  });
  app.setNotFoundHandler((req, reply) => {
    const r = toReply(
      new GatewayError(
        "NOT_FOUND",
        `no such endpoint: ${req.method} ${req.url.replace(/^\/post\/[^/?]+/, "/post/…")}`,
      ),
    );
    return reply.code(r.status).send(r.body);
  });

  const post = async (req: FastifyRequest, reply: FastifyReply) => {
    const route = req.gwRoute as Route;
    const idempotencyKey = idempotencyKeyOf(req);
    const body = postBodyOf(req);
    const query = req.query as { wait?: string; dry_run?: string };
    if (query.dry_run === "1" || query.dry_run === "true") {
      if (!deps.preview) throw new GatewayError("NOT_FOUND", "dry runs are not available here");
      const preview = await deps.preview(route, body, idempotencyKey);
      return { success: true, dry_run: true, route: route.name, ...preview };
    }
    const accepted = await deps.accept(route, body, { wait: query.wait !== "0", idempotencyKey });
    reply.code(accepted.status === "delivered" ? 200 : 202);
    const repeat = accepted.duplicate && { duplicate: true };
    return { success: true, id: accepted.id, status: accepted.status, ...repeat };
  };
  const postOpts = {
    handler: post,
  };
  app.post("/post/:token", postOpts);
  app.post("/post", postOpts);
  app.get("/health", async () => ({ status: "ok" }));
  app.get("/ready", async (_req, reply) => {
    const r = deps.readiness?.() ?? { ready: true };
    if (!r.ready) reply.header("retry-after", String(DEFAULT_RETRY_AFTER));
    return reply.code(r.ready ? 200 : 503).send(r);
  });
  if (deps.metrics) {
    const scrape = deps.metrics;
    app.get("/metrics", async (_req, reply) => {
      const { contentType, body } = await scrape();
      return reply.type(contentType).send(body);
    });
  }
  return app;
}
