/**
 * The one error type of the gateway. Every failure that can reach a caller or an
 * operator carries a stable `code`; `http/errors.ts` maps codes to replies in one place.
 */

/** Stable error codes; the HTTP mapping and the tests key on these, never on messages. */
export type ErrorCode =
  | "CONFIG_INVALID"
  | "TOKEN_MISSING"
  | "TOKEN_MISMATCH"
  | "SIGNATURE_INVALID"
  | "BAD_REQUEST"
  | "UNSUPPORTED_MEDIA_TYPE"
  | "PAYLOAD_TOO_LARGE"
  | "URI_TOO_LONG"
  | "HEADERS_TOO_LARGE"
  | "REQUEST_TIMEOUT"
  | "EXPECTATION_FAILED"
  | "NOT_FOUND"
  | "UNAVAILABLE"
  | "SPOOL_FULL"
  | "SHUTTING_DOWN"
  | "RATE_LIMITED"
  | "DELIVERY_REFUSED"
  | "INTERNAL";

/** An error with a stable code, an optional retry hint and whether retrying can help. */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  /** Seconds after which a retry may succeed (for 429/503 `Retry-After`). */
  readonly retryAfter: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { retryAfter?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = "GatewayError";
    this.code = code;
    this.retryAfter = opts.retryAfter;
  }
}

/** True when `err` is a GatewayError with the given code. */
export function isCode(err: unknown, code: ErrorCode): boolean {
  return err instanceof GatewayError && err.code === code;
}

/**
 * Why one message could not be delivered, as classified by the XMPP adapter: the
 * delivery loop alone decides what to do about it (retry later, or dead-letter).
 */
export class DeliveryError extends Error {
  /** True when retrying cannot help (RFC 6120 §8.3.2 types cancel, auth, modify). */
  readonly permanent: boolean;
  /** The stanza error condition, e.g. `forbidden`, or `connection-lost`. */
  readonly condition: string;

  constructor(message: string, opts: { permanent: boolean; condition: string }) {
    super(message);
    this.name = "DeliveryError";
    this.permanent = opts.permanent;
    this.condition = opts.condition;
  }
}

/**
 * RFC 6120 §8.3.2: `wait` means try again later; `cancel`, `auth` and `modify` mean
 * this stanza will not succeed as it is. `not-acceptable` from a room means we are no
 * longer an occupant (XEP-0410 §3), which rejoining fixes: retryable.
 */
export function isPermanentStanzaError(type: string, condition: string): boolean {
  if (condition === "not-acceptable" || condition === "remote-server-timeout") return false;
  return type === "cancel" || type === "auth" || type === "modify";
}
