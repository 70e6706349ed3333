/**
 * The SQL of the SQLite spool, prepared once per connection. Each write returns how it
 * changed the message, byte and dead-letter counts, so that `sqlite.ts` can keep those
 * counts in memory and apply them only once the transaction commits.
 */
import type { DatabaseSync } from "node:sqlite";
import { metaOf, toDeadLetter, toMessage } from "./rows.ts";
import { prepareClaims } from "./sqlite-claims.ts";
import { prepareMarks } from "./sqlite-marks.ts";
import type { DeadLetter, Lane, NewMessage, SpooledMessage } from "./types.ts";

/** How one write changes the spool's counts. */
export interface Delta {
  messages: number;
  bytes: number;
  deadLetters: number;
}

/** The spool's counts as stored. */
export type Counts = Delta;

const COLUMN_NAMES = [
  ...["seq", "id", "post_id", "route", "room", "nick", "body", "bytes", "created_at"],
  ...["attempts", "last_error", "meta"],
];
const COLUMNS = COLUMN_NAMES.join(", ");
/** The columns a message keeps when it is queued again from the dead letters. */
const KEPT = "id, post_id, route, room, nick, body, bytes, meta";
// `?1` is a JSON array of ids, or NULL for "all of them": one prepared statement serves
// any number of ids (https://www.sqlite.org/json1.html#jeach).
const SELECTED = "(?1 IS NULL OR id IN (SELECT value FROM json_each(?1)))";

