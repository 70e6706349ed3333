/**
 * One group commit of the SQLite spool: the writes queued since the last one, run in one
 * transaction, in which a post the spool refuses fails alone, not the others. `sqlite.ts` queues the writes and applies the outcome.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { GatewayError } from "../core/errors.ts";
import { rollback } from "./migrations.ts";
import { describe, isConstraint } from "./sqlite-open.ts";
import type { Delta } from "./sqlite-statements.ts";

/** One write waiting for the next group commit. */
export interface Write {
  /** Runs inside the batch transaction: what the call resolves with, and how counts change. */
  apply(): { value: unknown; delta: Delta };
  resolve(value: unknown): void;
  reject(err: unknown): void;
  /** What a post reserved against the limits; given back once it committed or failed. Posts only. */
  readonly reserved?: Delta;
}

/** What a committed batch did: the writes that took effect, and the posts refused alone. */
export interface BatchOutcome {
  readonly done: ReadonlyArray<{ w: Write; value: unknown; delta: Delta }>;
  readonly refused: ReadonlyArray<{ w: Write; err: GatewayError }>;
  /** What `hooks.last` returned: the newest seq, for the high-water mark. */
  readonly seq: number;
}

/** The transaction statements, prepared once per connection (exec would parse them each time). */
interface Control {
  readonly begin: StatementSync;
  readonly commit: StatementSync;
  readonly savepoint: StatementSync;
  readonly release: StatementSync;
}
const controls = new WeakMap<DatabaseSync, Control>();

function controlOf(db: DatabaseSync): Control {
  let c = controls.get(db);
  if (c === undefined) {
    c = {
      // IMMEDIATE takes the write lock up front, so a busy database fails here, before
      // anything was written (https://www.sqlite.org/lang_transaction.html).
      begin: db.prepare("BEGIN IMMEDIATE"),
      commit: db.prepare("COMMIT"),
      savepoint: db.prepare("SAVEPOINT post"),
      release: db.prepare("RELEASE post"),
    };
    controls.set(db, c);
  }
  return c;
}

/** A post the spool refuses alone: a constraint (a reused id) or its own GatewayError. */
const refusable = (err: unknown) => isConstraint(err) || err instanceof GatewayError;

/** Thrown by the fast attempt when a post was refused: the batch runs again, post by post. */
class Refused extends Error {}

/**
 * Runs `batch` in one transaction and commits it; `hooks.first` runs right after BEGIN,
 * `hooks.last` right before COMMIT. Anything else failing rolls the whole batch back and
 * throws: SQLite cannot tell a disk error from a bug, so nothing of it may count.
 *
 * First without savepoints (a savepoint and its release per post cost about as much as
 * the insert); only when a post is refused is the batch rolled back and run again with a
 * savepoint per post, so that the refused one fails alone. The writes only touch the
 * database until the commit, so running them again is safe.
 */
export function runBatch(
  db: DatabaseSync,
  batch: readonly Write[],
  hooks: { first(): void; last(): number },
): BatchOutcome {
  try {
    return attempt(db, batch, hooks, false);
  } catch (err) {
    if (!(err instanceof Refused)) throw err;
    return attempt(db, batch, hooks, true);
  }
}

function attempt(
  db: DatabaseSync,
  batch: readonly Write[],
  hooks: { first(): void; last(): number },
  savepoints: boolean,
): BatchOutcome {
  const c = controlOf(db);
  const done: Array<{ w: Write; value: unknown; delta: Delta }> = [];
  const refused: Array<{ w: Write; err: GatewayError }> = [];
  try {
    c.begin.run();
    hooks.first();
    for (const w of batch) {
      if (w.reserved === undefined) {
        done.push({ w, ...w.apply() });
        continue;
      }
      if (!savepoints) {
        try {
          done.push({ w, ...w.apply() });
        } catch (err) {
          throw refusable(err) ? new Refused() : err;
        }
        continue;
      }
      // A savepoint per post: a post that breaks a constraint (a reused id) is refused
      // alone, without failing the posts that share its transaction.
      c.savepoint.run();
      try {
        done.push({ w, ...w.apply() });
        c.release.run();
      } catch (err) {
        // A constraint failure ends the statement, not the transaction
        // (https://www.sqlite.org/lang_conflict.html, ABORT): undo this post alone. So
        // does a refusal of the spool's own (a GatewayError: a full spool's new claim).
        if (!refusable(err)) throw err;
        db.exec("ROLLBACK TO post");
        c.release.run();
        const e =
          err instanceof GatewayError
            ? err
            : new GatewayError("INTERNAL", `the spool refused the post: ${describe(err)}`);
        refused.push({ w, err: e });
      }
    }
    const seq = hooks.last();
    c.commit.run();
    return { done, refused, seq };
  } catch (err) {
    rollback(db);
    throw err;
  }
}
