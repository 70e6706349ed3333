// A clock the test moves by hand: timers fire in time order, only inside `advance`.
import type { Clock, Timer } from "../../src/core/clock.ts";

/** A manual clock and the timers scheduled on it. */
export interface FakeClock extends Clock {
  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void;
  /** Delays of the timers still pending, soonest first. */
  pending(): number[];
}

/** Creates a fake clock starting at `start` ms. */
export function fakeClock(start = 1_000_000): FakeClock {
  let now = start;
  let nextId = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimeout(fn, ms) {
      const id = ++nextId;
      timers.set(id, { at: now + Math.max(0, ms), fn });
      return { id } as Timer;
    },
    clearTimeout(timer) {
      if (timer !== undefined) timers.delete((timer as { id: number }).id);
    },
    advance(ms) {
      const end = now + ms;
      for (;;) {
        let due: [number, { at: number; fn: () => void }] | undefined;
        for (const entry of timers)
          if (entry[1].at <= end && (!due || entry[1].at < due[1].at)) due = entry;
        if (!due) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].fn();
      }
      now = end;
    },
    pending: () => [...timers.values()].map((t) => t.at - now).sort((a, b) => a - b),
  };
}
