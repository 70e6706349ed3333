/**
 * The SQL of what the SQLite spool remembers beside the queue (issue 13): dedupe claims
 * and thread anchors, prepared once per connection with the queue's statements. Whether a
 * claim or an anchor still holds is decided by `expiry.ts`, as in the memory spool.
 */
import type { DatabaseSync } from "node:sqlite";
import { ANCHOR_IDLE_TTL_MS, ANCHOR_RESOLVED_TTL_MS, anchorLive, claimLive } from "./expiry.ts";
import type { DedupeClaim, EnqueueOnce, ThreadAnchor } from "./types.ts";

/** What `findClaim` returns for a key claimed by an earlier post. */
export type Duplicate = Extract<EnqueueOnce, { duplicate: true }>;

/** Prepares the dedupe and thread-anchor statements on `db`. */
export function prepareClaims(db: DatabaseSync) {
  const s = {
    claim: db.prepare("SELECT post_id, ids, expires_at FROM dedupe WHERE route = ? AND key = ?"),
    // REPLACE: the row found, if any, was expired; a live one is answered, never replaced.
    putClaim: db.prepare(
      "INSERT OR REPLACE INTO dedupe (route, key, post_id, ids, expires_at) VALUES (?, ?, ?, ?, ?)",
    ),
    queued: db.prepare("SELECT id FROM messages WHERE id IN (SELECT value FROM json_each(?))"),
    dead: db.prepare("SELECT id FROM dead_letters WHERE id IN (SELECT value FROM json_each(?))"),
    sweepClaims: db.prepare("DELETE FROM dedupe WHERE expires_at <= ?"),
    anchor: db.prepare(
      "SELECT stanza_id, occupant, quote, resolved_at, touched_at FROM threads WHERE room = ? AND grp = ?",
    ),
    // ?4 and ?5 are the oldest touched_at and resolved_at still kept: `anchorLive` in SQL.
    touchAnchor: db.prepare(
      "UPDATE threads SET touched_at = ?3 WHERE room = ?1 AND grp = ?2 AND resolved_at IS NULL AND touched_at > ?4",
    ),
    putAnchor: db.prepare(
      `INSERT OR REPLACE INTO threads (room, grp, stanza_id, occupant, quote, resolved_at, touched_at)
       VALUES (?, ?, ?, ?, ?, NULL, ?)`,
    ),
    resolveAnchor: db.prepare(
      `UPDATE threads SET resolved_at = coalesce(resolved_at, ?3), touched_at = ?4
       WHERE room = ?1 AND grp = ?2 AND touched_at > ?5 AND (resolved_at IS NULL OR resolved_at > ?6)`,
    ),
    sweepAnchors: db.prepare("DELETE FROM threads WHERE touched_at <= ? OR resolved_at <= ?"),
  };
  const ids = (json: string) => new Set(s.queued.all(json).map((r) => String(r.id)));
  const deadIds = (json: string) => new Set(s.dead.all(json).map((r) => String(r.id)));

  return {
    /** The earlier post that holds `claim`'s key at `now`, with where its messages are now. */
    findClaim(claim: DedupeClaim, now: number): Duplicate | undefined {
      const row = s.claim.get(claim.route, claim.key);
      if (row === undefined || !claimLive(Number(row.expires_at), now)) return undefined;
      const json = String(row.ids);
      const all = (JSON.parse(json) as unknown[]).map(String);
      const queued = ids(json);
      const dead = deadIds(json);
      return {
        duplicate: true,
        postId: String(row.post_id),
        ids: all,
        pending: all.filter((id) => queued.has(id)),
        dead: all.filter((id) => dead.has(id)),
      };
    },
    /** The id of the post that holds a live claim of (route, key) at `now`. */
    claimedBy(route: string, key: string, now: number): string | undefined {
      const row = s.claim.get(route, key);
      return row === undefined || !claimLive(Number(row.expires_at), now)
        ? undefined
        : String(row.post_id);
    },
    /** Records that the post `postId` (its messages `messageIds`) holds `claim`'s key. */
    putClaim(claim: DedupeClaim, postId: string, messageIds: readonly string[]): void {
      s.putClaim.run(claim.route, claim.key, postId, JSON.stringify(messageIds), claim.expiresAt);
    },
    /** The live anchor of (room, group) at `now`. */
    anchor(room: string, group: string, now: number): ThreadAnchor | undefined {
      const r = s.anchor.get(room, group);
      if (r === undefined) return undefined;
      const resolvedAt = r.resolved_at === null ? undefined : Number(r.resolved_at);
      if (!anchorLive(Number(r.touched_at), resolvedAt, now)) return undefined;
      return {
        stanzaId: String(r.stanza_id),
        occupant: String(r.occupant),
        quote: String(r.quote),
        resolvedAt,
      };
    },
    /** Keeps a live unresolved anchor (touched at `now`); otherwise stores `a`. */
    recordAnchor(room: string, group: string, a: Omit<ThreadAnchor, "resolvedAt">, now: number) {
      const kept = s.touchAnchor.run(room, group, now, now - ANCHOR_IDLE_TTL_MS);
      if (Number(kept.changes) > 0) return;
      s.putAnchor.run(room, group, a.stanzaId, a.occupant, a.quote, now);
    },
    /** Marks a live anchor resolved at `at` (unless it was already), touched at `now`. */
    resolveAnchor(room: string, group: string, at: number, now: number): void {
      s.resolveAnchor.run(
        room,
        group,
        at,
        now,
        now - ANCHOR_IDLE_TTL_MS,
        now - ANCHOR_RESOLVED_TTL_MS,
      );
    },
    /** Deletes the claims and anchors that no longer hold at `now`. */
    sweep(now: number): void {
      s.sweepClaims.run(now);
      s.sweepAnchors.run(now - ANCHOR_IDLE_TTL_MS, now - ANCHOR_RESOLVED_TTL_MS);
    },
  };
}
