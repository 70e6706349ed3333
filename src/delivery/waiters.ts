/**
 * The requests waiting for their messages' outcomes: registered before the enqueue, so
 * that no outcome can be missed, and settled by the loop.
 */
import type { Clock, Timer } from "../core/clock.ts";

/** How one message ended, as far as a waiting request is concerned. */
export type Outcome = { status: "delivered" } | { status: "failed"; reason: string };

/** What the HTTP side learns within its wait. */
export type WaitResult =
  | { status: "delivered" }
  | { status: "queued" }
  | { status: "failed"; reasons: string[]; delivered: number };

/** The waiting requests. */
export interface Waiters {
  /** Waits up to `ms` for every id to be delivered or fail; `cancel` if the enqueue fails. */
  waitFor(ids: readonly string[], ms: number): { result: Promise<WaitResult>; cancel(): void };
  /** Tells whoever waits for `id` how it ended. */
  settle(id: string, outcome: Outcome): void;
}

/** Creates the registry of waiting requests. */
export function createWaiters(clock: Clock): Waiters {
  const waiters = new Map<string, Set<(o: Outcome) => void>>();
  return {
    settle(id, outcome) {
      const ws = waiters.get(id);
      if (!ws) return;
      waiters.delete(id);
      for (const w of ws) w(outcome);
    },
    waitFor(ids, ms) {
      const outcomes = new Map<string, Outcome>();
      const registered: Array<[string, (o: Outcome) => void]> = [];
      let timer: Timer | undefined;
      const unregister = () => {
        clock.clearTimeout(timer);
        for (const [id, w] of registered) waiters.get(id)?.delete(w);
      };
      const result = new Promise<WaitResult>((resolve) => {
        const finish = () => {
          unregister();
          const failed = [...outcomes.values()].flatMap((o) =>
            o.status === "failed" ? [o.reason] : [],
          );
          if (failed.length > 0) {
            resolve({
              status: "failed",
              reasons: failed,
              delivered: outcomes.size - failed.length,
            });
          } else if (outcomes.size === ids.length) resolve({ status: "delivered" });
          else resolve({ status: "queued" });
        };
        for (const id of ids) {
          const w = (o: Outcome) => {
            outcomes.set(id, o);
            if (outcomes.size === ids.length) finish();
          };
          registered.push([id, w]);
          const set = waiters.get(id) ?? new Set();
          set.add(w);
          waiters.set(id, set);
        }
        timer = clock.setTimeout(finish, ms);
      });
      return { result, cancel: unregister };
    },
  };
}
