/**
 * The capacity check every spool makes before it takes a post, so that each backend
 * refuses with the same words (the 503 a caller sees).
 */
import { GatewayError } from "../core/errors.ts";
import type { SpoolLimits } from "./types.ts";

/** Seconds a caller is told to wait when the spool is full. */
export const SPOOL_FULL_RETRY_AFTER = 30;

/**
 * The SPOOL_FULL error for a post of `want` on top of `held` (committed and reserved),
 * or undefined when it fits.
 */
export function spoolFull(
  limits: SpoolLimits,
  held: { readonly messages: number; readonly bytes: number },
  want: { readonly messages: number; readonly bytes: number },
): GatewayError | undefined {
  const full =
    held.messages + want.messages > limits.maxMessages
      ? `${held.messages} messages wait for delivery, the limit is ${limits.maxMessages}`
      : held.bytes + want.bytes > limits.maxBytes
        ? `${held.bytes} bytes wait for delivery, this post has ${want.bytes}, the limit is ${limits.maxBytes} bytes`
        : undefined;
  return full === undefined
    ? undefined
    : new GatewayError("SPOOL_FULL", `the spool is full: ${full}`, {
        retryAfter: SPOOL_FULL_RETRY_AFTER,
      });
}
