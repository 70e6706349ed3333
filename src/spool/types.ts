/**
 * The durable queue between "accepted" and "delivered". Every accepted message is in
 * the spool before any 2xx; it leaves the spool only when its room confirmed it, or
 * into the dead-letter table when it can never be delivered.
 */

/** Which alert group a message belongs to, for threads (issue 13). */
export interface AlertThread {
  /** Opaque key of (route, groupKey): the same for every notification of the group. Hex, ≤ 64 chars. Also used as the XMPP <thread> id. */
  readonly group: string;
  /** The notification's status: "resolved" once the whole group resolved. */
  readonly status: "firing" | "resolved";
}

/** One message to one target (a post to three rooms is three messages). */
export interface NewMessage {
  /** The id the HTTP reply names; shared by the messages of one post. */
  readonly postId: string;
  /** Unique per message: the stanza `id` and XEP-0359 `origin-id`, so also the dedupe key. */
  readonly id: string;
  /** Route name (never the token), for logs and metrics. */
  readonly route: string;
  /** Bare room JID. */
  readonly room: string;
  /** Nick the message is sent as. */
  readonly nick: string;
  /** The rendered message text. */
  readonly body: string;
  /** "text" (default when absent) or "reaction": a XEP-0444 ✅ on the group's first message; body holds the emoji. */
  readonly kind?: "text" | "reaction";
  /** Set when the post was an Alertmanager/Grafana notification on a route with threads. */
  readonly thread?: AlertThread;
}

/** A message in the spool. */
export interface SpooledMessage extends NewMessage {
  /** Global insertion order: within one lane (room + nick) messages go out in `seq` order. */
  readonly seq: number;
  /** When it was accepted, ms since the epoch. */
  readonly createdAt: number;
  /** Delivery attempts so far (sends that were not confirmed). */
  readonly attempts: number;
  /** The last reason a send failed, if any. */
  readonly lastError: string | undefined;
}

/** A message that will not be delivered unless an operator retries it. */
export interface DeadLetter extends SpooledMessage {
  readonly failedAt: number;
  readonly reason: string;
}

/** A post's dedupe key. */
export interface DedupeClaim {
  readonly route: string;
  /** Idempotency-Key header (prefixed by the caller) or a content hash. */
  readonly key: string;
  /** When the key may be forgotten (ms since the epoch): now + DEDUPE_WINDOW. */
  readonly expiresAt: number;
}

/** What `enqueueOnce` did: stored the post, or found the first post with the same claim. */
export type EnqueueOnce =
  | { readonly duplicate: false; readonly messages: readonly SpooledMessage[] }
  | {
      readonly duplicate: true;
      /** The first post's id and message ids. */
      readonly postId: string;
      readonly ids: readonly string[];
      /** Of `ids`: still queued, and dead letters (the rest were delivered). */
      readonly pending: readonly string[];
      readonly dead: readonly string[];
    };

/** The room's record of a group's first message, for replies and the ✅ reaction. */
export interface ThreadAnchor {
  /** XEP-0359 stanza-id the room gave the group's first message (by = the room). */
  readonly stanzaId: string;
  /** The occupant JID that sent it: room/nick (XEP-0461 reply `to`). */
  readonly occupant: string;
  /** The first line of its body, for the quoted fallback. */
  readonly quote: string;
  /** When the group resolved (its resolved message was confirmed), else undefined. */
  readonly resolvedAt: number | undefined;
}

/** A room + nick pair: the unit of ordering. */
export interface Lane {
  readonly room: string;
  readonly nick: string;
}

/** How full the spool is. */
export interface SpoolStats {
  readonly messages: number;
  readonly bytes: number;
  readonly deadLetters: number;
}

/** Whether the spool can take writes now, for `/ready`. */
export interface SpoolHealth {
  /** False from a failed write (read-only or full disk, a lock held too long) until one succeeds, and after close. */
  readonly writable: boolean;
  /** Why not, when not. */
  readonly error?: string;
}

/** Capacity limits; `enqueue` refuses a post that would exceed either. */
export interface SpoolLimits {
  readonly maxMessages: number;
  readonly maxBytes: number;
}

/**
 * A sender's lease (several gateways on one PostgreSQL spool): claims with it return
 * nothing once `token` is no longer `account`'s lease. Spools of one gateway ignore it.
 */
export interface ClaimFence {
  readonly account: string;
  readonly token: number;
}

/**
 * The durable queue. Implementations: SQLite (`sqlite.ts`) and memory (`memory.ts`); the
 * contract tests run against each. Reads are asynchronous, since a database server cannot
 * answer at once. A read sees what is committed: at least every write that resolved before
 * it was called, never a write not yet committed. A read that cannot be answered (closed
 * spool, disk error) rejects, never throws. `stats()` and `health()` stay synchronous:
 * every implementation keeps them in memory.
 */
