/**
 * The spool in memory, for fast and exact unit tests of the delivery loop. It does what the
 * SQLite spool (`sqlite.ts`) does, as far as a caller can tell (memory.test.ts compares the
 * two call for call): writes are group committed on the next macrotask, invisible to reads
 * until then. Deliberate differences: nothing survives the process, and delivered and
 * recordFailure do not wait 20 ms for company, as there is no fsync to share.
 */
import { GatewayError } from "../core/errors.ts";
import { spoolFull } from "./limits.ts";
import type { CommitInfo } from "./sqlite.ts";
import type { DeadLetter, Lane, NewMessage, Spool, SpooledMessage, SpoolLimits } from "./types.ts";

/** A client is asked to wait 30 s (`Retry-After`), as with SQLite. */
const RETRY = { retryAfter: 30 };
/** What SQLite says when a post reuses a queued id (messages.id is UNIQUE). */
const DUPLICATE =
  "the spool refused the post: constraint failed: UNIQUE constraint failed: messages.id";
/** Writes per commit at most, as with SQLite: a larger burst takes several commits. */
const MAX_BATCH = 1000;

/**
 * What a memory spool stores. It outlives `close()`: a spool opened again over it finds
 * what was committed, and spools open over one store at once see each other's commits, as
 * processes sharing a SQLite file do. Change it only through a spool.
 */
export interface MemoryStore {
  /** Queued messages by id, in seq order (a new seq is always the highest). */
  readonly messages: Map<string, SpooledMessage>;
  readonly dead: Map<string, DeadLetter>;
  /** UTF-8 bytes of the queued bodies. */
  bytes: number;
  /** The last seq handed out; like AUTOINCREMENT, never handed out again. */
  lastSeq: number;
}

/** An empty store. */
export function createMemoryStore(): MemoryStore {
  return { messages: new Map(), dead: new Map(), bytes: 0, lastSeq: 0 };
}

/** Options of `createMemorySpool`. */
export interface MemorySpoolOptions {
  readonly limits: SpoolLimits;
  /** The clock, ms since the epoch (createdAt, failedAt). */
  readonly now?: () => number;
  /** The storage to open (a reopen passes the previous spool's); a new one by default. */
  readonly store?: MemoryStore;
  /** Called after every commit, as `SqliteSpoolOptions.onCommit` is. */
  readonly onCommit?: (info: CommitInfo) => void;
}

type Write = { apply: () => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void };

const utf8 = (s: string) => Buffer.byteLength(s, "utf8");
/** SQLite's BINARY collation compares UTF-8 bytes; JS `<` compares UTF-16 code units. */
const binary = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** SQLite's LIMIT: a non-integer is refused ("datatype mismatch"), a negative means none. */
function limitOf(limit: number | undefined): number {
  if (limit === undefined) return Number.POSITIVE_INFINITY;
  if (!Number.isSafeInteger(limit)) throw new RangeError(`datatype mismatch: LIMIT ${limit}`);
  return limit < 0 ? Number.POSITIVE_INFINITY : limit;
}

/** Queues a message as SQLite stores it (its columns only), with a new seq. */
function insert(store: MemoryStore, m: NewMessage, createdAt: number): number {
  const { postId, id, route, room, nick, body } = m;
  const seq = ++store.lastSeq;
  const row = { postId, id, route, room, nick, body, seq, createdAt };
  store.messages.set(id, { ...row, attempts: 0, lastError: undefined });
  store.bytes += utf8(body);
  return seq;
}

/** Removes a queued message and returns it. */
function take(store: MemoryStore, id: string): SpooledMessage | undefined {
  const m = store.messages.get(id);
  if (m === undefined) return undefined;
  store.messages.delete(id);
  store.bytes -= utf8(m.body);
  return m;
}

/** Removes the dead letters selected by `ids` (all when undefined); returns them in seq order. */
function takeDead(store: MemoryStore, ids: readonly string[] | undefined): DeadLetter[] {
  const wanted = ids === undefined ? undefined : new Set(ids);
  const taken = [...store.dead.values()].filter((d) => wanted?.has(d.id) ?? true);
  for (const d of taken) store.dead.delete(d.id);
  return taken.sort((a, b) => a.seq - b.seq);
}

