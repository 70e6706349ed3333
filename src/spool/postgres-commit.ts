/**
 * The group commit of the PostgreSQL spool, and what it knows between commits: the counts
 * behind stats(), what accepted posts reserved, and whether the database takes writes.
 * Every write requested in one tick, or while a commit runs, goes into the next
 * transaction (`postgres-batch.ts`), one at a time on one connection; reads go to any
 * connection of the pool.
 *
 * Each write transaction first takes one advisory lock, held until it commits, so that
 * seqs are handed out in commit order across gateways sharing the database: a reader that
 * saw seq N has seen every smaller seq that will ever commit, and the delivery loop's
 * `afterSeq` cursor cannot pass over a message another gateway commits later. The lock
 * also orders two gateways' claims of one dedupe key, and makes the recount of other
 * gateways' writes (at most once a second, inside a commit) exact beside our own deltas.
 */
import type pg from "pg";
import { GatewayError } from "../core/errors.ts";
import { add, settleOutcome, ZERO } from "./counts.ts";
import { SWEEP_INTERVAL_MS } from "./expiry.ts";
import {
  type BatchOutcome,
  CommitInDoubt,
  runBatch,
  type Tx,
  type Write,
} from "./postgres-batch.ts";
import { sweep as sweepClaims } from "./postgres-claims.ts";
import { describe, isConnectionError } from "./postgres-errors.ts";
import { type PostRows, readCounts } from "./postgres-statements.ts";
import type { CommitInfo } from "./sqlite-open.ts";
import type { Counts, Delta } from "./sqlite-statements.ts";
import type { SpoolHealth, SpoolStats } from "./types.ts";

/** Seconds a client is asked to wait (`Retry-After`) when the spool cannot take a post. */
export const RETRY_AFTER = 30;
/** How long a bookkeeping write may wait to share a commit with others. */
const LAZY_MS = 20;
/** Writes per transaction at most: a larger burst is committed in several. */
const MAX_BATCH = 1000;
/** The counts are read again from the database (other gateways' writes) at most this often, when asked. */
const RECOUNT_MS = 1000;
/** While the spool cannot be written, health() tries a write this often at most. */
const PROBE_MS = 1000;
/** The advisory lock (keys "xmpp", 1) every write transaction holds until it ends. */
const WRITE_LOCK = "pg_advisory_xact_lock(2020438128, 1)";
/** How long a commit whose connection failed during COMMIT may take to learn whether it committed. */
const IN_DOUBT_MS = 10_000;
/** Between two questions about it. */
const IN_DOUBT_POLL_MS = 250;

const WRITABLE: SpoolHealth = Object.freeze({ writable: true });

/** What the committer needs: the pool, the counts read at open, and how to name the database. */
export interface CommitterOptions {
  readonly pool: pg.Pool;
  readonly counts: Counts;
  /** The database for messages, without the password (`databaseName`). */
  readonly where: string;
  readonly now: () => number;
  readonly onCommit?: (info: CommitInfo) => void;
}

/** The write queue and its commits, the reads, and the in-memory facts of one open spool. */
export interface Committer {
  /**
   * Queues a write for the next commit; `lazy` ones may wait LAZY_MS for company (as
   * SQLite's). `reserve`: what a post holds against the limits until it commits or fails.
   * `post`: the rows of a plain post, which a commit may insert with others.
   */
  write<T>(
    apply: (tx: Tx) => Promise<{ value: T; delta: Delta }>,
    opts?: { reserve?: Delta; lazy?: boolean; post?: PostRows },
  ): Promise<T>;
  /** A read of what is committed, on any connection; rejects UNAVAILABLE when it fails. */
  read<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /** Messages and bytes committed and reserved, for the capacity check; asks for a recount when stale. */
  held(): { messages: number; bytes: number };
  /** Holds `d` against the limits (given back by the commit of the write it was passed to). */
  reserve(d: Delta): void;
  /** The UNAVAILABLE error of a closed spool, or undefined while open. */
  closedError(): GatewayError | undefined;
  health(): SpoolHealth;
  stats(): SpoolStats;
  /** Commits what is queued, then closes the pool. */
  close(): Promise<void>;
}

