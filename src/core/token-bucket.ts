/**
 * A token bucket (rate limit): `burst` requests at once, refilled at `perMinute`. Pure:
 * the caller passes the clock reading, so tests are exact.
 */
import type { RateLimit } from "./routes.ts";

/** One bucket. */
export interface TokenBucket {
  /** Takes a token at time `nowMs`: 0 when allowed, else the seconds until one is free. */
  take(nowMs: number): number;
}

/** Creates a full bucket. */
export function createTokenBucket(limit: RateLimit, nowMs: number): TokenBucket {
  const perMs = limit.perMinute / 60_000;
  let tokens = limit.burst;
  let last = nowMs;
  return {
    take(now) {
      tokens = Math.min(limit.burst, tokens + Math.max(0, now - last) * perMs);
      last = Math.max(last, now);
      if (tokens >= 1) {
        tokens -= 1;
        return 0;
      }
      return Math.max(1, Math.ceil((1 - tokens) / perMs / 1000));
    },
  };
}
