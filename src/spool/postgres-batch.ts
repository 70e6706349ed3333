/**
 * One group commit of the PostgreSQL spool: the writes queued since the last one, run in
 * one transaction on one connection, in which a post the spool refuses fails alone. The
 * scheme is sqlite-batch.ts's (optimistic, then a savepoint per post), with one difference
 * that matters: in PostgreSQL any error aborts the whole transaction
 * (https://www.postgresql.org/docs/15/tutorial-transactions.html), so a refused post can
 * only be undone alone inside a savepoint of its own.
 */
import type { ClientBase } from "pg";
import { GatewayError } from "../core/errors.ts";
import { ZERO } from "./counts.ts";
import { describe, isConnectionError, sqlState } from "./postgres-errors.ts";
import { insertPosts, type PostRows } from "./postgres-statements.ts";
import type { Delta } from "./sqlite-statements.ts";

/** What a write runs its SQL on: the batch's connection, inside its transaction. */
export type Tx = Pick<ClientBase, "query">;

/** One write waiting for the next group commit. */
export interface Write {
  /** Runs inside the batch transaction: what the call resolves with, and how counts change. */
  apply(tx: Tx): Promise<{ value: unknown; delta: Delta }>;
  resolve(value: unknown): void;
  reject(err: unknown): void;
  /** What a post reserved against the limits; given back once it committed or failed. Posts only. */
  readonly reserved?: Delta;
  /**
   * A plain post (no claim): its rows, so that the fast attempt can insert a run of such
   * posts in one statement. `apply` must then insert exactly these and change the counts
   * by `reserved`.
   */
  readonly post?: PostRows;
}

/** What a committed batch did: the writes that took effect, the posts refused alone, and what `first` found. */
export interface BatchOutcome<F> {
  readonly done: ReadonlyArray<{ w: Write; value: unknown; delta: Delta }>;
  readonly refused: ReadonlyArray<{ w: Write; err: GatewayError }>;
  readonly first: F;
}

/** The hooks of a batch: `first` runs right after BEGIN (and the write lock), `last` right before COMMIT. */
export interface BatchHooks<F> {
  /**
   * The statements that open the transaction (BEGIN, and whatever must come with it). When
   * the last of them returns a row with an `xid` (`pg_current_xact_id()`), a connection
   * lost during COMMIT throws CommitInDoubt with it.
   */
  readonly begin: string;
  first(tx: Tx): Promise<F>;
  last(tx: Tx): Promise<void>;
}

/**
 * SQLSTATE classes of a post the database refuses on its own account: 23, a constraint
 * (a reused id); 22, data it cannot store (a NUL character in a body, which text may not
 * hold: https://www.postgresql.org/docs/15/datatype-character.html). Neither says
 * anything about the database or the other posts.
 */
function refusable(err: unknown): boolean {
  if (err instanceof GatewayError) return true;
  const state = sqlState(err);
  return state !== undefined && (state.startsWith("23") || state.startsWith("22"));
}

/** Thrown by the fast attempt when a post was refused: the batch runs again, post by post. */
class Refused extends Error {}

/**
 * Thrown when the connection failed during COMMIT: the transaction `xid` may or may not
 * have committed. `outcome` is what the batch did if it did; `pg_xact_status(xid)` on
 * another connection tells which (https://www.postgresql.org/docs/15/functions-info.html).
 */
export class CommitInDoubt<F> extends Error {
  readonly xid: string;
  readonly outcome: BatchOutcome<F>;

  constructor(xid: string, outcome: BatchOutcome<F>, cause: unknown) {
    super(`the connection failed during COMMIT: ${describe(cause)}`, { cause });
    this.name = "CommitInDoubt";
    this.xid = xid;
    this.outcome = outcome;
  }
}

