/**
 * The spool in PostgreSQL (`pg`, node-postgres, with a small pool; no ORM), for gateways
 * that share one spool (issue 14, `SPOOL_URL=postgres://…`). It keeps the SQLite spool's
 * contract call for call: group commit and the counts in memory (`postgres-commit.ts`), a
 * post the database refuses failing alone (`postgres-batch.ts`), reads of what is
 * committed, the schema versioned (`postgres-migrations.ts`), the same tables
 * (`postgres-statements.ts`, `postgres-claims.ts`). When the database cannot be reached,
 * calls fail UNAVAILABLE with a Retry-After and health() says why, until a write goes
 * through again; nothing needs restarting. With several gateways, a claim can be fenced
 * by the account's lease (`postgres-lease.ts`): `claim(…, fence)`.
 */
import pg from "pg";
import { GatewayError } from "../core/errors.ts";
import { ZERO } from "./counts.ts";
import { spoolFull } from "./limits.ts";
import { limitOf } from "./memory-store.ts";
import type { Tx } from "./postgres-batch.ts";
import * as claims from "./postgres-claims.ts";
import { createCommitter, RETRY_AFTER } from "./postgres-commit.ts";
import { databaseName, describe } from "./postgres-errors.ts";
import type { LeaseFence } from "./postgres-lease.ts";
import { migratePostgres } from "./postgres-migrations.ts";
import * as sql from "./postgres-statements.ts";
import type { CommitInfo } from "./sqlite-open.ts";
import type { Counts, Delta } from "./sqlite-statements.ts";
import type { EnqueueOnce, Lane, NewMessage, Spool, SpooledMessage, SpoolLimits } from "./types.ts";

/** Options of `openPostgresSpool`. */
export interface PostgresSpoolOptions {
  /** `postgres://user:password@host:port/database` (libpq's URL form, as node-postgres reads it). */
  readonly url: string;
  readonly limits: SpoolLimits;
  /** The clock, ms since the epoch (createdAt, failedAt, expiry). */
  readonly now?: () => number;
  /** Called after every commit that carried spool calls. */
  readonly onCommit?: (info: CommitInfo) => void;
  /** Connections at most: one writes, the others read (default 4). */
  readonly poolSize?: number;
  /** How long connecting may take before a call fails UNAVAILABLE (default 5000 ms). */
  readonly connectTimeoutMs?: number;
  /** How long one statement may take, a wait for the write lock included (default 15000 ms). */
  readonly statementTimeoutMs?: number;
}

/**
 * The PostgreSQL spool: a Spool whose claims can be fenced by a lease (issue 14). Code
 * that takes a Spool sees the Spool contract unchanged.
 */
export interface PostgresSpool extends Spool {
  /**
   * As Spool.claim; with `fence`, nothing (an empty list) unless `fence.token` is still
   * the lease token of `fence.account`, unexpired by the database's clock, checked in the
   * same statement: a sender that lost its lease, paused or not, claims nothing.
   */
  claim(lane: Lane, limit: number, afterSeq: number, fence?: LeaseFence): Promise<SpooledMessage[]>;
}

/** Opens (migrating when needed) the spool in the database at `opts.url`; rejects UNAVAILABLE when it cannot be reached. */
export async function openPostgresSpool(opts: PostgresSpoolOptions): Promise<PostgresSpool> {
  const where = databaseName(opts.url);
  const pool = createPool(opts);
  let counts: Counts;
  try {
    const client = await pool.connect();
    try {
      await migratePostgres(client, where);
      counts = await sql.readCounts(client);
      client.release();
    } catch (err) {
      client.release(true);
      throw err;
    }
  } catch (err) {
    await pool.end().catch(() => {});
    if (err instanceof GatewayError) throw err;
    throw new GatewayError("UNAVAILABLE", `cannot open the spool ${where}: ${describe(err)}`, {
      retryAfter: RETRY_AFTER,
      cause: err,
    });
  }
  return postgresSpool(pool, counts, opts, where);
}

function createPool(opts: PostgresSpoolOptions): pg.Pool {
  const statementTimeout = opts.statementTimeoutMs ?? 15_000;
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolSize ?? 4,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
    // The server cancels a statement that runs too long (a wait for the lock included); the
    // client gives up a little later, for a server that cannot even answer that.
    statement_timeout: statementTimeout,
    query_timeout: statementTimeout + 2000,
    // A gateway paused (SIGSTOP) inside a transaction must not hold the write lock for
    // ever: the server ends such a session after this long.
    idle_in_transaction_session_timeout: statementTimeout,
    keepAlive: true,
    application_name: "xmpp-msg-gw",
  });
  // An idle connection's error (the server restarted, a dropped link) comes as an event;
  // the pool drops that connection, and the next call finds out whether the server is back.
  pool.on("error", () => {});
  pool.on("connect", (client) => client.on("error", () => {}));
  return pool;
}

