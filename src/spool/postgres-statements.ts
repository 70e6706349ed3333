import type { Tx } from "./postgres-batch.ts";
import type { LeaseFence } from "./postgres-lease.ts";
import { metaOf, toDeadLetter, toMessage } from "./rows.ts";
import type { Counts, Delta } from "./sqlite-statements.ts";
import type { DeadLetter, Lane, NewMessage, SpooledMessage } from "./types.ts";

const COLUMNS =
  "seq, id, post_id, route, room, nick, body, bytes, created_at, attempts, last_error, meta";
/** The columns a message keeps when it is queued again from the dead letters. */
const KEPT = "id, post_id, route, room, nick, body, bytes, meta";
/** `$1` is an array of ids, or NULL for "all of them". */
const SELECTED = "($1::text[] IS NULL OR id = ANY ($1::text[]))";

/** Runs one named (prepared once per connection) statement. */
export async function run(tx: Tx, name: string, text: string, values: unknown[]) {
  return tx.query({ name: `gw_${name}`, text, values });
}

/** The stored counts, for the in-memory copy at open and at a recount. */
export async function readCounts(tx: Tx): Promise<Counts> {
  const { rows } = await run(
    tx,
    "counts",
    `SELECT (SELECT count(*) FROM messages) AS n,
            (SELECT coalesce(sum(bytes), 0) FROM messages) AS b,
            (SELECT count(*) FROM dead_letters) AS d`,
    [],
  );
  const r = rows[0] ?? {};
  return { messages: Number(r.n ?? 0), bytes: Number(r.b ?? 0), deadLetters: Number(r.d ?? 0) };
}

/** The messages of one post to insert: `bytes[i]` is the UTF-8 size of message i. */
export interface PostRows {
  readonly messages: readonly NewMessage[];
  readonly bytes: readonly number[];
  readonly createdAt: number;
}

/**
 * Inserts the messages of several posts in one statement (one round trip, where one
 * INSERT each would cost one per post); resolves with each post's stored messages.
 */
export async function insertPosts(tx: Tx, posts: readonly PostRows[]): Promise<SpooledMessage[][]> {
  const rows = posts.flatMap((p) =>
    p.messages.map((m, i) => ({ m, bytes: p.bytes[i] ?? 0, createdAt: p.createdAt })),
  );
  const column = <T>(f: (r: (typeof rows)[number]) => T) => rows.map(f);
  // unnest yields the rows in array order, and the identity is drawn row by row in that
  // order: the messages get ascending seqs, as one INSERT each in turn would give them.
  const result = await run(
    tx,
    "insert",
    `INSERT INTO messages (id, post_id, route, room, nick, body, bytes, created_at, meta)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                          $6::text[], $7::integer[], $8::bigint[], $9::text[])
     RETURNING seq, id`,
    [
      column((r) => r.m.id),
      column((r) => r.m.postId),
      column((r) => r.m.route),
      column((r) => r.m.room),
      column((r) => r.m.nick),
      column((r) => r.m.body),
      column((r) => r.bytes),
      column((r) => r.createdAt),
      column((r) => metaOf(r.m)),
    ],
  );
  // The ids are unique (a reused one fails the statement), so they name the rows.
  const seqs = new Map(result.rows.map((r) => [String(r.id), Number(r.seq)]));
  return posts.map((p) =>
    p.messages.map(
      (m): SpooledMessage => ({
        ...m,
        seq: seqs.get(m.id) ?? 0,
        createdAt: p.createdAt,
        attempts: 0,
        lastError: undefined,
      }),
    ),
  );
}

/** Removes delivered messages. */
export async function remove(tx: Tx, ids: readonly string[]): Promise<Delta> {
  const { rows } = await run(
    tx,
    "remove",
    "DELETE FROM messages WHERE id = ANY ($1::text[]) RETURNING bytes",
    [ids],
  );
  const bytes = rows.reduce((sum, r) => sum + Number(r.bytes), 0);
  return { messages: -rows.length, bytes: -bytes, deadLetters: 0 };
}

/** Counts a failed attempt. */
export async function fail(tx: Tx, id: string, error: string): Promise<void> {
  await run(
    tx,
    "fail",
    "UPDATE messages SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
    [id, error],
  );
}

/** Moves one message to the dead letters. */
export async function toDead(tx: Tx, id: string, reason: string, failedAt: number): Promise<Delta> {
  // A stale dead letter with the same id (only possible if an id was reused) is replaced,
  // so that the UNIQUE constraint cannot fail the whole batch.
  const stale = await run(
    tx,
    "undead",
    "DELETE FROM dead_letters WHERE id = $1 AND EXISTS (SELECT 1 FROM messages WHERE id = $1)",
    [id],
  );
  const { rows } = await run(
    tx,
    "todead",
    `WITH t AS (DELETE FROM messages WHERE id = $1 RETURNING ${COLUMNS})
     INSERT INTO dead_letters (${COLUMNS}, failed_at, reason)
     SELECT ${COLUMNS}, $2::bigint, $3::text FROM t RETURNING bytes`,
    [id, failedAt, reason],
  );
  const row = rows[0];
  if (row === undefined) return { messages: 0, bytes: 0, deadLetters: 0 };
  return { messages: -1, bytes: -Number(row.bytes), deadLetters: 1 - (stale.rowCount ?? 0) };
}

