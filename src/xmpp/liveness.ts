/**
 * How a stream tells it is alive (XEP-0199 pings after silence), and how long an open may
 * take; injectable so tests can be fast and exact.
 */

/** How a stream tells it is alive, injectable so tests can be fast and exact. */
export interface Liveness {
  /** Silence after which the server is pinged (XEP-0199). */
  readonly idleMs: number;
  /** Further silence after which the stream is taken for dead. */
  readonly timeoutMs: number;
  /**
   * The slowest rate a server reads at (ejabberd's `normal` shaper: 1,000 B/s): bytes
   * written and not yet answered extend the allowance, so a stream that is busy
   * sending a large message under a shaper is not cut.
   */
  readonly minBytesPerSecond: number;
  /** Longest wait from connect to ready. */
  readonly openTimeoutMs: number;
}

/** Defaults: ping after 30 s of silence, dead 20 s later (plus the bytes' allowance). */
export const DEFAULT_LIVENESS: Liveness = {
  idleMs: 30_000,
  timeoutMs: 20_000,
  minBytesPerSecond: 1000,
  openTimeoutMs: 30_000,
};

/**
 * True when a stream silent for `silentMs` is taken for dead: the allowance is the idle
 * time, the ping's time-out, and the time the slowest server takes to read what was
 * written since the server last said anything (`unansweredBytes` at `minBytesPerSecond`).
 */
export function isSilentTooLong(
  s: { silentMs: number; unansweredBytes: number },
  live: Liveness,
): boolean {
  const allowance =
    live.idleMs + live.timeoutMs + (s.unansweredBytes * 1000) / live.minBytesPerSecond;
  return s.silentMs > allowance;
}
