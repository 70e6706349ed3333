/**
 * The one place where an error becomes an HTTP reply. Bodies keep the old gateway's
 * shape, `{"error":"<status> <reason>: <detail>"}`, which its users' scripts read.
 */
import { STATUS_CODES } from "node:http";
import { type ErrorCode, GatewayError } from "../core/errors.ts";
import { SUPPORTED_TYPES } from "./body.ts";

/** Status per stable error code. */
const STATUS: Record<ErrorCode, number> = {
  CONFIG_INVALID: 500,
  TOKEN_MISSING: 401,
  TOKEN_MISMATCH: 404,
  SIGNATURE_INVALID: 401,
  BAD_REQUEST: 400,
  UNSUPPORTED_MEDIA_TYPE: 415,
  PAYLOAD_TOO_LARGE: 413,
  URI_TOO_LONG: 414,
  HEADERS_TOO_LARGE: 431,
  REQUEST_TIMEOUT: 408,
  EXPECTATION_FAILED: 417,
  NOT_FOUND: 404,
  UNAVAILABLE: 503,
  SPOOL_FULL: 503,
  SHUTTING_DOWN: 503,
  RATE_LIMITED: 429,
  DELIVERY_REFUSED: 403,
  INTERNAL: 500,
};

/** Seconds a 503 or 429 asks the caller to wait when the error names no time of its own. */
export const DEFAULT_RETRY_AFTER = 5;

/** An HTTP reply: status, JSON body and extra headers. */
export interface ErrorReply {
  readonly status: number;
  readonly body: { error: string };
  readonly headers: Record<string, string>;
}

/** Turns Fastify's own errors (body parsing, limits, routing) into GatewayErrors. */
function fromFastify(
  err: { code?: string; message: string; statusCode?: number },
  limit: number,
): GatewayError {
  switch (err.code) {
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new GatewayError(
        "UNSUPPORTED_MEDIA_TYPE",
        `Content-Type not supported; use one of ${SUPPORTED_TYPES.join(", ")}`,
      );
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new GatewayError(
        "PAYLOAD_TOO_LARGE",
        `the body is larger than the limit of ${limit} bytes`,
      );
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new GatewayError("BAD_REQUEST", "the body is empty but Content-Type says JSON");
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return new GatewayError("BAD_REQUEST", "Content-Length does not match the body");
  }
  if (err.statusCode === 413) return new GatewayError("PAYLOAD_TOO_LARGE", err.message);
  if (err.statusCode === 415) return new GatewayError("UNSUPPORTED_MEDIA_TYPE", err.message);
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
    // Fastify's JSON parser reports syntax errors (with the position) and
    // prototype-poisoning attempts as 400s.
    return new GatewayError("BAD_REQUEST", err.message);
  }
  if (err.code?.startsWith("Z_") || err.code?.startsWith("ERR_BROTLI")) {
    // node:zlib errors are the caller's corrupt data (encoding.ts says which coding).
    return new GatewayError(
      "BAD_REQUEST",
      `the body is not valid compressed data (${err.message})`,
    );
  }
  return new GatewayError("INTERNAL", "internal error", { cause: err });
}

/** Maps any error to the reply the caller gets; 5xx only for the gateway's own trouble. */
export function toReply(err: unknown, bodyLimit = 1024 * 1024): ErrorReply {
  const g =
    err instanceof GatewayError
      ? err
      : fromFastify(err as { code?: string; message: string; statusCode?: number }, bodyLimit);
  const status = STATUS[g.code];
  const headers: Record<string, string> = {};
  // Every 503 and 429 says when to come back (RFC 9110 §10.2.3), whoever raised it.
  const retryAfter =
    g.retryAfter ?? (status === 503 || status === 429 ? DEFAULT_RETRY_AFTER : undefined);
  if (retryAfter !== undefined) headers["retry-after"] = String(retryAfter);
  if (g.code === "TOKEN_MISSING") headers["www-authenticate"] = 'Bearer realm="xmpp-msg-gw"';
  return { status, body: { error: `${status} ${STATUS_CODES[status]}: ${g.message}` }, headers };
}