/** Starts the committer of one open spool. */
export function createCommitter(o: CommitterOptions): Committer {
  const { pool, counts, where } = o;
  const reserved: Counts = { ...ZERO };
  const queue: Write[] = [];
  let timer: NodeJS.Immediate | undefined;
  let lazyTimer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> | undefined;
  let closed = false;
  let closing: Promise<void> | undefined;
  const closedWhy = `the spool ${where} is closed`;
  /** When the last committed sweep of expired claims and anchors ran (spool clock). */
  let sweptAt = Number.NEGATIVE_INFINITY;
  let countedAt = performance.now();
  /** Chores for the next commit: read the counts again; try a write while not writable. */
  let recountDue = false;
  let probeDue = false;
  let health: SpoolHealth = WRITABLE;
  let failedAt = 0;

  const unavailable = (why: string, cause?: unknown) =>
    new GatewayError("UNAVAILABLE", why, { retryAfter: RETRY_AFTER, cause });

  function failed(why: string): void {
    health = { writable: false, error: why };
    failedAt = performance.now();
    probeDue = false;
  }

  function schedule(lazy: boolean): void {
    if (closed || flushing !== undefined || timer !== undefined) return; // a commit that ends starts the next
    if (lazy) lazyTimer ??= setTimeout(startFlush, LAZY_MS);
    else timer = setImmediate(startFlush);
  }

  function startFlush(): void {
    timer = undefined;
    clearTimeout(lazyTimer);
    lazyTimer = undefined;
    if (flushing !== undefined) return;
    flushing = flush().finally(() => {
      flushing = undefined;
      if (queue.length > 0) schedule(false);
    });
  }

  /** Commits the writes queued so far (MAX_BATCH at most), with the chores that are due. */
  async function flush(): Promise<void> {
    const batch = queue.splice(0, MAX_BATCH);
    const recount = recountDue;
    if (batch.length === 0 && !recount && !probeDue) return;
    recountDue = false;
    const started = performance.now();
    const at = o.now();
    const sweep = at - sweptAt >= SWEEP_INTERVAL_MS;
    let outcome: BatchOutcome<Counts | undefined>;
    const client = await pool.connect().catch((err: unknown) => err as Error);
    try {
      if (client instanceof Error) throw client;
      outcome = await runBatch(client, batch, {
        // One round trip: BEGIN, the lock that orders the gateways' commits, and the
        // transaction's id, to ask about it if the connection fails during COMMIT.
        begin: `BEGIN; SELECT ${WRITE_LOCK}; SELECT pg_current_xact_id()::text AS xid`,
        first: (tx) => (recount ? readCounts(tx) : Promise.resolve(undefined)),
        last: (tx) => (sweep ? sweepClaims(tx, at) : Promise.resolve()),
      });
      client.release();
    } catch (err) {
      // A connection that failed is closed, not reused: its state is unknown.
      if (!(client instanceof Error)) client.release(true);
      const status = err instanceof CommitInDoubt ? await statusOf(err.xid) : undefined;
      if (status === "committed") {
        // The reply to COMMIT was lost, not the commit: the posts are stored, say so.
        outcome = (err as CommitInDoubt<Counts | undefined>).outcome;
      } else {
        const why =
          err instanceof CommitInDoubt && status === undefined
            ? `the spool ${where} lost the connection during a commit and could not learn within ${IN_DOUBT_MS / 1000} s whether it committed (${describe(err.cause)}): the post may be stored; a retry with the same Idempotency-Key is answered once`
            : `the spool ${where} could not be written: ${describe(err)}`;
        const e = unavailable(why, err);
        failed(e.message);
        for (const w of batch) {
          if (w.reserved) add(reserved, w.reserved, -1);
          w.reject(e);
        }
        return;
      }
    }
    health = WRITABLE;
    probeDue = false;
    if (sweep) sweptAt = at;
    if (outcome.first !== undefined) {
      Object.assign(counts, outcome.first);
      countedAt = performance.now();
    }
    settleOutcome(outcome, counts, reserved);
    if (batch.length > 0) {
      o.onCommit?.({ operations: batch.length, ms: performance.now() - started });
    }
  }

  /**
   * Whether transaction `xid` committed, asked on another connection until the database
   * answers "committed" or "aborted" (a transaction cut off by a crash is aborted once the
   * server is back), for IN_DOUBT_MS at most; undefined when it never said.
   */
  async function statusOf(xid: string): Promise<"committed" | "aborted" | undefined> {
    const by = performance.now() + IN_DOUBT_MS;
    for (;;) {
      const status = await pool
        .query({ text: "SELECT pg_xact_status($1::xid8) AS status", values: [xid] })
        .then((r) => r.rows[0]?.status as string | null | undefined)
        .catch(() => undefined);
      if (status === "committed" || status === "aborted") return status;
      if (performance.now() + IN_DOUBT_POLL_MS >= by) return undefined;
      await new Promise((r) => setTimeout(r, IN_DOUBT_POLL_MS));
    }
  }

  /** Asks for a recount with the next commit when the counts are older than RECOUNT_MS. */
  function staleCounts(): boolean {
    if (closed || recountDue || performance.now() - countedAt < RECOUNT_MS) return false;
    recountDue = true;
    return true;
  }

  return {
    write(apply, w = {}) {
      if (closed) return Promise.reject(unavailable(closedWhy));
      return new Promise((resolve, reject) => {
        const settle = { resolve: resolve as (v: unknown) => void, reject };
        queue.push({ apply, ...settle, reserved: w.reserve, post: w.post });
        schedule(w.lazy ?? false);
      });
    },
    async read(fn) {
      if (closed) throw unavailable(closedWhy);
      try {
        return await fn(pool);
      } catch (err) {
        const e = unavailable(`the spool ${where} cannot be read: ${describe(err)}`, err);
        if (isConnectionError(err)) failed(e.message);
        throw e;
      }
    },
    held() {
      staleCounts(); // the post's own commit recounts: later posts see the other gateways'
      return {
        messages: counts.messages + reserved.messages,
        bytes: counts.bytes + reserved.bytes,
      };
    },
    reserve: (d) => add(reserved, d),
    closedError: () => (closed ? unavailable(closedWhy) : undefined),
    health() {
      if (closed) return { writable: false, error: closedWhy };
      // The smallest real write (an empty commit under the write lock), at most once a
      // PROBE_MS while the spool cannot be written: /ready sees the database come back.
      if (!health.writable && !probeDue && performance.now() - failedAt >= PROBE_MS) {
        probeDue = true;
        schedule(false);
      }
      return health;
    },
    stats() {
      // The other gateways' writes, at most once a second: a commit of its own (if none is
      // under way) reads the counts. This answer is the last known one; it never waits.
      if (staleCounts()) schedule(false);
      return { messages: counts.messages, bytes: counts.bytes, deadLetters: counts.deadLetters };
    },
    close() {
      closing ??= (async () => {
        closed = true;
        clearImmediate(timer);
        clearTimeout(lazyTimer);
        timer = lazyTimer = undefined;
        recountDue = probeDue = false;
        await flushing;
        while (queue.length > 0) await flush();
        await pool.end();
      })();
      return closing;
    },
  };
}
