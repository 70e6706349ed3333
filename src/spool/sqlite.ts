/**
 * The spool in one SQLite file (`node:sqlite`, no native addon). Writes are group
 * committed: every write requested in one tick, or while a flush runs, goes into one
 * transaction on the next macrotask, so a burst of posts costs one fsync, not one each.
 */
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { GatewayError } from "../core/errors.ts";
import { spoolFull } from "./limits.ts";
import { migrate, rollback } from "./migrations.ts";
import { type Counts, type Delta, prepareStatements } from "./sqlite-statements.ts";
import type { Lane, NewMessage, Spool, SpooledMessage, SpoolLimits } from "./types.ts";

/** Seconds a client is asked to wait (`Retry-After`) when the spool cannot take a post. */
const RETRY_AFTER = 30;

/**
 * Writes per transaction at most. node:sqlite is synchronous, so a transaction blocks
 * the event loop while it runs: 1000 posts take about 10 ms, and a larger burst is
 * committed in several transactions with other work (HTTP, XMPP) in between.
 */
/** How long a bookkeeping write may wait to share a commit with others. */
const LAZY_MS = 20;

const MAX_BATCH = 1000;

/** What one commit wrote, for metrics and for tests that count transactions. */
export interface CommitInfo {
  /** How many spool calls (enqueue, delivered, …) the transaction carried. */
  readonly operations: number;
  /** Time from BEGIN to the end of COMMIT (including the fsync), in ms. */
  readonly ms: number;
}

/** Options of `openSqliteSpool`. */
export interface SqliteSpoolOptions {
  /** The database file; its directory is created when missing. */
  readonly path: string;
  readonly limits: SpoolLimits;
  /** The clock, ms since the epoch (createdAt, failedAt). */
  readonly now?: () => number;
  /** How long a write waits for another process's lock before its batch fails UNAVAILABLE. */
  readonly busyTimeoutMs?: number;
  /** Called after every commit. */
  readonly onCommit?: (info: CommitInfo) => void;
}

/** The spool file inside the data directory (`DATA_DIR`). */
export function spoolPath(dataDir: string): string {
  return join(dataDir, "spool.sqlite");
}

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

/** SQLITE_CONSTRAINT and its extended codes (https://www.sqlite.org/rescode.html#constraint). */
function isConstraint(err: unknown): boolean {
  return ((err as { errcode?: number }).errcode ?? 0) % 256 === 19;
}

function describe(err: unknown): string {
  const e = err as { message?: string; errstr?: string };
  const message = String(e.message ?? err);
  // node:sqlite puts SQLite's generic text for the code in `errstr`, details in `message`.
  return e.errstr === undefined || e.errstr === message ? message : `${e.errstr}: ${message}`;
}

/** Opens, configures and migrates the database file. */
function openDatabase(path: string, busyTimeoutMs: number) {
  let db: DatabaseSync | undefined;
  try {
    mkdirSync(dirname(path), { recursive: true });
    db = new DatabaseSync(path);
    // WAL: readers (the delivery loop, the `spool` CLI) never block the writer, and a
    // commit appends to one file (https://www.sqlite.org/wal.html). synchronous=FULL:
    // in WAL mode NORMAL may lose the last commits on power loss; FULL syncs the WAL at
    // every commit, so an acknowledged message survives it
    // (https://www.sqlite.org/pragma.html#pragma_synchronous). busy_timeout: wait for
    // another process's short write instead of failing at once.
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(busyTimeoutMs))}`);
    migrate(db, path);
    return { db, sql: prepareStatements(db) };
  } catch (err) {
    db?.close();
    if (err instanceof GatewayError) throw err;
    throw new GatewayError("UNAVAILABLE", `cannot open the spool ${path}: ${describe(err)}`, {
      cause: err,
    });
  }
}

/** Opens (creating and migrating when needed) the spool at `opts.path`. */
export function openSqliteSpool(opts: SqliteSpoolOptions): Spool {
  const now = opts.now ?? Date.now;
  const { path, limits } = opts;
  const { db, sql } = openDatabase(path, opts.busyTimeoutMs ?? 5000);

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

  const unavailable = (why: string, cause?: unknown) =>
    new GatewayError("UNAVAILABLE", why, { retryAfter: RETRY_AFTER, cause });
  const closedError = () => unavailable(`the spool ${path} is closed`);

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
      db.exec("COMMIT");
    } catch (err) {
      rollback(db);
      const e = unavailable(`the spool could not be written: ${describe(err)}`, err);
      for (const w of batch) {
        if (w.reserved) add(reserved, w.reserved, -1);
        w.reject(e);
      }
      return;
    }
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
    },
  };
}
