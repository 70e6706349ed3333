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
import type { Lane } from "./types.ts";

/** How far ahead a mark is written: messages of the lane beyond the last one claimed. */
export const AHEAD = 256;

/** Prepares the mark statements on `db`. */
export function prepareMarks(db: DatabaseSync) {
  const mark = db.prepare("SELECT upto FROM send_marks WHERE room = ? AND nick = ?");
  const raise = db.prepare(
    `INSERT INTO send_marks (room, nick, upto) VALUES (?, ?, ?)
     ON CONFLICT (room, nick) DO UPDATE SET upto = max(upto, excluded.upto)`,
  );
  // The next `?4` messages of the lane after `?3`: how many, and the last one's seq.
  const after = db.prepare(
    `SELECT count(*) AS n, max(seq) AS top FROM (
       SELECT seq FROM messages WHERE room = ?1 AND nick = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4)`,
  );
  const markOf = (lane: Lane) => Number(mark.get(lane.room, lane.nick)?.upto ?? 0);
  return {
    /** The lane's mark (0: never marked). */
    mark: markOf,
    /**
     * After claiming up to `last` (outside a transaction): unless the mark covers it
     * already, raises it to AHEAD messages past `last`, in a commit of its own.
     */
    markClaimed(lane: Lane, last: number): void {
      if (last <= markOf(lane)) return;
      const next = after.get(lane.room, lane.nick, last, AHEAD);
      raise.run(lane.room, lane.nick, Math.max(last, Number(next?.top ?? 0)));
    },
    /**
     * Inside a post's commit: when at most AHEAD of the lane's messages are past its mark,
     * marks them all (they will be claimed soon, and this commit is fsynced anyway).
     */
    markShortTail(lane: Lane): void {
      const tail = after.get(lane.room, lane.nick, markOf(lane), AHEAD + 1);
      const n = Number(tail?.n ?? 0);
      if (n > 0 && n <= AHEAD) raise.run(lane.room, lane.nick, Number(tail?.top));
    },
  };
}
