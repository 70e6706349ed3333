/**
 * The SQL of what the PostgreSQL spool remembers beside the queue (issue 13): dedupe
 * claims and thread anchors, as sqlite-claims.ts keeps them. Whether a claim or an anchor
 * still holds is decided by `expiry.ts`, as in the other spools.
 */
import {
  ANCHOR_IDLE_TTL_MS,
  ANCHOR_RESOLVED_TTL_MS,
  anchorLive,
  claimLive,
  MARK_RAISE_TTL_MS,
} from "./expiry.ts";
import type { Tx } from "./postgres-batch.ts";
import { run } from "./postgres-statements.ts";
import type { Duplicate } from "./sqlite-claims.ts";
import type { DedupeClaim, ThreadAnchor } from "./types.ts";

/** The earlier post that holds `claim`'s key at `now`, with where its messages are now. */
export async function findClaim(
  tx: Tx,
  claim: DedupeClaim,
  now: number,
): Promise<Duplicate | undefined> {
  const { rows } = await run(
    tx,
    "findclaim",
    `SELECT d.post_id, d.ids, d.expires_at,
            ARRAY(SELECT id FROM messages WHERE id = ANY (d.ids)) AS queued,
            ARRAY(SELECT id FROM dead_letters WHERE id = ANY (d.ids)) AS dead
     FROM dedupe d WHERE d.route = $1 AND d.key = $2`,
    [claim.route, claim.key],
  );
  const row = rows[0];
  if (row === undefined || !claimLive(Number(row.expires_at), now)) return undefined;
  const all = (row.ids as unknown[]).map(String);
  const queued = new Set((row.queued as unknown[]).map(String));
  const dead = new Set((row.dead as unknown[]).map(String));
  return {
    duplicate: true,
    postId: String(row.post_id),
    ids: all,
    pending: all.filter((id) => queued.has(id)),
    dead: all.filter((id) => dead.has(id)),
  };
}

/** The id of the post that holds a live claim of (route, key) at `now`. */
export async function claimedBy(
  tx: Tx,
  route: string,
  key: string,
  now: number,
): Promise<string | undefined> {
  const { rows } = await run(
    tx,
    "claimed",
    "SELECT post_id, expires_at FROM dedupe WHERE route = $1 AND key = $2",
    [route, key],
  );
  const row = rows[0];
  return row === undefined || !claimLive(Number(row.expires_at), now)
    ? undefined
    : String(row.post_id);
}

/** Records that the post `postId` (its messages `ids`) holds `claim`'s key. */
export async function putClaim(
  tx: Tx,
  claim: DedupeClaim,
  postId: string,
  ids: readonly string[],
): Promise<void> {
  // The row found, if any, was expired (findClaim ran first, under the write lock): a live
  // one is answered, never replaced.
  await run(
    tx,
    "putclaim",
    `INSERT INTO dedupe (route, key, post_id, ids, expires_at) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (route, key) DO UPDATE
     SET post_id = EXCLUDED.post_id, ids = EXCLUDED.ids, expires_at = EXCLUDED.expires_at`,
    [claim.route, claim.key, postId, ids, claim.expiresAt],
  );
}

/** The live anchor of (room, group) at `now`. */
export async function anchor(
  tx: Tx,
  room: string,
  group: string,
  now: number,
): Promise<ThreadAnchor | undefined> {
  const { rows } = await run(
    tx,
    "anchor",
    "SELECT stanza_id, occupant, quote, resolved_at, touched_at FROM threads WHERE room = $1 AND grp = $2",
    [room, group],
  );
  const r = rows[0];
  if (r === undefined) return undefined;
  const resolvedAt = r.resolved_at === null ? undefined : Number(r.resolved_at);
  if (!anchorLive(Number(r.touched_at), resolvedAt, now)) return undefined;
  return {
    stanzaId: String(r.stanza_id),
    occupant: String(r.occupant),
    quote: String(r.quote),
    resolvedAt,
  };
}

/** Keeps a live unresolved anchor (touched at `now`); otherwise stores `a`. */
export async function recordAnchor(
  tx: Tx,
  room: string,
  group: string,
  a: Omit<ThreadAnchor, "resolvedAt">,
  now: number,
): Promise<void> {
  // One statement: the UPDATE keeps a live unresolved anchor; only when it kept none does
  // the INSERT store `a`, replacing a resolved or expired row. $7 is the oldest touched_at
  // still kept (`anchorLive` in SQL).
  await run(
    tx,
    "recordanchor",
    `WITH kept AS (
       UPDATE threads SET touched_at = $6
       WHERE room = $1 AND grp = $2 AND resolved_at IS NULL AND touched_at > $7
       RETURNING 1)
     INSERT INTO threads (room, grp, stanza_id, occupant, quote, resolved_at, touched_at)
     SELECT $1, $2, $3::text, $4::text, $5::text, NULL::bigint, $6 WHERE NOT EXISTS (SELECT 1 FROM kept)
     ON CONFLICT (room, grp) DO UPDATE
     SET stanza_id = EXCLUDED.stanza_id, occupant = EXCLUDED.occupant, quote = EXCLUDED.quote,
         resolved_at = NULL, touched_at = EXCLUDED.touched_at`,
    [room, group, a.stanzaId, a.occupant, a.quote, now, now - ANCHOR_IDLE_TTL_MS],
  );
}

/** Marks a live anchor resolved at `at` (unless it was already), touched at `now`. */
export async function resolveAnchor(
  tx: Tx,
  room: string,
  group: string,
  at: number,
  now: number,
): Promise<void> {
  await run(
    tx,
    "resolveanchor",
    `UPDATE threads SET resolved_at = coalesce(resolved_at, $3), touched_at = $4
     WHERE room = $1 AND grp = $2 AND touched_at > $5 AND (resolved_at IS NULL OR resolved_at > $6)`,
    [room, group, at, now, now - ANCHOR_IDLE_TTL_MS, now - ANCHOR_RESOLVED_TTL_MS],
  );
}

/** Deletes the claims and anchors that no longer hold at `now`, and the send marks' raises below each lane's oldest queued message. */
export async function sweep(tx: Tx, now: number): Promise<void> {
  await run(
    tx,
    "sweepmarks",
    `DELETE FROM send_mark_log l WHERE l.at <= $1 OR l.upto < coalesce(
       (SELECT min(seq) FROM messages m WHERE m.room = l.room AND m.nick = l.nick),
       9223372036854775807)`,
    [now - MARK_RAISE_TTL_MS],
  );
  await run(tx, "sweepclaims", "DELETE FROM dedupe WHERE expires_at <= $1", [now]);
  await run(tx, "sweepanchors", "DELETE FROM threads WHERE touched_at <= $1 OR resolved_at <= $2", [
    now - ANCHOR_IDLE_TTL_MS,
    now - ANCHOR_RESOLVED_TTL_MS,
  ]);
}
