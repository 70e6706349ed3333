/**
 * The spool in memory, for fast and exact unit tests of the delivery loop. It does what the
 * SQLite spool (`sqlite.ts`) does, as far as a caller can tell (memory.test.ts compares the
 * two call for call): writes are group committed on the next macrotask, invisible to reads
 * until then. Deliberate differences: nothing survives the process, and the bookkeeping
 * writes (delivered, recordFailure, recordAnchor, resolveAnchor) do not wait 20 ms for
 * company, as there is no fsync to share.
 */
import { GatewayError } from "../core/errors.ts";
import { anchorLive, SWEEP_INTERVAL_MS } from "./expiry.ts";
import { spoolFull } from "./limits.ts";
import {
  binary,
  createMemoryStore,
  findAnchor,
  findClaim,
  insert,
  keyOf,
  limitOf,
  type MemoryStore,
  sweep,
  take,
  takeDead,
  utf8,
} from "./memory-store.ts";
import type { CommitInfo } from "./sqlite.ts";
import type {
  DedupeClaim,
  EnqueueOnce,
  Lane,
  NewMessage,
  Spool,
  SpooledMessage,
  SpoolLimits,
} from "./types.ts";

export { createMemoryStore, type MemoryStore } from "./memory-store.ts";

/** A client is asked to wait 30 s (`Retry-After`), as with SQLite. */
const RETRY = { retryAfter: 30 };
/** What SQLite says when a post reuses a queued id (messages.id is UNIQUE). */
const DUPLICATE =
  "the spool refused the post: constraint failed: UNIQUE constraint failed: messages.id";
/** Writes per commit at most, as with SQLite: a larger burst takes several commits. */
const MAX_BATCH = 1000;

/** Options of `createMemorySpool`. */
export interface MemorySpoolOptions {
  readonly limits: SpoolLimits;
  /** The clock, ms since the epoch (createdAt, failedAt, expiry). */
  readonly now?: () => number;
  /** The storage to open (a reopen passes the previous spool's); a new one by default. */
  readonly store?: MemoryStore;
  /** Called after every commit, as `SqliteSpoolOptions.onCommit` is. */
  readonly onCommit?: (info: CommitInfo) => void;
}

type Write = { apply: () => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void };

