/**
 * The SQLite spool's send marks (migration 3): per lane, at least the highest seq its
 * sender may have sent, so that a rejoin after a crash looks in the room only for those
 * (`Spool.sentUpTo`). A mark must be durable before anything it covers is sent, and each
 * write of one costs an fsync, so it is written ahead of need, two ways:
 * - a post into a lane with a short unmarked tail (an idle lane, or one that keeps up)
 *   marks its messages in its own commit, at no cost;
 * - a claim past the mark (a lane draining a backlog) marks AHEAD messages further, so
 *   that one write covers many claims.
 * Either way the mark runs at most about 2 × AHEAD messages ahead of what was sent.
 */
import type { DatabaseSync } from "node:sqlite";
import { MARK_RAISE_TTL_MS } from "./expiry.ts";
import { rollback } from "./migrations.ts";
import type { Lane } from "./types.ts";

/** How far ahead a mark is written: messages of the lane beyond the last one claimed. */
export const AHEAD = 256;

/** Prepares the mark statements on `db`. Times `at` are the spool's clock, ms. */
export function prepareMarks(db: DatabaseSync) {
  const mark = db.prepare("SELECT upto FROM send_marks WHERE room = ? AND nick = ?");
  const raise = db.prepare(
    `INSERT INTO send_marks (room, nick, upto) VALUES (?1, ?2, ?3)
     ON CONFLICT (room, nick) DO UPDATE SET upto = excluded.upto WHERE excluded.upto > upto`,
  );
  const log = db.prepare(
    "INSERT OR IGNORE INTO send_mark_log (room, nick, upto, at) VALUES (?, ?, ?, ?)",
  );
  // The first raise that covered `?3`: the log's upto only grows with its time.
  const since = db.prepare(
    "SELECT at FROM send_mark_log WHERE room = ? AND nick = ? AND upto >= ? ORDER BY upto LIMIT 1",
  );
  const sweepLog = db.prepare(
    `DELETE FROM send_mark_log WHERE at <= ? OR upto < coalesce(
       (SELECT min(seq) FROM messages m WHERE m.room = send_mark_log.room AND m.nick = send_mark_log.nick),
       9223372036854775807)`,
  );
  // The next `?4` messages of the lane after `?3`: how many, and the last one's seq.
  const after = db.prepare(
    `SELECT count(*) AS n, max(seq) AS top FROM (
       SELECT seq FROM messages WHERE room = ?1 AND nick = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4)`,
  );
  const markOf = (lane: Lane) => Number(mark.get(lane.room, lane.nick)?.upto ?? 0);
  /** Raises the mark to `upto` and logs it at `at`, inside the caller's transaction. */
  const raiseTo = (lane: Lane, upto: number, at: number) => {
    if (Number(raise.run(lane.room, lane.nick, upto).changes) > 0) {
      log.run(lane.room, lane.nick, upto, at);
    }
  };
  return {
    /** The lane's mark (0: never marked). */
    mark: markOf,
    /** When the mark first covered `seq`, if the log still says. */
    markedSince(lane: Lane, seq: number): number | undefined {
      const row = since.get(lane.room, lane.nick, seq);
      return row === undefined ? undefined : Number(row.at);
    },
    /**
     * After claiming up to `last` (outside a transaction): unless the mark covers it
     * already, raises it to AHEAD messages past `last`, in a commit of its own.
     */
    markClaimed(lane: Lane, last: number, at: number): void {
      if (last <= markOf(lane)) return;
      const next = after.get(lane.room, lane.nick, last, AHEAD);
      db.exec("BEGIN IMMEDIATE");
      try {
        raiseTo(lane, Math.max(last, Number(next?.top ?? 0)), at);
        db.exec("COMMIT");
      } catch (err) {
        rollback(db);
        throw err;
      }
    },
    /**
     * Inside a post's commit: when at most AHEAD of the lane's messages are past its mark,
     * marks them all (they will be claimed soon, and this commit is fsynced anyway).
     */
    markShortTail(lane: Lane, at: number): void {
      const tail = after.get(lane.room, lane.nick, markOf(lane), AHEAD + 1);
      const n = Number(tail?.n ?? 0);
      if (n > 0 && n <= AHEAD) raiseTo(lane, Number(tail?.top), at);
    },
    /** Inside a commit: forgets the raises below each lane's oldest queued message, and those older than MARK_RAISE_TTL_MS. */
    sweepMarks(at: number): void {
      sweepLog.run(at - MARK_RAISE_TTL_MS);
    },
  };
}
