/**
 * What the memory spool (`memory.ts`) stores, and the row operations it shares: each one
 * does to the maps what the SQLite spool's statements do to its tables.
 */
import { anchorLive, claimLive, MARK_RAISE_TTL_MS } from "./expiry.ts";
import type {
  DeadLetter,
  DedupeClaim,
  EnqueueOnce,
  NewMessage,
  SpooledMessage,
  ThreadAnchor,
} from "./types.ts";

/** A dedupe claim as stored: the `dedupe` table's row. */
interface StoredClaim {
  readonly postId: string;
  readonly ids: readonly string[];
  readonly expiresAt: number;
}

/** A thread anchor as stored: the `threads` table's row. */
interface StoredAnchor extends ThreadAnchor {
  readonly touchedAt: number;
}

/**
 * What a memory spool stores. It outlives `close()`: a spool opened again over it finds
 * what was committed, and spools open over one store at once see each other's commits, as
 * processes sharing a SQLite file do. Change it only through a spool.
 */
export interface MemoryStore {
  /** Queued messages by id, in seq order (a new seq is always the highest). */
  readonly messages: Map<string, SpooledMessage>;
  readonly dead: Map<string, DeadLetter>;
  /** Dedupe claims by `keyOf(route, key)`, expired ones until a sweep. */
  readonly claims: Map<string, StoredClaim>;
  /** Thread anchors by `keyOf(room, group)`, expired ones until a sweep. */
  readonly anchors: Map<string, StoredAnchor>;
  /** Send marks by `keyOf(room, nick)`: the last seq `claim` returned for the lane. */
  readonly marks: Map<string, number>;
  /** Each raise of a lane's mark and when, oldest first (the `send_mark_log` table). */
  readonly markLog: Map<string, Array<{ readonly upto: number; readonly at: number }>>;
  /** UTF-8 bytes of the queued bodies. */
  bytes: number;
  /** The last seq handed out; like AUTOINCREMENT, never handed out again. */
  lastSeq: number;
}

/** An empty store. */
export function createMemoryStore(): MemoryStore {
  return {
    messages: new Map(),
    dead: new Map(),
    claims: new Map(),
    anchors: new Map(),
    marks: new Map(),
    markLog: new Map(),
    bytes: 0,
    lastSeq: 0,
  };
}

/** The map key of a two-part primary key. */
export const keyOf = (a: string, b: string) => JSON.stringify([a, b]);

export const utf8 = (s: string) => Buffer.byteLength(s, "utf8");

/** SQLite's BINARY collation compares UTF-8 bytes; JS `<` compares UTF-16 code units. */
export const binary = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** SQLite's LIMIT: a non-integer is refused ("datatype mismatch"), a negative means none. */
export function limitOf(limit: number | undefined): number {
  if (limit === undefined) return Number.POSITIVE_INFINITY;
  if (!Number.isSafeInteger(limit)) throw new RangeError(`datatype mismatch: LIMIT ${limit}`);
  return limit < 0 ? Number.POSITIVE_INFINITY : limit;
}

/** Queues a message as SQLite stores it (its columns only), with a new seq. */
export function insert(store: MemoryStore, m: NewMessage, createdAt: number): number {
  const { postId, id, route, room, nick, body, kind, thread } = m;
  const seq = ++store.lastSeq;
  const row: { -readonly [K in keyof SpooledMessage]: SpooledMessage[K] } = {
    postId,
    id,
    route,
    room,
    nick,
    body,
    seq,
    createdAt,
    attempts: 0,
    lastError: undefined,
  };
  // Absent when NULL in SQLite: as the NewMessage that was queued.
  if (kind !== undefined) row.kind = kind;
  if (thread !== undefined) row.thread = { group: thread.group, status: thread.status };
  store.messages.set(id, row);
  store.bytes += utf8(body);
  return seq;
}

/** Removes a queued message and returns it. */
export function take(store: MemoryStore, id: string): SpooledMessage | undefined {
  const m = store.messages.get(id);
  if (m === undefined) return undefined;
  store.messages.delete(id);
  store.bytes -= utf8(m.body);
  return m;
}

/** Removes the dead letters selected by `ids` (all when undefined); returns them in seq order. */
export function takeDead(store: MemoryStore, ids: readonly string[] | undefined): DeadLetter[] {
  const wanted = ids === undefined ? undefined : new Set(ids);
  const taken = [...store.dead.values()].filter((d) => wanted?.has(d.id) ?? true);
  for (const d of taken) store.dead.delete(d.id);
  return taken.sort((a, b) => a.seq - b.seq);
}

/** The earlier post that holds `claim`'s key at `now`, with where its messages are now. */
export function findClaim(
  store: MemoryStore,
  claim: DedupeClaim,
  now: number,
): Extract<EnqueueOnce, { duplicate: true }> | undefined {
  const row = store.claims.get(keyOf(claim.route, claim.key));
  if (row === undefined || !claimLive(row.expiresAt, now)) return undefined;
  return {
    duplicate: true,
    postId: row.postId,
    ids: [...row.ids],
    pending: row.ids.filter((id) => store.messages.has(id)),
    dead: row.ids.filter((id) => store.dead.has(id)),
  };
}

/** The live anchor of (room, group) at `now`. */
export function findAnchor(
  store: MemoryStore,
  room: string,
  group: string,
  now: number,
): ThreadAnchor | undefined {
  const a = store.anchors.get(keyOf(room, group));
  if (a === undefined || !anchorLive(a.touchedAt, a.resolvedAt, now)) return undefined;
  return { stanzaId: a.stanzaId, occupant: a.occupant, quote: a.quote, resolvedAt: a.resolvedAt };
}

/** Deletes the claims and anchors that no longer hold at `now`, and the mark raises below each lane's oldest queued message. */
export function sweep(store: MemoryStore, now: number): void {
  for (const [k, c] of store.claims) if (!claimLive(c.expiresAt, now)) store.claims.delete(k);
  for (const [k, a] of store.anchors) {
    if (!anchorLive(a.touchedAt, a.resolvedAt, now)) store.anchors.delete(k);
  }
  const oldest = new Map<string, number>();
  for (const m of store.messages.values()) {
    const k = keyOf(m.room, m.nick);
    if (!oldest.has(k)) oldest.set(k, m.seq); // in seq order: the first is the oldest
  }
  for (const [k, log] of store.markLog) {
    const kept = log.filter(
      (r) =>
        r.at > now - MARK_RAISE_TTL_MS && r.upto >= (oldest.get(k) ?? Number.POSITIVE_INFINITY),
    );
    if (kept.length === 0) store.markLog.delete(k);
    else store.markLog.set(k, kept);
  }
}
