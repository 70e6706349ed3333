/**
 * The spool in one SQLite file (`node:sqlite`, no native addon). Writes are group
 * committed: every write requested in one tick, or while a flush runs, goes into one
 * transaction on the next macrotask, so a burst of posts costs one fsync, not one each.
 * After each commit the high-water mark (`highwater.ts`) moves to the newest seq, so that
 * the next start can tell when acknowledged messages went missing (`integrity.ts`).
 */
import { dirname } from "node:path";
import { GatewayError } from "../core/errors.ts";
import { trackHealth } from "./health.ts";
import { highWaterPath } from "./highwater.ts";
import { spoolFull } from "./limits.ts";
import { rollback } from "./migrations.ts";
import {
  describe,
  isConstraint,
  isReadOnly,
  openDatabase,
  type SqliteSpoolOptions,
} from "./sqlite-open.ts";
import type { Counts, Delta } from "./sqlite-statements.ts";
import type { Lane, NewMessage, Spool, SpooledMessage } from "./types.ts";

export { type CommitInfo, type SqliteSpoolOptions, spoolPath } from "./sqlite-open.ts";

/** Seconds a client is asked to wait (`Retry-After`) when the spool cannot take a post. */
const RETRY_AFTER = 30;

/** How long a bookkeeping write may wait to share a commit with others. */
const LAZY_MS = 20;

/**
 * Writes per transaction at most. node:sqlite is synchronous, so a transaction blocks
 * the event loop while it runs: 1000 posts take about 10 ms, and a larger burst is
 * committed in several transactions with other work (HTTP, XMPP) in between.
 */
const MAX_BATCH = 1000;

/** One write waiting for the next group commit. */
interface Write {
  /** Runs inside the batch transaction: what the call resolves with, and how counts change. */
  apply(): { value: unknown; delta: Delta };
  resolve(value: unknown): void;
  reject(err: unknown): void;
  /** What `enqueue` reserved against the limits; given back when the write fails. */
  readonly reserved?: Delta;
}

const ZERO: Delta = { messages: 0, bytes: 0, deadLetters: 0 };

function add(into: Counts, d: Delta, sign = 1): void {
  into.messages += sign * d.messages;
  into.bytes += sign * d.bytes;
  into.deadLetters += sign * d.deadLetters;
}