function postgresSpool(
  pool: pg.Pool,
  counts: Counts,
  opts: PostgresSpoolOptions,
  where: string,
): PostgresSpool {
  const now = opts.now ?? Date.now;
  const { limits } = opts;
  const c = createCommitter({ pool, counts, where, now, onCommit: opts.onCommit });

  /** What a post adds, and the SPOOL_FULL error when that does not fit beside what is committed and reserved. */
  function admit(messages: readonly NewMessage[]) {
    const bytes = messages.map((m) => Buffer.byteLength(m.body, "utf8"));
    const want: Delta = {
      messages: messages.length,
      bytes: bytes.reduce((a, b) => a + b, 0),
      deadLetters: 0,
    };
    const full = spoolFull(limits, c.held(), want);
    return { post: { messages, bytes, createdAt: now() }, want, full };
  }

  /** A bookkeeping write that changes no count, waiting a little for company. */
  const lazily = (fn: (tx: Tx) => Promise<void>) =>
    c.write(
      async (tx) => {
        await fn(tx);
        return { value: undefined, delta: ZERO };
      },
      { lazy: true },
    );

  return {
    enqueue(messages) {
      const closed = c.closedError();
      if (closed) return Promise.reject(closed);
      if (messages.length === 0) return Promise.resolve([]);
      const { post, want, full } = admit(messages);
      if (full) return Promise.reject(full);
      c.reserve(want);
      return c.write(
        async (tx) => {
          const [stored = []] = await sql.insertPosts(tx, [post]);
          return { value: stored, delta: want };
        },
        { reserve: want, post },
      );
    },
    enqueueOnce(messages, claim) {
      const closed = c.closedError();
      if (closed) return Promise.reject(closed);
      if (messages.length === 0) return Promise.resolve({ duplicate: false, messages: [] });
      const { post, want, full } = admit(messages);
      // A full spool still answers a duplicate (it stores nothing): only a post that would
      // be stored is refused, in its own savepoint, when the commit finds no live claim.
      const reserve = full ? ZERO : want;
      c.reserve(reserve);
      const ids = messages.map((m) => m.id);
      const postId = messages[0]?.postId ?? "";
      return c.write(
        async (tx): Promise<{ value: EnqueueOnce; delta: Delta }> => {
          const found = await claims.findClaim(tx, claim, post.createdAt);
          if (found) return { value: found, delta: ZERO };
          if (full) throw full;
          const [stored = []] = await sql.insertPosts(tx, [post]);
          await claims.putClaim(tx, claim, postId, ids);
          return { value: { duplicate: false, messages: stored }, delta: want };
        },
        { reserve },
      );
    },
    claimed: (route, key) => c.read((tx) => claims.claimedBy(tx, route, key, now())),
    lanes: () => c.read((tx) => sql.lanes(tx)),
    async pending(lane, limit, afterSeq = 0) {
      const n = limitOf(limit);
      return c.read((tx) => sql.pending(tx, lane, Number.isFinite(n) ? n : null, afterSeq));
    },
    async claim(lane, limit, afterSeq, fence) {
      const n = limitOf(limit);
      const at = now();
      return c.read((tx) =>
        sql.claim(tx, lane, Number.isFinite(n) ? n : null, afterSeq, at, fence),
      );
    },
    sentSince: (lane, seq) => c.read((tx) => sql.sentSince(tx, lane, seq)),
    sentUpTo: (lane) => c.read((tx) => sql.sentUpTo(tx, lane)),
    delivered: (ids) =>
      c.write(async (tx) => ({ value: undefined, delta: await sql.remove(tx, ids) }), {
        lazy: true,
      }),
    recordFailure: (id, error) => lazily((tx) => sql.fail(tx, id, error)),
    deadLetter: (id, reason) => {
      const failedAt = now();
      return c.write(async (tx) => ({
        value: undefined,
        delta: await sql.toDead(tx, id, reason, failedAt),
      }));
    },
    async listDead(limit) {
      const n = limitOf(limit);
      return c.read((tx) => sql.listDead(tx, Number.isFinite(n) ? n : null));
    },
    retryDead: (ids) => {
      const at = now();
      return c.write(async (tx) => {
        const { count, delta } = await sql.retry(tx, ids, at);
        return { value: count, delta };
      });
    },
    purgeDead: (ids) =>
      c.write(async (tx) => {
        const count = await sql.purge(tx, ids);
        return { value: count, delta: { messages: 0, bytes: 0, deadLetters: -count } };
      }),
    anchor: (room, group) => c.read((tx) => claims.anchor(tx, room, group, now())),
    recordAnchor: (room, group, anchor) => {
      const at = now();
      return lazily((tx) => claims.recordAnchor(tx, room, group, anchor, at));
    },
    resolveAnchor: (room, group, resolvedAt) => {
      const at = now();
      return lazily((tx) => claims.resolveAnchor(tx, room, group, resolvedAt, at));
    },
    health: () => c.health(),
    stats: () => c.stats(),
    close: () => c.close(),
  };
}