/**
 * Runs `batch` in one transaction on `tx` and commits it. Anything else failing rolls the
 * whole batch back and throws: a dropped connection, a server shutting down, a timeout.
 * When the connection fails during COMMIT itself, the outcome is unknown here (it may have
 * committed): that throws CommitInDoubt, for the committer to find out.
 *
 * First without savepoints (each costs two round trips), each run of plain posts in one
 * INSERT; only when a post is refused is the batch rolled back and run again, one write at
 * a time, with a savepoint per post. The writes only touch the database until the commit,
 * so running them again is safe.
 */
export async function runBatch<F>(
  tx: Tx,
  batch: readonly Write[],
  hooks: BatchHooks<F>,
): Promise<BatchOutcome<F>> {
  try {
    return await attempt(tx, batch, hooks, false);
  } catch (err) {
    if (!(err instanceof Refused)) throw err;
    return attempt(tx, batch, hooks, true);
  }
}

async function attempt<F>(
  tx: Tx,
  batch: readonly Write[],
  hooks: BatchHooks<F>,
  savepoints: boolean,
): Promise<BatchOutcome<F>> {
  const done: Array<{ w: Write; value: unknown; delta: Delta }> = [];
  const refused: Array<{ w: Write; err: GatewayError }> = [];
  let xid: string | undefined;
  try {
    xid = xidOf(await tx.query(hooks.begin));
    const first = await hooks.first(tx);
    for (let i = 0; i < batch.length; i++) {
      const w = batch[i] as Write;
      if (w.reserved === undefined) {
        done.push({ w, ...(await w.apply(tx)) });
      } else if (savepoints) {
        // A savepoint per post: one that breaks a constraint (a reused id) is undone
        // alone, and the transaction goes on. So is a refusal of the spool's own (a
        // GatewayError: a full spool's new claim).
        await tx.query("SAVEPOINT post");
        try {
          done.push({ w, ...(await w.apply(tx)) });
          await tx.query("RELEASE SAVEPOINT post");
        } catch (err) {
          if (!refusable(err)) throw err;
          await tx.query("ROLLBACK TO SAVEPOINT post");
          await tx.query("RELEASE SAVEPOINT post");
          const e =
            err instanceof GatewayError
              ? err
              : new GatewayError("INTERNAL", `the spool refused the post: ${describe(err)}`);
          refused.push({ w, err: e });
        }
      } else {
        try {
          if (w.post === undefined) done.push({ w, ...(await w.apply(tx)) });
          else i += (await insertRun(tx, batch, i, done)) - 1;
        } catch (err) {
          throw refusable(err) ? new Refused() : err;
        }
      }
    }
    await hooks.last(tx);
    try {
      await tx.query("COMMIT");
    } catch (err) {
      if (xid !== undefined && isConnectionError(err)) {
        throw new CommitInDoubt(xid, { done, refused, first }, err);
      }
      throw err;
    }
    return { done, refused, first };
  } catch (err) {
    // On a dropped connection this fails too; the server rolls back what it had.
    await tx.query("ROLLBACK").catch(() => {});
    throw err;
  }
}

/** The `xid` the last of the begin statements returned, if any. */
function xidOf(result: unknown): string | undefined {
  const last = Array.isArray(result) ? result.at(-1) : result;
  const xid = (last as { rows?: Array<{ xid?: unknown }> } | undefined)?.rows?.[0]?.xid;
  return xid === undefined || xid === null ? undefined : String(xid);
}

/** Inserts the run of plain posts that starts at `batch[from]` in one statement; returns its length. */
async function insertRun(
  tx: Tx,
  batch: readonly Write[],
  from: number,
  done: Array<{ w: Write; value: unknown; delta: Delta }>,
): Promise<number> {
  let end = from + 1;
  while (end < batch.length && batch[end]?.post !== undefined) end += 1;
  const run = batch.slice(from, end);
  const stored = await insertPosts(
    tx,
    run.map((w) => w.post as PostRows),
  );
  run.forEach((w, k) => {
    done.push({ w, value: stored[k], delta: w.reserved ?? ZERO });
  });
  return run.length;
}
