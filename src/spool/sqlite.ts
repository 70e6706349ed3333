/**
 * The spool in one SQLite file (`node:sqlite`, no native addon). Writes are group
 * committed: every write requested in one tick, or while a flush runs, goes into one
 * transaction on the next macrotask, so a burst of posts costs one fsync, not one each.
 * After each commit the high-water mark (`highwater.ts`) moves to the newest seq, so that
 * the next start can tell when acknowledged messages went missing (`integrity.ts`).
 * Beside the queue it keeps the dedupe claims and thread anchors (`sqlite-claims.ts`),
 * deleting expired ones inside a commit at most once a minute (`expiry.ts`).
 */
import { dirname } from "node:path";
import { GatewayError } from "../core/errors.ts";
import { add, settleOutcome, ZERO } from "./counts.ts";
import { SWEEP_INTERVAL_MS } from "./expiry.ts";
import { trackHealth } from "./health.ts";
import { highWaterPath } from "./highwater.ts";
import { spoolFull } from "./limits.ts";
import { rollback } from "./migrations.ts";
import { type BatchOutcome, runBatch, type Write } from "./sqlite-batch.ts";
import { describe, isReadOnly, openDatabase, type SqliteSpoolOptions } from "./sqlite-open.ts";
import type { Counts, Delta } from "./sqlite-statements.ts";
import type { DedupeClaim, EnqueueOnce, Lane, NewMessage, Spool, SpooledMessage } from "./types.ts";

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
  /** Lanes the queued posts go to: their commit marks a short tail (`sqlite-marks.ts`). */
  let posted = new Map<string, Lane>();
  let timer: NodeJS.Immediate | undefined;
  /** Bookkeeping writes (delivered, failures) wait a little to share a commit. */
  let lazyTimer: NodeJS.Timeout | undefined;
  let closed = false;
  /** When the last committed sweep of expired claims and anchors ran (spool clock). */
  let sweptAt = Number.NEGATIVE_INFINITY;
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
    // Marking a lane more than once, or for a post this batch does not hold, is harmless.
    const lanes = queue.length > 0 ? [...posted.values()] : takePosted();
    const started = performance.now();
    const at = now();
    const sweep = at - sweptAt >= SWEEP_INTERVAL_MS;
    let outcome: BatchOutcome;
    try {
      outcome = runBatch(db, batch, {
        first: syncExternal,
        last() {
          if (sweep) {
            sql.sweep(at);
            sql.sweepMarks(at);
          }
          for (const lane of lanes) sql.markShortTail(lane, at);
          return sql.lastSeq();
        },
      });
    } catch (err) {
      const e = unavailable(`the spool could not be written: ${describe(err)}`, err);
      failed(e.message, err);
      for (const w of batch) {
        if (w.reserved) add(reserved, w.reserved, -1);
        w.reject(e);
      }
      return;
    }
    health.committed(outcome.seq);
    if (sweep) sweptAt = at;
    settleOutcome(outcome, counts, reserved);
    opts.onCommit?.({ operations: batch.length, ms: performance.now() - started });
  }

  function takePosted(): Lane[] {
    const lanes = [...posted.values()];
    posted = new Map();
    return lanes;
  }

  function notePosted(messages: readonly NewMessage[]): void {
    for (const { room, nick } of messages) posted.set(`${nick}\u0000${room}`, { room, nick });
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

  /**
   * A read of what is committed, done now (node:sqlite is synchronous) and answered
   * through a settled promise: the Spool's reads are asynchronous for a database server.
   */
  function read<T>(fn: () => T): Promise<T> {
    if (closed) return Promise.reject(closedError());
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * The checks before a post is queued: what it adds, and the SPOOL_FULL error when that
   * does not fit beside what is committed and reserved. Throws UNAVAILABLE (closed, or
   * the file cannot be read).
   */
  function admit(messages: readonly NewMessage[]) {
    if (closed) throw closedError();
    try {
      // Another process (the spool CLI) rarely writes: look at most once a second here;
      // every commit looks anyway, inside its transaction.
      if (performance.now() - syncedAt > 1000) syncExternal();
    } catch (err) {
      throw unavailable(`the spool cannot be read: ${describe(err)}`, err);
    }
    const bytes = messages.map((m) => Buffer.byteLength(m.body, "utf8"));
    const want: Delta = {
      messages: messages.length,
      bytes: bytes.reduce((a, b) => a + b, 0),
      deadLetters: 0,
    };
    const held = {
      messages: counts.messages + reserved.messages,
      bytes: counts.bytes + reserved.bytes,
    };
    return { bytes, want, full: spoolFull(limits, held, want), createdAt: now() };
  }

  function enqueue(messages: readonly NewMessage[]): Promise<readonly SpooledMessage[]> {
    if (messages.length === 0 && !closed) return Promise.resolve([]);
    try {
      const { bytes, want, full, createdAt } = admit(messages);
      if (full) throw full;
      add(reserved, want);
      notePosted(messages);
      return write(() => ({ value: sql.insert(messages, bytes, createdAt), delta: want }), want);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  function enqueueOnce(messages: readonly NewMessage[], claim: DedupeClaim): Promise<EnqueueOnce> {
    if (messages.length === 0 && !closed)
      return Promise.resolve({ duplicate: false, messages: [] });
    try {
      const { bytes, want, full, createdAt } = admit(messages);
      // A full spool still answers a duplicate (it stores nothing): only a post that would
      // be stored is refused, in its own savepoint, when the commit finds no live claim.
      const reserve = full ? ZERO : want;
      add(reserved, reserve);
      notePosted(messages);
      const ids = messages.map((m) => m.id);
      const postId = messages[0]?.postId ?? "";
      return write((): { value: EnqueueOnce; delta: Delta } => {
        const found = sql.findClaim(claim, createdAt);
        if (found) return { value: found, delta: ZERO };
        if (full) throw full;
        const stored = sql.insert(messages, bytes, createdAt);
        sql.putClaim(claim, postId, ids);
        return { value: { duplicate: false, messages: stored }, delta: want };
      }, reserve);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** A bookkeeping write that changes no count, waiting LAZY_MS for company. */
  const lazily = (fn: () => void) =>
    write(
      () => {
        fn();
        return { value: undefined, delta: ZERO };
      },
      undefined,
      true,
    );

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
    enqueueOnce,
    claimed: (route, key) => read(() => sql.claimedBy(route, key, now())),
    lanes: () => read(() => sql.lanes()),
    pending: (lane: Lane, limit: number, afterSeq = 0) =>
      read(() => sql.pending(lane, limit, afterSeq)),
    claim: (lane: Lane, limit: number, afterSeq: number) =>
      read(() => {
        const claimed = sql.pending(lane, limit, afterSeq);
        const last = claimed.at(-1);
        if (last !== undefined) sql.markClaimed(lane, last.seq, now());
        return claimed;
      }),
    sentUpTo: (lane: Lane) => read(() => sql.mark(lane)),
    sentSince: (lane: Lane, seq: number) => read(() => sql.markedSince(lane, seq)),
    delivered: (ids) =>
      write(() => ({ value: undefined, delta: sql.remove(ids) }), undefined, true),
    recordFailure: (id, error) => lazily(() => sql.fail(id, error)),
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
    anchor: (room, group) => read(() => sql.anchor(room, group, now())),
    recordAnchor: (room, group, anchor) => {
      const at = now();
      return lazily(() => sql.recordAnchor(room, group, anchor, at));
    },
    resolveAnchor: (room, group, resolvedAt) => {
      const at = now();
      return lazily(() => sql.resolveAnchor(room, group, resolvedAt, at));
    },
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
