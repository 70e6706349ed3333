/**
 * Jittered exponential backoff ("full jitter"): pure, with the random source passed in
 * so that tests are exact.
 */

/** Backoff parameters, in milliseconds. */
export interface BackoffOptions {
  readonly baseMs: number;
  readonly maxMs: number;
}

/** The default: 1 s doubling up to one minute. */
export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 1000, maxMs: 60_000 };

/** Delay before retry number `attempt` (0-based): uniform in [cap/2, cap], cap = min(max, base·2^attempt). */
export function backoffDelay(
  attempt: number,
  random: () => number,
  opts: BackoffOptions = DEFAULT_BACKOFF,
): number {
  const cap = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(cap / 2 + (random() * cap) / 2);
}
