/**
 * What is refused before any route runs gets the gateway's one reply shape too: the
 * router's own errors (a bad percent-encoding, an over-long path segment), what Node's
 * HTTP server rejects on the raw socket (not HTTP, headers too large, too slow, an
 * unknown `Expect`), a missing `Host`, and posts that arrive while the app closes.
 * Everything here goes through Fastify's and Node's public options and events.
 */
import { maxHeaderSize, STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type {
  ConnectionError,
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
} from "fastify";
import type { Logger } from "pino";
import { GatewayError } from "../core/errors.ts";
import { type ErrorReply, toReply } from "./errors.ts";

/** Longest path segment the router takes: `/post/<token>` with tokens up to this long. */
export const MAX_PATH_SEGMENT = 1024;

const BEARER = "send it as Authorization: Bearer <token> to POST /post";

/** The error for one of the router's own refusals (Fastify's `frameworkErrors`). */
export function fromFramework(err: { code?: string }): GatewayError {
  switch (err.code) {
    case "FST_ERR_BAD_URL":
      return new GatewayError(
        "BAD_REQUEST",
        `the URL is not valid: a % must start a percent-encoded byte such as %2F; percent-encode the token, or ${BEARER}`,
      );
    case "FST_ERR_MAX_PARAM_LENGTH":
      return new GatewayError(
        "URI_TOO_LONG",
        `a path segment is longer than ${MAX_PATH_SEGMENT} characters; for a longer token, ${BEARER}`,
      );
  }
  return new GatewayError("INTERNAL", "internal error", { cause: err });
}

/** The error for what Node's HTTP server refused on the socket (its `clientError`). */
export function fromClientError(
  err: { code?: string; reason?: unknown },
  requestTimeoutMs: number,
): GatewayError {
  switch (err.code) {
    case "HPE_HEADER_OVERFLOW":
      return new GatewayError(
        "HEADERS_TOO_LARGE",
        `the request line and headers are larger than ${maxHeaderSize} bytes; send fewer or shorter headers`,
      );
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return new GatewayError(
        "REQUEST_TIMEOUT",
        `the request was not complete within ${requestTimeoutMs / 1000} s; send it without pauses`,
      );
    case "HPE_CHUNK_EXTENSIONS_OVERFLOW":
      return new GatewayError(
        "PAYLOAD_TOO_LARGE",
        "the chunk extensions are too large; send plain chunks",
      );
  }
  // llhttp's reasons are fixed texts ("Invalid header value char"); anything else is left out.
  const reason =
    typeof err.reason === "string" && /^[\w ,.'-]{1,80}$/.test(err.reason) ? `: ${err.reason}` : "";
  return new GatewayError(
    "BAD_REQUEST",
    `the request is not valid HTTP/1.1 (${err.code ?? "parse error"}${reason}); check the client or proxy that sent it`,
  );
}

/** The reply as bytes for a raw socket, where no Fastify reply exists. */
function rawReply(r: ErrorReply): string {
  const body = JSON.stringify(r.body);
  const extra = Object.entries(r.headers).map(([k, v]) => `${k}: ${v}\r\n`);
  return (
    `HTTP/1.1 ${r.status} ${STATUS_CODES[r.status]}\r\n` +
    "content-type: application/json; charset=utf-8\r\n" +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n${extra.join("")}\r\n${body}`
  );
}

/** The Fastify options that give the router's and the server's refusals the gateway's shape. */
export function edgeOptions(log: Logger, requestTimeoutMs: number) {
  return {
    routerOptions: { maxParamLength: MAX_PATH_SEGMENT },
    // The 503 Fastify writes while closing has its own shape and no Retry-After;
    // `registerEdge` answers those posts instead.
    return503OnClosing: false,
    // Node answers a Host-less HTTP/1.1 request with an empty 400; `registerEdge` says why.
    http: { requireHostHeader: false },
    frameworkErrors(err: FastifyError, req: FastifyRequest, reply: FastifyReply) {
      // The error's message quotes the URL, token included: never logged, never echoed.
      const r = toReply(fromFramework(err));
      if (r.status >= 500) req.log.error({ reqId: req.id, code: err.code }, r.body.error);
      reply.code(r.status).headers(r.headers).send(r.body);
    },
    clientErrorHandler(err: ConnectionError, socket: Socket) {
      // As Fastify's default: a reset or destroyed socket has nobody to answer.
      if (err.code === "ECONNRESET" || socket.destroyed) return;
      const r = toReply(fromClientError(err, requestTimeoutMs));
      // Only the code: `err.rawPacket` holds the bytes read, the path's token included.
      log.debug({ code: err.code, status: r.status }, `client error: ${r.body.error}`);
      if (socket.writable) socket.write(rawReply(r));
      socket.destroy(err);
    },
  };
}

/** Hooks and listeners that complete {@link edgeOptions}; call before any other hook. */
export function registerEdge(app: FastifyInstance): void {
  let closing = false;
  app.addHook("preClose", async () => {
    closing = true;
  });
  app.addHook("onRequest", async (req, reply) => {
    if (closing)
      throw new GatewayError("SHUTTING_DOWN", "the gateway is shutting down; retry shortly");
    // RFC 9112 §3.2: an HTTP/1.1 request without Host is answered 400 (and, as Node
    // does, the connection closed).
    if (req.raw.httpVersion === "1.1" && req.headers.host === undefined) {
      reply.header("connection", "close");
      throw new GatewayError("BAD_REQUEST", "an HTTP/1.1 request needs a Host header");
    }
  });
  // RFC 9110 §10.1.1: an expectation the server cannot meet is a 417.
  app.server.on("checkExpectation", (_req, res) => {
    const r = toReply(
      new GatewayError(
        "EXPECTATION_FAILED",
        "only Expect: 100-continue is supported; drop the Expect header",
      ),
    );
    const body = JSON.stringify(r.body);
    // The body the client holds back is never read: close rather than parse it as a request.
    res.writeHead(r.status, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(body),
      connection: "close",
      ...r.headers,
    });
    res.end(body);
  });
}
