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
import type { Accepted, PostBody } from "../core/post.ts";
import type { Route, RouteTable } from "../core/routes.ts";
import { readMultipart, registerBodyParsers } from "./body.ts";
import { toReply } from "./errors.ts";

/** What the app needs from the rest of the gateway. */
export interface AppDeps {
  readonly routes: RouteTable;
  /** Renders and delivers one post; resolves once it is accepted (delivered or queued). */
  accept(route: Route, body: PostBody, opts: { wait: boolean }): Promise<Accepted>;
  readonly log: Logger;
  /** `/ready`: whether every session is online and every room joined, with details. */
  readiness?(): { ready: boolean };
  /** Largest request body accepted, in bytes. */
  readonly bodyLimit?: number;
}

declare module "fastify" {
  interface FastifyRequest {
    gwRoute: Route | undefined;
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

/** Builds the Fastify app (not listening). */
export function buildApp(deps: AppDeps): FastifyInstance {
  const bodyLimit = deps.bodyLimit ?? 1024 * 1024;
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    // Fastify's request lines carry the URL, and the URL carries the token.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    // Slow clients must not hold sockets for ever.
    requestTimeout: 30_000,
    connectionTimeout: 60_000,
    return503OnClosing: true,
  });
  app.decorateRequest("gwRoute", undefined);
  registerBodyParsers(app, bodyLimit);

  // Authenticate before the body is read: an unknown caller gets 404, not a parse error.
  app.addHook("onRequest", async (req) => {
    if (!req.url.startsWith("/post")) return;
    const token = tokenOf(req);
    if (token === undefined) {
      throw new GatewayError(
        "TOKEN_MISSING",
        "no token: post to /post/<token>, or send Authorization: Bearer <token>",
      );
    }
    req.gwRoute = deps.routes.match(token);
    if (!req.gwRoute) throw new GatewayError("TOKEN_MISMATCH", "Token mismatch");
  });

  app.addHook("onResponse", async (req, reply) => {
    req.log.info(
      {
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
    if (r.status >= 500) req.log.error({ err, route: req.gwRoute?.name }, r.body.error);
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
    const body: PostBody = req.isMultipart()
      ? { kind: "json", value: await readMultipart(req) }
      : ((req.body as PostBody | undefined) ?? { kind: "text", text: "" });
    const query = req.query as { wait?: string };
    const accepted = await deps.accept(route, body, { wait: query.wait !== "0" });
    reply.code(accepted.status === "delivered" ? 200 : 202);
    return { success: true, id: accepted.id, status: accepted.status };
  };
  const postOpts = {
    handler: post,
  };
  app.post("/post/:token", postOpts);
  app.post("/post", postOpts);
  app.get("/health", async () => ({ status: "ok" }));
  app.get("/ready", async (_req, reply) => {
    const r = deps.readiness?.() ?? { ready: true };
    return reply.code(r.ready ? 200 : 503).send(r);
  });
  return app;
}
