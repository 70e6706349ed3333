/**
 * Time, passed in: the delivery loop and the XMPP liveness checks take a clock, so that
 * tests drive backoff and time-outs exactly (STYLE rule 5).
 */

/** A timer handle, opaque to its users. */
export type Timer = { readonly __timer: true } | object;

/** The clock every time-dependent decision reads and schedules with. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs `fn` once after `ms`; the timer never keeps the process alive. */
  setTimeout(fn: () => void, ms: number): Timer;
  /** Cancels a timer; undefined and fired timers are ignored. */
  clearTimeout(timer: Timer | undefined): void;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout(timer) {
    if (timer !== undefined) clearTimeout(timer as NodeJS.Timeout);
  },
};