/** Prepares every statement the spool runs on `db`. */
export function prepareStatements(db: DatabaseSync) {
  const s = {
    count: db.prepare("SELECT count(*) AS n, total(bytes) AS b FROM messages"),
    countDead: db.prepare("SELECT count(*) AS n FROM dead_letters"),
    // Changes only when another connection (the `spool` CLI) committed
    // (https://www.sqlite.org/pragma.html#pragma_data_version).
    dataVersion: db.prepare("PRAGMA data_version"),
    // AUTOINCREMENT keeps the highest seq ever handed out here (https://www.sqlite.org/autoinc.html).
    lastSeq: db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'messages'"),
    userVersion: db.prepare("PRAGMA user_version"),
    insert: db.prepare(
      "INSERT INTO messages (id, post_id, route, room, nick, body, bytes, created_at, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    remove: db.prepare("DELETE FROM messages WHERE id = ? RETURNING bytes"),
    fail: db.prepare("UPDATE messages SET attempts = attempts + 1, last_error = ? WHERE id = ?"),
    unDead: db.prepare("DELETE FROM dead_letters WHERE id = ?"),
    take: db.prepare(`DELETE FROM messages WHERE id = ? RETURNING ${COLUMNS}`),
    toDead: db.prepare(
      `INSERT INTO dead_letters (${COLUMNS}, failed_at, reason) VALUES (${COLUMN_NAMES.map(() => "?").join(", ")}, ?, ?)`,
    ),
    // ORDER BY seq: retried messages keep their relative order at the end of their lanes.
    // OR IGNORE: an id already queued again is not queued twice.
    retry: db.prepare(
      `INSERT OR IGNORE INTO messages (${KEPT}, created_at)
       SELECT ${KEPT}, ?2 FROM dead_letters WHERE ${SELECTED}
       ORDER BY seq RETURNING bytes`,
    ),
    purge: db.prepare(`DELETE FROM dead_letters WHERE ${SELECTED}`),
    pending: db.prepare(
      `SELECT ${COLUMNS} FROM messages WHERE room = ? AND nick = ? AND seq > ? ORDER BY seq LIMIT ?`,
    ),
    // Lanes are found by hopping along the (room, nick, seq) index, one seek per lane,
    // instead of SELECT DISTINCT, which reads every queued row: with 100,000 messages
    // in 5 lanes that is 4 ms against 0.03 ms, and the delivery loop asks on every scan.
    firstLane: db.prepare("SELECT room, nick FROM messages ORDER BY room, nick LIMIT 1"),
    nextNick: db.prepare(
      "SELECT room, nick FROM messages WHERE room = ? AND nick > ? ORDER BY nick LIMIT 1",
    ),
    nextRoom: db.prepare(
      "SELECT room, nick FROM messages WHERE room > ? ORDER BY room, nick LIMIT 1",
    ),
    listDead: db.prepare(
      `SELECT ${COLUMNS}, failed_at, reason FROM dead_letters ORDER BY failed_at, seq LIMIT ?`,
    ),
  };
  const idList = (ids: readonly string[] | undefined) =>
    ids === undefined ? null : JSON.stringify(ids);

  return {
    ...prepareClaims(db),
    ...prepareMarks(db),
    /** The stored counts, for the in-memory copy at open and after another process wrote. */
    counts(): Counts {
      const m = s.count.get() ?? {};
      const d = s.countDead.get() ?? {};
      return { messages: Number(m.n ?? 0), bytes: Number(m.b ?? 0), deadLetters: Number(d.n ?? 0) };
    },
    /** Another connection's commits change this number; this connection's never do. */
    dataVersion(): number {
      return Number(s.dataVersion.get()?.data_version ?? 0);
    },
    /** The highest seq handed out so far (0 before the first message). */
    lastSeq(): number {
      return Number(s.lastSeq.get()?.seq ?? 0);
    },
    /**
     * Writes the database header (user_version, unchanged) inside the open transaction:
     * the smallest real write, which fails as a post would on a read-only file, where an
     * empty BEGIN IMMEDIATE … COMMIT succeeds.
     */
    touch(): void {
      const version = Math.trunc(Number(s.userVersion.get()?.user_version ?? 0));
      db.exec(`PRAGMA user_version = ${version}`);
    },
    /** Inserts the messages of one post; `bytes[i]` is the UTF-8 size of message i. */
    insert(messages: readonly NewMessage[], bytes: readonly number[], createdAt: number) {
      return messages.map((m, i): SpooledMessage => {
        const size = bytes[i] ?? 0;
        const r = s.insert.run(
          m.id,
          m.postId,
          m.route,
          m.room,
          m.nick,
          m.body,
          size,
          createdAt,
          metaOf(m),
        );
        return {
          ...m,
          seq: Number(r.lastInsertRowid),
          createdAt,
          attempts: 0,
          lastError: undefined,
        };
      });
    },
    /** Removes delivered messages. */
    remove(ids: readonly string[]): Delta {
      const d = { messages: 0, bytes: 0, deadLetters: 0 };
      for (const id of ids) {
        const row = s.remove.get(id);
        if (row === undefined) continue;
        d.messages -= 1;
        d.bytes -= Number(row.bytes);
      }
      return d;
    },
    /** Counts a failed attempt. */
    fail(id: string, error: string): void {
      s.fail.run(error, id);
    },
    /** Moves one message to the dead letters. */
    toDead(id: string, reason: string, failedAt: number): Delta {
      const r = s.take.get(id);
      if (r === undefined) return { messages: 0, bytes: 0, deadLetters: 0 };
      // A stale dead letter with the same id (only possible if an id was reused) is
      // replaced, so that the UNIQUE constraint cannot fail the whole batch.
      const stale = Number(s.unDead.run(id).changes);
      s.toDead.run(...COLUMN_NAMES.map((c) => r[c] ?? null), failedAt, reason);
      return { messages: -1, bytes: -Number(r.bytes), deadLetters: 1 - stale };
    },
    /** Moves dead letters back into the queue, with new seq values; returns how many. */
    retry(ids: readonly string[] | undefined, now: number): { count: number; delta: Delta } {
      const rows = s.retry.all(idList(ids), now);
      const count = Number(s.purge.run(idList(ids)).changes);
      const bytes = rows.reduce((sum, r) => sum + Number(r.bytes), 0);
      return { count, delta: { messages: rows.length, bytes, deadLetters: -count } };
    },
    /** Deletes dead letters; returns how many. */
    purge(ids: readonly string[] | undefined): number {
      return Number(s.purge.run(idList(ids)).changes);
    },
    /** Up to `limit` messages of the lane after `afterSeq`, in order. */
    pending(lane: Lane, limit: number, afterSeq: number): SpooledMessage[] {
      return s.pending.all(lane.room, lane.nick, afterSeq, limit).map(toMessage);
    },
    /** Lanes with at least one message. */
    lanes(): Lane[] {
      const lanes: Lane[] = [];
      let row = s.firstLane.get();
      while (row !== undefined) {
        const lane = { room: String(row.room), nick: String(row.nick) };
        lanes.push(lane);
        row = s.nextNick.get(lane.room, lane.nick) ?? s.nextRoom.get(lane.room);
      }
      return lanes;
    },
    /** Dead letters, oldest first; all when `limit` is undefined. */
    listDead(limit: number | undefined): DeadLetter[] {
      return s.listDead.all(limit ?? -1).map(toDeadLetter);
    },
  };
}
