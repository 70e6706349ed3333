/**
 * A spool whose database could not be reached at start-up (issue 14: "PostgreSQL down").
 * The gateway starts anyway, as it goes on when the database goes away later: HTTP
 * listens, every post gets 503 with a Retry-After, and `/ready` says why. Opening is tried
 * again every few seconds; from the first success on, every call goes to the opened spool.
 * Only an unreachable database is waited for: a refused login or a missing database is a
 * configuration error and stops the start (`open.ts` decides which is which).
 */
import type { Logger } from "pino";
import type { Clock, Timer } from "../core/clock.ts";
import { GatewayError } from "../core/errors.ts";
import type { Spool, SpoolHealth, SpoolStats } from "./types.ts";

/** Options of `deferredSpool`. */
export interface DeferredSpoolOptions {
  /** Opens the spool; rejects while the database cannot be reached. */
  open(): Promise<Spool>;
  /** The first failure to open, said in `/ready` until the next attempt says more. */
  firstError: unknown;
  /** The spool's place for messages (a URL without its password). */
  where: string;
  log: Logger;
  clock: Clock;
  /** Between two attempts to open (default 2000 ms). */
  retryMs?: number;
  /** Seconds a refused post's Retry-After says. */
  retryAfter: number;
  /** Why an attempt failed, in one line. */
  reasonOf(err: unknown): string;
}

const NO_STATS: SpoolStats = { messages: 0, bytes: 0, deadLetters: 0 };

/** A Spool that fails UNAVAILABLE until `opts.open()` succeeds, then is that spool. */
export function deferredSpool(opts: DeferredSpoolOptions): Spool {
  const { log, clock } = opts;
  const retryMs = opts.retryMs ?? 2000;
  let inner: Spool | undefined;
  let reason = opts.reasonOf(opts.firstError);
  let timer: Timer | undefined;
  let closed = false;

  const unavailable = () =>
    new GatewayError("UNAVAILABLE", `the spool ${opts.where} cannot be reached yet: ${reason}`, {
      retryAfter: opts.retryAfter,
    });

  const attempt = () => {
    timer = undefined;
    opts.open().then(
      (spool) => {
        if (closed) {
          spool.close().catch(() => {});
          return;
        }
        inner = spool;
        log.info({ spool: opts.where }, `spool ${opts.where} open: taking posts`);
      },
      (err: unknown) => {
        const now = opts.reasonOf(err);
        if (now !== reason) log.warn({ spool: opts.where, err: now }, "spool still unreachable");
        reason = now;
        if (!closed) timer = clock.setTimeout(attempt, retryMs);
      },
    );
  };
  log.warn(
    { spool: opts.where, err: reason },
    `spool ${opts.where} cannot be reached: answering 503 until it can (trying every ${Math.round(retryMs / 1000)} s)`,
  );
  timer = clock.setTimeout(attempt, retryMs);

  /** `f` on the opened spool, or a rejection while it is not open. */
  const via =
    <A extends unknown[], R>(f: (s: Spool, ...args: A) => Promise<R>) =>
    (...args: A): Promise<R> =>
      inner ? f(inner, ...args) : Promise.reject(unavailable());

  return {
    enqueue: via((s, messages) => s.enqueue(messages)),
    enqueueOnce: via((s, messages, claim) => s.enqueueOnce(messages, claim)),
    claimed: via((s, route, key) => s.claimed(route, key)),
    lanes: via((s) => s.lanes()),
    pending: via((s, lane, limit, afterSeq) => s.pending(lane, limit, afterSeq)),
    claim: via((s, lane, limit, afterSeq, fence) => s.claim(lane, limit, afterSeq, fence)),
    sentUpTo: via((s, lane) => s.sentUpTo(lane)),
    sentSince: via((s, lane, seq) => s.sentSince(lane, seq)),
    delivered: via((s, ids) => s.delivered(ids)),
    recordFailure: via((s, id, error) => s.recordFailure(id, error)),
    deadLetter: via((s, id, why) => s.deadLetter(id, why)),
    listDead: via((s, limit) => s.listDead(limit)),
    retryDead: via((s, ids) => s.retryDead(ids)),
    purgeDead: via((s, ids) => s.purgeDead(ids)),
    anchor: via((s, room, group) => s.anchor(room, group)),
    recordAnchor: via((s, room, group, a) => s.recordAnchor(room, group, a)),
    resolveAnchor: via((s, room, group, at) => s.resolveAnchor(room, group, at)),
    stats: () => inner?.stats() ?? NO_STATS,
    health: (): SpoolHealth => inner?.health() ?? { writable: false, error: unavailable().message },
    async close() {
      closed = true;
      clock.clearTimeout(timer);
      timer = undefined;
      await inner?.close();
    },
  };
}