/** Opens a spool over `opts.store` (a new empty store when missing). */
export function createMemorySpool(opts: MemorySpoolOptions): Spool {
  const now = opts.now ?? Date.now;
  const { limits } = opts;
  const store = opts.store ?? createMemoryStore();
  const reserved = { messages: 0, bytes: 0 };
  const queue: Write[] = [];
  let timer: NodeJS.Immediate | undefined;
  let closed = false;
  /** The counts at close: stats() still answers, from the last counts, as SQLite's does. */
  let final: { messages: number; bytes: number; deadLetters: number } | undefined;

  const closedError = () => new GatewayError("UNAVAILABLE", "the memory spool is closed", RETRY);
  const counts = () => ({
    messages: store.messages.size,
    bytes: store.bytes,
    deadLetters: store.dead.size,
  });

  function flush(): void {
    timer = undefined;
    const batch = queue.splice(0, MAX_BATCH);
    if (queue.length > 0 && !closed) timer = setImmediate(flush);
    if (batch.length === 0) return;
    const started = performance.now();
    const results = batch.map((w) => {
      try {
        return { w, ok: true, value: w.apply() };
      } catch (err) {
        return { w, ok: false, value: err };
      }
    });
    // Like SQLite: the committed writes resolve first, then the refused posts reject.
    for (const r of results) if (r.ok) r.w.resolve(r.value);
    for (const r of results) if (!r.ok) r.w.reject(r.value);
    opts.onCommit?.({ operations: batch.length, ms: performance.now() - started });
  }

  function write<T>(apply: () => T): Promise<T> {
    if (closed) return Promise.reject(closedError());
    return new Promise<T>((resolve, reject) => {
      queue.push({ apply, resolve: resolve as (v: unknown) => void, reject });
      timer ??= setImmediate(flush);
    });
  }

  function read<T>(fn: () => T): T {
    if (closed) throw closedError();
    return fn();
  }

  function enqueue(messages: readonly NewMessage[]): Promise<readonly SpooledMessage[]> {
    if (closed) return Promise.reject(closedError());
    if (messages.length === 0) return Promise.resolve([]);
    const want = { messages: messages.length, bytes: 0 };
    for (const m of messages) want.bytes += utf8(m.body);
    const held = {
      messages: store.messages.size + reserved.messages,
      bytes: store.bytes + reserved.bytes,
    };
    const full = spoolFull(limits, held, want);
    if (full) return Promise.reject(full);
    // Reserved until the commit, refused or not: posts not yet committed count too.
    reserved.messages += want.messages;
    reserved.bytes += want.bytes;
    const createdAt = now();
    return write(() => {
      reserved.messages -= want.messages;
      reserved.bytes -= want.bytes;
      // messages.id is UNIQUE: a post reusing a queued id (or one id twice) is refused whole.
      const ids = new Set(messages.map((m) => m.id));
      if (ids.size < messages.length || messages.some((m) => store.messages.has(m.id))) {
        throw new GatewayError("INTERNAL", DUPLICATE);
      }
      return messages.map((m): SpooledMessage => {
        const seq = insert(store, m, createdAt);
        return { ...m, seq, createdAt, attempts: 0, lastError: undefined };
      });
    });
  }

  return {
    enqueue,
    lanes: () =>
      read(() => {
        const lanes = new Map<string, Lane>();
        for (const { room, nick } of store.messages.values()) {
          lanes.set(JSON.stringify([room, nick]), { room, nick });
        }
        return [...lanes.values()].sort((a, b) => binary(a.room, b.room) || binary(a.nick, b.nick));
      }),
    pending: (lane, limit, afterSeq = 0) =>
      read(() => {
        const n = limitOf(limit);
        const out: SpooledMessage[] = [];
        for (const m of store.messages.values()) {
          if (out.length >= n) break;
          if (m.room === lane.room && m.nick === lane.nick && m.seq > afterSeq) out.push({ ...m });
        }
        return out;
      }),
    delivered: (ids) =>
      write(() => {
        for (const id of ids) take(store, id);
      }),
    recordFailure: (id, error) =>
      write(() => {
        const m = store.messages.get(id);
        if (m) store.messages.set(id, { ...m, attempts: m.attempts + 1, lastError: error });
      }),
    deadLetter: (id, reason) => {
      const failedAt = now();
      return write(() => {
        const m = take(store, id);
        // A stale dead letter with the same id (an id reused) is replaced.
        if (m !== undefined) store.dead.set(id, { ...m, failedAt, reason });
      });
    },
    listDead: (limit) =>
      read(() => {
        const n = limitOf(limit);
        const all = [...store.dead.values()].sort(
          (a, b) => a.failedAt - b.failedAt || a.seq - b.seq,
        );
        return all.slice(0, n).map((d) => ({ ...d }));
      }),
    retryDead: (ids) => {
      const at = now();
      return write(() => {
        const taken = takeDead(store, ids);
        for (const d of taken) {
          // As SQLite's INSERT OR IGNORE: an id queued again meanwhile is not queued twice,
          // but AUTOINCREMENT still uses up a seq for the ignored row.
          if (store.messages.has(d.id)) store.lastSeq += 1;
          else insert(store, d, at);
        }
        return taken.length;
      });
    },
    purgeDead: (ids) => write(() => takeDead(store, ids).length),
    stats: () => ({ ...(final ?? counts()) }),
    // Memory never refuses a write; only a closed spool cannot be written.
    health: () =>
      closed ? { writable: false, error: "the memory spool is closed" } : { writable: true },
    async close() {
      if (closed) return;
      closed = true;
      if (timer !== undefined) clearImmediate(timer);
      while (queue.length > 0) flush();
      final = counts();
    },
  };
}