/** Opens (creating and migrating when needed) the spool at `opts.path`. */
export function openSqliteSpool(opts: SqliteSpoolOptions): Spool {
  const now = opts.now ?? Date.now;
  const { path, limits } = opts;
  const busyTimeoutMs = opts.busyTimeoutMs ?? 5000;
  let { db, sql } = openDatabase(path, busyTimeoutMs);

  /** Counts as committed; `reserved` is what accepted but unflushed enqueues will add. */
  const counts: Counts = sql.counts();
  const reserved: Counts = { ...ZERO };
  let seenVersion = sql.dataVersion();
  let syncedAt = performance.now();
  const queue: Write[] = [];
  let timer: NodeJS.Immediate | undefined;
  /** Bookkeeping writes (delivered, failures) wait a little to share a commit. */
  let lazyTimer: NodeJS.Timeout | undefined;
  let closed = false;
  /** Why the spool is closed: close() was called, or it could not be opened again. */
  let closedWhy = `the spool ${path} is closed`;
  /** Whether the last failed write found the file read-only (SQLITE_READONLY). */
  let readOnly = false;
  // The smallest real write (`touch`): at open, and while the spool cannot be written.
  const health = trackHealth(highWaterPath(path), () => {
    if (readOnly) reopen();
    return write(() => {
      sql.touch();
      return { value: undefined, delta: ZERO };
    });
  });

  const unavailable = (why: string, cause?: unknown) =>
    new GatewayError("UNAVAILABLE", why, { retryAfter: RETRY_AFTER, cause });
  const closedError = () => unavailable(closedWhy);

  function failed(why: string, err: unknown): void {
    readOnly = isReadOnly(err);
    health.failed(why);
  }

  /**
   * SQLite opens a file it may not write read-only, and every connection of this process
   * to the file stays read-only until all of them are closed: once DATA_DIR is writable
   * again, only a new connection can write. The start-up check is not run again: nothing
   * can have written the file meanwhile.
   */
  function reopen(): void {
    db.close();
    try {
      ({ db, sql } = openDatabase(path, busyTimeoutMs, false));
    } catch (err) {
      closed = true;
      closedWhy = `the spool ${path} could not be opened again: ${describe(err)}; restart the gateway`;
      return;
    }
    readOnly = false;
    seenVersion = -1; // data_version is per connection: recount at the next look
  }

  /** Re-reads the counts when another process (the `spool` CLI) changed the file. */
  function syncExternal(): void {
    syncedAt = performance.now();
    const version = sql.dataVersion();
    if (version === seenVersion) return;
    seenVersion = version;
    Object.assign(counts, sql.counts());
  }

  function flush(): void {
    timer = undefined;
    clearTimeout(lazyTimer);
    lazyTimer = undefined;
    const batch = queue.splice(0, MAX_BATCH);
    if (queue.length > 0 && !closed) timer = setImmediate(flush);
    if (batch.length === 0) return;
    const started = performance.now();
    const done: Array<{ w: Write; value: unknown; delta: Delta }> = [];
    const refused: Array<{ w: Write; err: unknown }> = [];
    let seq: number;
    try {
      // IMMEDIATE takes the write lock up front, so a busy database fails here, before
      // anything was written (https://www.sqlite.org/lang_transaction.html).
      db.exec("BEGIN IMMEDIATE");
      syncExternal();
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
          // (https://www.sqlite.org/lang_conflict.html, ABORT): undo this post alone.
          if (!isConstraint(err)) throw err;
          db.exec("ROLLBACK TO post");
          db.exec("RELEASE post");
          refused.push({ w, err });
        }
      }
      seq = sql.lastSeq();
      db.exec("COMMIT");
    } catch (err) {
      rollback(db);
      const e = unavailable(`the spool could not be written: ${describe(err)}`, err);
      failed(e.message, err);
      for (const w of batch) {
        if (w.reserved) add(reserved, w.reserved, -1);
        w.reject(e);
      }
      return;
    }
    health.committed(seq);
    for (const { w, value, delta } of done) {
      if (w.reserved) add(reserved, w.reserved, -1);
      add(counts, delta);
      w.resolve(value);
    }
    for (const { w, err } of refused) {
      if (w.reserved) add(reserved, w.reserved, -1);
      w.reject(new GatewayError("INTERNAL", `the spool refused the post: ${describe(err)}`));
    }
    opts.onCommit?.({ operations: batch.length, ms: performance.now() - started });
  }

  /**
   * Queues a write for the next commit. `lazy` writes (removing what a room confirmed,
   * counting failures) may wait LAZY_MS for company: losing one in a crash only means a
   * resend that the rejoin's history check catches, while each commit costs an fsync.
   */
  function write<T>(
    apply: () => { value: T; delta: Delta },
    reserve?: Delta,
    lazy = false,
  ): Promise<T> {
    if (closed) return Promise.reject(closedError());
    return new Promise<T>((resolve, reject) => {
      queue.push({ apply, resolve: resolve as (v: unknown) => void, reject, reserved: reserve });
      if (timer) return;
      if (!lazy) timer = setImmediate(flush);
      else lazyTimer ??= setTimeout(flush, LAZY_MS);
    });
  }

  function read<T>(fn: () => T): T {
    if (closed) throw closedError();
    return fn();
  }

  function enqueue(messages: readonly NewMessage[]): Promise<readonly SpooledMessage[]> {
    if (closed) return Promise.reject(closedError());
    if (messages.length === 0) return Promise.resolve([]);
    try {
      // Another process (the spool CLI) rarely writes: look at most once a second here;
      // every commit looks anyway, inside its transaction.
      if (performance.now() - syncedAt > 1000) syncExternal();
    } catch (err) {
      return Promise.reject(unavailable(`the spool cannot be read: ${describe(err)}`, err));
    }
    const bytes = messages.map((m) => Buffer.byteLength(m.body, "utf8"));
    const want: Delta = {
      messages: messages.length,
      bytes: bytes.reduce((a, b) => a + b, 0),
      deadLetters: 0,
    };
    const full = spoolFull(
      limits,
      { messages: counts.messages + reserved.messages, bytes: counts.bytes + reserved.bytes },
      want,
    );
    if (full) return Promise.reject(full);
    add(reserved, want);
    const createdAt = now();
    return write(() => ({ value: sql.insert(messages, bytes, createdAt), delta: want }), want);
  }

  // Tried at open, so that a read-only DATA_DIR shows in /ready before a post fails.
  try {
    db.exec("BEGIN IMMEDIATE");
    sql.touch();
    const seq = sql.lastSeq();
    db.exec("COMMIT");
    health.committed(seq);
  } catch (err) {
    rollback(db);
    const fix = isReadOnly(err) ? `; make ${dirname(path)} and its files writable` : "";
    failed(`the spool ${path} cannot be written: ${describe(err)}${fix}`, err);
  }

  return {
    enqueue,
    lanes: () => read(() => sql.lanes()),
    pending: (lane: Lane, limit: number, afterSeq = 0) =>
      read(() => sql.pending(lane, limit, afterSeq)),
    delivered: (ids) =>
      write(() => ({ value: undefined, delta: sql.remove(ids) }), undefined, true),
    recordFailure: (id, error) =>
      write(
        () => {
          sql.fail(id, error);
          return { value: undefined, delta: ZERO };
        },
        undefined,
        true,
      ),
    deadLetter: (id, reason) => {
      const failedAt = now();
      return write(() => ({ value: undefined, delta: sql.toDead(id, reason, failedAt) }));
    },
    listDead: (limit) => read(() => sql.listDead(limit)),
    retryDead: (ids) => {
      const at = now();
      return write(() => {
        const { count, delta } = sql.retry(ids, at);
        return { value: count, delta };
      });
    },
    purgeDead: (ids) =>
      write(() => {
        const count = sql.purge(ids);
        return { value: count, delta: { messages: 0, bytes: 0, deadLetters: -count } };
      }),
    health: () => (closed ? { writable: false, error: closedWhy } : health.current()),
    stats() {
      // After close, and when the file cannot be read, the last counts are still the best
      // answer: a metrics scrape must not fail.
      try {
        if (!closed) syncExternal();
      } catch {}
      return { messages: counts.messages, bytes: counts.bytes, deadLetters: counts.deadLetters };
    },
    async close() {
      if (closed) return;
      closed = true;
      if (timer !== undefined) clearImmediate(timer);
      while (queue.length > 0) flush();
      db.close();
      await health.close();
    },
  };
}