/** Moves dead letters back into the queue, with new seq values; returns how many. */
export async function retry(
  tx: Tx,
  ids: readonly string[] | undefined,
  now: number,
): Promise<{ count: number; delta: Delta }> {
  // ORDER BY seq: retried messages keep their relative order at the end of their lanes.
  // ON CONFLICT DO NOTHING: an id already queued again is not queued twice.
  const { rows } = await run(
    tx,
    "retry",
    `WITH moved AS (
       INSERT INTO messages (${KEPT}, created_at)
       SELECT ${KEPT}, $2::bigint FROM dead_letters WHERE ${SELECTED} ORDER BY seq
       ON CONFLICT (id) DO NOTHING RETURNING bytes)
     SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b FROM moved`,
    [ids ?? null, now],
  );
  const count = await purge(tx, ids);
  const moved = { n: Number(rows[0]?.n ?? 0), b: Number(rows[0]?.b ?? 0) };
  return { count, delta: { messages: moved.n, bytes: moved.b, deadLetters: -count } };
}

/** Deletes dead letters; returns how many. */
export async function purge(tx: Tx, ids: readonly string[] | undefined): Promise<number> {
  const r = await run(tx, "purge", `DELETE FROM dead_letters WHERE ${SELECTED}`, [ids ?? null]);
  return r.rowCount ?? 0;
}

/** Up to `limit` (null: all) messages of the lane after `afterSeq`, in order. */
export async function pending(
  tx: Tx,
  lane: Lane,
  limit: number | null,
  afterSeq: number,
): Promise<SpooledMessage[]> {
  const { rows } = await run(
    tx,
    "pending",
    `SELECT ${COLUMNS} FROM messages WHERE room = $1 AND nick = $2 AND seq > $3
     ORDER BY seq LIMIT $4`,
    [lane.room, lane.nick, afterSeq, limit],
  );
  return rows.map(toMessage);
}

/**
 * The sender's read (Spool.claim): as `pending`, and one statement raises the lane's send
 * mark to the last seq it hands out, logging the raise at `at`; autocommit, so the mark
 * is committed before the rows reach the sender (migration 3). With `fence`, none unless
 * its token is still the account's lease token, unexpired by the database's clock
 * (`postgres-lease.ts`), checked by the same statement. The EXISTS names no column of
 * messages: the planner runs it once, before the scan.
 */
export async function claim(
  tx: Tx,
  lane: Lane,
  limit: number | null,
  afterSeq: number,
  at: number,
  fence?: LeaseFence,
): Promise<SpooledMessage[]> {
  const leased =
    fence === undefined
      ? ""
      : "AND EXISTS (SELECT 1 FROM leases WHERE account = $6 AND token = $7 AND expires_at > now())";
  const { rows } = await run(
    tx,
    fence === undefined ? "claim" : "claim_fenced",
    `WITH claimed AS (
       SELECT ${COLUMNS} FROM messages WHERE room = $1 AND nick = $2 AND seq > $3 ${leased}
       ORDER BY seq LIMIT $4),
     marked AS (
       INSERT INTO send_marks AS s (room, nick, upto)
       SELECT $1, $2, max(seq) FROM claimed HAVING count(*) > 0
       ON CONFLICT (room, nick) DO UPDATE SET upto = excluded.upto WHERE s.upto < excluded.upto
       RETURNING upto),
     logged AS (
       INSERT INTO send_mark_log (room, nick, upto, at) SELECT $1, $2, upto, $5 FROM marked
       ON CONFLICT DO NOTHING)
     SELECT * FROM claimed ORDER BY seq`,
    fence === undefined
      ? [lane.room, lane.nick, afterSeq, limit, at]
      : [lane.room, lane.nick, afterSeq, limit, at, fence.account, fence.token],
  );
  return rows.map(toMessage);
}

/** When the lane's mark first covered `seq` (the first logged raise at or above it), if logged. */
export async function sentSince(tx: Tx, lane: Lane, seq: number): Promise<number | undefined> {
  const { rows } = await run(
    tx,
    "sentsince",
    `SELECT at FROM send_mark_log WHERE room = $1 AND nick = $2 AND upto >= $3
     ORDER BY upto LIMIT 1`,
    [lane.room, lane.nick, seq],
  );
  return rows[0] === undefined ? undefined : Number(rows[0].at);
}

/** The lane's send mark: the highest seq a claim handed out (0: none ever). */
export async function sentUpTo(tx: Tx, lane: Lane): Promise<number> {
  const { rows } = await run(
    tx,
    "sentupto",
    "SELECT upto FROM send_marks WHERE room = $1 AND nick = $2",
    [lane.room, lane.nick],
  );
  return rows[0] === undefined ? 0 : Number(rows[0].upto);
}

/** Lanes with at least one message, in byte order. */
export async function lanes(tx: Tx): Promise<Lane[]> {
  // A loose index scan (https://wiki.postgresql.org/wiki/Loose_indexscan): one index seek
  // per lane along (room, nick, seq), where SELECT DISTINCT would read every queued row.
  const { rows } = await run(
    tx,
    "lanes",
    `WITH RECURSIVE l (room, nick) AS (
       (SELECT room, nick FROM messages ORDER BY room, nick LIMIT 1)
       UNION ALL
       SELECT n.room, n.nick FROM l, LATERAL (
         SELECT room, nick FROM messages m WHERE (m.room, m.nick) > (l.room, l.nick)
         ORDER BY room, nick LIMIT 1) n)
     SELECT room, nick FROM l`,
    [],
  );
  return rows.map((r) => ({ room: String(r.room), nick: String(r.nick) }));
}

/** Dead letters, oldest first; all when `limit` is null. */
export async function listDead(tx: Tx, limit: number | null): Promise<DeadLetter[]> {
  const { rows } = await run(
    tx,
    "listdead",
    `SELECT ${COLUMNS}, failed_at, reason FROM dead_letters ORDER BY failed_at, seq LIMIT $1`,
    [limit],
  );
  return rows.map(toDeadLetter);
}
