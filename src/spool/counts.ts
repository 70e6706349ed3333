/**
 * The counts both database spools keep in memory (messages, bytes, dead letters), and how
 * a committed group commit's outcome is applied to them: the same for SQLite and
 * PostgreSQL, whose batches differ only in how they run.
 */
import type { Counts, Delta } from "./sqlite-statements.ts";

/** A delta that changes nothing. */
export const ZERO: Delta = Object.freeze({ messages: 0, bytes: 0, deadLetters: 0 });

/** Adds `d` (or, with sign -1, takes it away) to `into`. */
export function add(into: Counts, d: Delta, sign = 1): void {
  into.messages += sign * d.messages;
  into.bytes += sign * d.bytes;
  into.deadLetters += sign * d.deadLetters;
}

/** A queued write as the outcome settles it. */
interface Settled {
  resolve(value: unknown): void;
  reject(err: unknown): void;
  readonly reserved?: Delta;
}

/**
 * After a commit: each write that took effect adds its delta and resolves, each post
 * refused alone rejects; both give back what they reserved.
 */
export function settleOutcome(
  outcome: {
    readonly done: ReadonlyArray<{ w: Settled; value: unknown; delta: Delta }>;
    readonly refused: ReadonlyArray<{ w: Settled; err: unknown }>;
  },
  counts: Counts,
  reserved: Counts,
): void {
  for (const { w, value, delta } of outcome.done) {
    if (w.reserved) add(reserved, w.reserved, -1);
    add(counts, delta);
    w.resolve(value);
  }
  for (const { w, err } of outcome.refused) {
    if (w.reserved) add(reserved, w.reserved, -1);
    w.reject(err);
  }
}