export interface Spool {
  /**
   * Stores the messages of one post atomically and durably (fsynced) before resolving.
   * Concurrent calls share one transaction and one sync (group commit). Rejects with
   * GatewayError "SPOOL_FULL" (nothing stored) when the limits would be exceeded, or
   * "UNAVAILABLE" on a disk error or after close (nothing stored).
   */
  enqueue(messages: readonly NewMessage[]): Promise<readonly SpooledMessage[]>;
  /**
   * As enqueue, unless an unexpired claim with the same (route, key) exists: then nothing
   * is stored and the first post is described. Atomic with the insert (one transaction;
   * two claims in one group commit: the second is the duplicate). A duplicate is found
   * even when the spool is full (SPOOL_FULL only when the post would be stored); what it
   * reserved against the limits is given back. An empty post stores nothing, no claim either.
   */
  enqueueOnce(messages: readonly NewMessage[], claim: DedupeClaim): Promise<EnqueueOnce>;
  /** The id of the post that holds an unexpired claim of (route, key), if any (for `?dry_run=1`). A read of what is committed. */
  claimed(route: string, key: string): Promise<string | undefined>;
  /** Lanes that hold at least one message. A read of what is committed. */
  lanes(): Promise<Lane[]>;
  /** Up to `limit` messages of a lane with `seq > afterSeq`, in `seq` order. A read of what is committed. */
  pending(lane: Lane, limit: number, afterSeq?: number): Promise<SpooledMessage[]>;
  /**
   * The sender's read: as `pending`, and the lane's send mark (`sentUpTo`) is raised to at
   * least the last seq returned, durably, before it resolves, so that nothing is sent
   * that the mark does not cover. With `fence` (several gateways), nothing (an empty
   * list, the mark unchanged) unless its token is still the account's lease; spools of
   * one gateway ignore it.
   */
  claim(lane: Lane, limit: number, afterSeq: number, fence?: ClaimFence): Promise<SpooledMessage[]>;
  /**
   * The lane's send mark: at least the highest seq `claim` ever returned for it, so no
   * message above it can have been sent, and a rejoin need not look for those in the
   * room. It may be higher (a spool may raise it ahead, to write it less often); 0 when
   * nothing was ever claimed. A read of what is committed.
   */
  sentUpTo(lane: Lane): Promise<number>;
  /**
   * When the lane's send mark first covered `seq` (ms since the epoch, the spool's clock):
   * no message of the lane at or above `seq` was claimed before then. Undefined when the
   * spool does not know (never covered, or covered before the spool kept the times). A
   * read of what is committed.
   */
  sentSince(lane: Lane, seq: number): Promise<number | undefined>;
  /** The room confirmed these: remove them (batched with the next commit; resolves once durable). */
  delivered(ids: readonly string[]): Promise<void>;
  /** Counts a failed attempt and remembers why. */
  recordFailure(id: string, error: string): Promise<void>;
  /** Moves a message to the dead-letter table with a reason (one transaction). */
  deadLetter(id: string, reason: string): Promise<void>;
  /** Dead letters, oldest first. A read of what is committed. */
  listDead(limit?: number): Promise<DeadLetter[]>;
  /** Moves dead letters (all when `ids` is undefined) back into the queue at the end of their lanes; returns how many. */
  retryDead(ids?: readonly string[]): Promise<number>;
  /** Deletes dead letters (all when `ids` is undefined); returns how many. */
  purgeDead(ids?: readonly string[]): Promise<number>;
  /** The anchor of `group` in `room`, if one is recorded and not expired (`expiry.ts`). A read of what is committed. */
  anchor(room: string, group: string): Promise<ThreadAnchor | undefined>;
  /**
   * Records `anchor` for (room, group) unless an unresolved one exists: that one is kept
   * and only marked as used now (its 30 days start again). A resolved one is replaced:
   * the group fired again. Lazy bookkeeping write (as `delivered`).
   */
  recordAnchor(
    room: string,
    group: string,
    anchor: Omit<ThreadAnchor, "resolvedAt">,
  ): Promise<void>;
  /** Marks the group resolved at `at` (ms; a group resolved already keeps its first time). Lazy write. No-op without an anchor. */
  resolveAnchor(room: string, group: string, at: number): Promise<void>;
  /** How full the spool is, from counts kept in memory; synchronous and never throws (a metrics scrape must not fail). */
  stats(): SpoolStats;
  /** Whether writes go through now; synchronous and never throws (a `/ready` probe must not fail). */
  health(): SpoolHealth;
  /** Flushes pending writes and closes; later writes and reads reject with "UNAVAILABLE". */
  close(): Promise<void>;
}
