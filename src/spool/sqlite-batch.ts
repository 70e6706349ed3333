/**
 * One group commit of the SQLite spool: the writes queued since the last one, run in one
 * transaction, each post in a savepoint of its own so that a post the spool refuses does
 * not fail the others. `sqlite.ts` queues the writes and applies the outcome.
 */
import type { DatabaseSync } from "node:sqlite";
import { GatewayError } from "../core/errors.ts";
import { rollback } from "./migrations.ts";
import { describe, isConstraint } from "./sqlite-open.ts";
import type { Counts, Delta } from "./sqlite-statements.ts";

/** One write waiting for the next group commit. */
export interface Write {
  /** Runs inside the batch transaction: what the call resolves with, and how counts change. */
  apply(): { value: unknown; delta: Delta };
  resolve(value: unknown): void;
  reject(err: unknown): void;
  /** What a post reserved against the limits; given back once it committed or failed. Posts only. */
  readonly reserved?: Delta;
}

/** A delta that changes nothing. */
export const ZERO: Delta = { messages: 0, bytes: 0, deadLetters: 0 };

/** Adds `d` (or, with sign -1, takes it away) to `into`. */
export function add(into: Counts, d: Delta, sign = 1): void {
  into.messages += sign * d.messages;
  into.bytes += sign * d.bytes;
  into.deadLetters += sign * d.deadLetters;
}

/** What a committed batch did: the writes that took effect, and the posts refused alone. */
export interface BatchOutcome {
  readonly done: ReadonlyArray<{ w: Write; value: unknown; delta: Delta }>;
  readonly refused: ReadonlyArray<{ w: Write; err: GatewayError }>;
  /** What `hooks.last` returned: the newest seq, for the high-water mark. */
  readonly seq: number;
}

/**
 * Runs `batch` in one transaction and commits it; `hooks.first` runs right after BEGIN,
 * `hooks.last` right before COMMIT. Anything else failing rolls the whole batch back and
 * throws: SQLite cannot tell a disk error from a bug, so nothing of it may count.
 */
export function runBatch(
  db: DatabaseSync,
  batch: readonly Write[],
  hooks: { first(): void; last(): number },
): BatchOutcome {
  const done: Array<{ w: Write; value: unknown; delta: Delta }> = [];
  const refused: Array<{ w: Write; err: GatewayError }> = [];
  try {
    // IMMEDIATE takes the write lock up front, so a busy database fails here, before
    // anything was written (https://www.sqlite.org/lang_transaction.html).
    db.exec("BEGIN IMMEDIATE");
    hooks.first();
    for (const w of batch) {
      if (w.reserved === undefined) {
        done.push({ w, ...w.apply() });
        continue;
      }
      // A savepoint per post: a post that breaks a constraint (a reused id) is refused
      // alone, without failing the posts that share its transaction.
      db.exec("SAVEPOINT post");
      try {
        done.push({ w, ...w.apply() });
        db.exec("RELEASE post");
      } catch (err) {
        // A constraint failure ends the statement, not the transaction
        // (https://www.sqlite.org/lang_conflict.html, ABORT): undo this post alone. So
        // does a refusal of the spool's own (a GatewayError: a full spool's new claim).
        if (!isConstraint(err) && !(err instanceof GatewayError)) throw err;
        db.exec("ROLLBACK TO post");
        db.exec("RELEASE post");
        const e =
          err instanceof GatewayError
            ? err
            : new GatewayError("INTERNAL", `the spool refused the post: ${describe(err)}`);
        refused.push({ w, err: e });
      }
    }
    const seq = hooks.last();
    db.exec("COMMIT");
    return { done, refused, seq };
  } catch (err) {
    rollback(db);
    throw err;
  }
}