/** Opens a spool over `opts.store` (a new empty store when missing). */
export function createMemorySpool(opts: MemorySpoolOptions): Spool {
  const now = opts.now ?? Date.now;
  const { limits } = opts;
  const store = opts.store ?? createMemoryStore();
  const reserved = { messages: 0, bytes: 0 };
  const queue: Write[] = [];
  let timer: NodeJS.Immediate | undefined;
  let closed = false;
  /** When the last sweep of expired claims and anchors ran (spool clock). */
  let sweptAt = Number.NEGATIVE_INFINITY;
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
    // As SQLite: expired claims and anchors go at the end of a commit, at most once a minute.
    const at = now();
    if (at - sweptAt >= SWEEP_INTERVAL_MS) {
      sweep(store, at);
      sweptAt = at;
    }
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

  /** A read of what is committed, done now and answered through a settled promise, as SQLite's. */
  function read<T>(fn: () => T): Promise<T> {
    if (closed) return Promise.reject(closedError());
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** What a post adds, reserved until its commit, refused or not; and the SPOOL_FULL error when it does not fit. */
  function admit(messages: readonly NewMessage[]) {
    const want = { messages: messages.length, bytes: 0 };
    for (const m of messages) want.bytes += utf8(m.body);
    const held = {
      messages: store.messages.size + reserved.messages,
      bytes: store.bytes + reserved.bytes,
    };
    return { want, full: spoolFull(limits, held, want), createdAt: now() };
  }

  const reserve = (d: { messages: number; bytes: number }, sign: number) => {
    reserved.messages += sign * d.messages;
    reserved.bytes += sign * d.bytes;
  };

  /** Stores one post, refused whole if it reuses a queued id (messages.id is UNIQUE in SQLite), or one id twice. */
  function storePost(messages: readonly NewMessage[], createdAt: number): SpooledMessage[] {
    const ids = new Set(messages.map((m) => m.id));
    if (ids.size < messages.length || messages.some((m) => store.messages.has(m.id))) {
      throw new GatewayError("INTERNAL", DUPLICATE);
    }
    return messages.map((m): SpooledMessage => {
      const seq = insert(store, m, createdAt);
      return { ...m, seq, createdAt, attempts: 0, lastError: undefined };
    });
  }

  function enqueue(messages: readonly NewMessage[]): Promise<readonly SpooledMessage[]> {
    if (closed) return Promise.reject(closedError());
    if (messages.length === 0) return Promise.resolve([]);
    const { want, full, createdAt } = admit(messages);
    if (full) return Promise.reject(full);
    reserve(want, 1);
    return write(() => {
      reserve(want, -1);
      return storePost(messages, createdAt);
    });
  }

  function enqueueOnce(messages: readonly NewMessage[], claim: DedupeClaim): Promise<EnqueueOnce> {
    if (closed) return Promise.reject(closedError());
    if (messages.length === 0) return Promise.resolve({ duplicate: false, messages: [] });
    const { want, full, createdAt } = admit(messages);
    // As SQLite: a full spool still answers a duplicate; a new post is refused at the commit.
    const held = full ? { messages: 0, bytes: 0 } : want;
    reserve(held, 1);
    return write((): EnqueueOnce => {
      reserve(held, -1);
      const found = findClaim(store, claim, createdAt);
      if (found) return found;
      if (full) throw full;
      const stored = storePost(messages, createdAt);
      const ids = messages.map((m) => m.id);
      const postId = messages[0]?.postId ?? "";
      store.claims.set(keyOf(claim.route, claim.key), { postId, ids, expiresAt: claim.expiresAt });
      return { duplicate: false, messages: stored };
    });
  }

  function pendingOf(lane: Lane, limit: number, afterSeq: number): SpooledMessage[] {
    const n = limitOf(limit);
    const out: SpooledMessage[] = [];
    for (const m of store.messages.values()) {
      if (out.length >= n) break;
      if (m.room === lane.room && m.nick === lane.nick && m.seq > afterSeq) out.push({ ...m });
    }
    return out;
  }

  return {
    enqueue,
    enqueueOnce,
    claimed: (route, key) =>
      read(() => findClaim(store, { route, key, expiresAt: 0 }, now())?.postId),
    lanes: () =>
      read(() => {
        const lanes = new Map<string, Lane>();
        for (const { room, nick } of store.messages.values()) {
          lanes.set(JSON.stringify([room, nick]), { room, nick });
        }
        return [...lanes.values()].sort((a, b) => binary(a.room, b.room) || binary(a.nick, b.nick));
      }),
    pending: (lane, limit, afterSeq = 0) => read(() => pendingOf(lane, limit, afterSeq)),
    claim: (lane, limit, afterSeq) =>
      read(() => {
        const out = pendingOf(lane, limit, afterSeq);
        const last = out.at(-1)?.seq;
        const key = keyOf(lane.room, lane.nick);
        if (last !== undefined && last > (store.marks.get(key) ?? 0)) {
          store.marks.set(key, last);
          store.markLog.set(key, [...(store.markLog.get(key) ?? []), { upto: last, at: now() }]);
        }
        return out;
      }),
    sentUpTo: (lane) => read(() => store.marks.get(keyOf(lane.room, lane.nick)) ?? 0),
    sentSince: (lane, seq) =>
      read(() => store.markLog.get(keyOf(lane.room, lane.nick))?.find((r) => r.upto >= seq)?.at),
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
    anchor: (room, group) => read(() => findAnchor(store, room, group, now())),
    recordAnchor: (room, group, anchor) => {
      const at = now();
      const { stanzaId, occupant, quote } = anchor;
      return write(() => {
        const key = keyOf(room, group);
        const old = store.anchors.get(key);
        // An unresolved live anchor is kept, only touched; a resolved or expired one replaced.
        store.anchors.set(
          key,
          old && old.resolvedAt === undefined && anchorLive(old.touchedAt, undefined, at)
            ? { ...old, touchedAt: at }
            : { stanzaId, occupant, quote, resolvedAt: undefined, touchedAt: at },
        );
      });
    },
    resolveAnchor: (room, group, resolvedAt) => {
      const at = now();
      return write(() => {
        const key = keyOf(room, group);
        const old = store.anchors.get(key);
        if (old === undefined || !anchorLive(old.touchedAt, old.resolvedAt, at)) return;
        store.anchors.set(key, { ...old, resolvedAt: old.resolvedAt ?? resolvedAt, touchedAt: at });
      });
    },
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
