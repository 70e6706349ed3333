/**
 * The durable queue between "accepted" and "delivered". Every accepted message is in
 * the spool before any 2xx; it leaves the spool only when its room confirmed it, or
 * into the dead-letter table when it can never be delivered.
 */

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

/** The durable queue. Implementations: SQLite (`sqlite.ts`); the contract test runs against each. */
export interface Spool {
  /**
   * Stores the messages of one post atomically and durably (fsynced) before resolving.
   * Concurrent calls share one transaction and one sync (group commit). Rejects with
   * GatewayError "SPOOL_FULL" (nothing stored) when the limits would be exceeded, or
   * "UNAVAILABLE" on a disk error or after close (nothing stored).
   */
  enqueue(messages: readonly NewMessage[]): Promise<readonly SpooledMessage[]>;
  /** Lanes that hold at least one message. */
  lanes(): Lane[];
  /** Up to `limit` messages of a lane with `seq > afterSeq`, in `seq` order. */
  pending(lane: Lane, limit: number, afterSeq?: number): SpooledMessage[];
  /** The room confirmed these: remove them (batched with the next commit; resolves once durable). */
  delivered(ids: readonly string[]): Promise<void>;
  /** Counts a failed attempt and remembers why. */
  recordFailure(id: string, error: string): Promise<void>;
  /** Moves a message to the dead-letter table with a reason (one transaction). */
  deadLetter(id: string, reason: string): Promise<void>;
  /** Dead letters, oldest first. */
  listDead(limit?: number): DeadLetter[];
  /** Moves dead letters (all when `ids` is undefined) back into the queue at the end of their lanes; returns how many. */
  retryDead(ids?: readonly string[]): Promise<number>;
  /** Deletes dead letters (all when `ids` is undefined); returns how many. */
  purgeDead(ids?: readonly string[]): Promise<number>;
  stats(): SpoolStats;
  /** Whether writes go through now; never throws (a `/ready` probe must not fail). */
  health(): SpoolHealth;
  /** Flushes pending writes and closes; later calls reject with "UNAVAILABLE". */
  close(): Promise<void>;
}
