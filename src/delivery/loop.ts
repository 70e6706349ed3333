/**
 * The one delivery loop: claim what the spool holds for a lane (room + nick) in order →
 * send → confirmed (remove from the spool) | retry later | dead-letter. Adapters only
 * classify failures; every decision about *when* and *whether* to retry is made here.
 */
import type { Logger } from "pino";
import { backoffDelay, DEFAULT_BACKOFF } from "../core/backoff.ts";
import type { DeliveryError } from "../core/errors.ts";
import { DIRECT_NICK } from "../core/routes.ts";
import type { Lane, Spool, SpooledMessage } from "../spool/types.ts";
import type { Session, Unconfirmed } from "../xmpp/session.ts";

/** How one message ended, as far as a waiting request is concerned. */
export type Outcome = { status: "delivered" } | { status: "failed"; reason: string };

/** What the HTTP side learns within its wait. */
export type WaitResult =
  | { status: "delivered" }
  | { status: "queued" }
  | { status: "failed"; reasons: string[]; delivered: number };

/** Something that can go wrong with a message after it was accepted, counted for metrics. */
export interface LoopObserver {
  delivered?(m: SpooledMessage, latencyMs: number): void;
  failed?(m: SpooledMessage, reason: string): void;
  retried?(m: SpooledMessage, reason: string): void;
}

/** The running loop. */
export interface DeliveryLoop {
  /** True when an outcome can come soon: the lane's session is online. */
  expectsOutcome(lane: Lane): boolean;
  /** Starts a lane's work now (after an enqueue or a retry from the CLI). */
  kick(lane: Lane): void;
  /** Looks for lanes with work (at start, and periodically for CLI retries). */
  scan(): void;
  /**
   * Waits up to `ms` for every id to be delivered or fail. Register before enqueueing, so
   * that no outcome can be missed; `cancel` if the enqueue fails.
   */
  waitFor(ids: readonly string[], ms: number): { result: Promise<WaitResult>; cancel(): void };
  /** The lane's unconfirmed messages, for the session's history check on rejoin. */
  unconfirmed(lane: Lane): Unconfirmed | undefined;
  /** Follows a session added after start (a configuration reload). */
  watch(session: Session): void;
  /** Number of messages sent and not yet confirmed, over all lanes. */
  inFlight(): number;
  /** Stops sending new messages; resolves when nothing is in flight or `graceMs` passed. */
  drain(graceMs: number): Promise<void>;
}

interface LaneState {
  readonly lane: Lane;
  readonly inFlight: Map<string, SpooledMessage>;
  /** Highest seq handed to the session since the last (re)join. */
  cursor: number;
  /** Bumped when the room is lost: late results of older sends are ignored. */
  generation: number;
  failures: number;
  retryTimer: NodeJS.Timeout | undefined;
}

const laneKey = (l: Lane) => `${l.nick}\u0000${l.room}`;

/** Creates the loop over `sessions` (by nick) and `spool`. */
export function createDeliveryLoop(deps: {
  spool: Spool;
  sessions: ReadonlyMap<string, Session>;
  log: Logger;
  ttlMs: number;
  /** Messages sent per lane before waiting for confirmations (pipelining). */
  window?: number;
  now?: () => number;
  random?: () => number;
  observer?: LoopObserver;
}): DeliveryLoop {
  const { spool, log } = deps;
  const window = deps.window ?? 32;
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  const lanes = new Map<string, LaneState>();
  const waiters = new Map<string, Set<(o: Outcome) => void>>();
  /** Confirmed, and still in the spool until its next commit. */
  const confirmed = new Set<string>();
  let draining = false;
  let drained: (() => void) | undefined;

  const stateOf = (lane: Lane): LaneState => {
    const key = laneKey(lane);
    let s = lanes.get(key);
    if (!s) {
      s = {
        lane,
        inFlight: new Map(),
        cursor: 0,
        generation: 0,
        failures: 0,
        retryTimer: undefined,
      };
      lanes.set(key, s);
    }
    return s;
  };

  const settle = (id: string, outcome: Outcome) => {
    const ws = waiters.get(id);
    if (!ws) return;
    waiters.delete(id);
    for (const w of ws) w(outcome);
  };

  const checkDrained = () => {
    if (draining && drained && inFlightCount() === 0) drained();
  };
  const inFlightCount = () => {
    let n = 0;
    for (const s of lanes.values()) n += s.inFlight.size;
    return n;
  };

  async function deadLetter(m: SpooledMessage, reason: string): Promise<void> {
    log.error(
      { id: m.id, room: m.room, nick: m.nick, route: m.route, reason },
      `message dead-lettered: ${reason}`,
    );
    await spool
      .deadLetter(m.id, reason)
      .catch((err) => log.error({ err, id: m.id }, "dead-lettering failed"));
    deps.observer?.failed?.(m, reason);
    settle(m.id, { status: "failed", reason });
  }

  function pump(s: LaneState): void {
    if (draining) return;
    const session = deps.sessions.get(s.lane.nick);
    if (!session) return;
    const room = session.rooms.get(s.lane.room);
    if (!session.canSend(s.lane.room)) {
      // A room that refuses us for good (ban, members-only): its messages cannot go out.
      if (room?.permanent && room.phase === "retrying" && s.inFlight.size === 0) {
        const reason = `${s.lane.room} refused ${s.lane.nick}: ${room.lastError}`;
        for (const m of spool.pending(s.lane, window, 0)) void deadLetter(m, reason);
      }
      return;
    }
    const room0 = s.lane.room;
    const want = window - s.inFlight.size;
    // Under load, refill the window in batches: one claim query per quarter window
    // instead of one per confirmation (the query was 7% of the gateway's time).
    if (want <= 0 || s.retryTimer || (s.inFlight.size > 0 && want < window / 4)) return;
    const batch = spool.pending(s.lane, want, s.cursor);
    for (const m of batch) {
      s.cursor = m.seq;
      if (s.inFlight.has(m.id) || confirmed.has(m.id)) continue;
      if (now() - m.createdAt > deps.ttlMs) {
        void deadLetter(m, `not delivered within MESSAGE_TTL (${Math.round(deps.ttlMs / 1000)} s)`);
        continue;
      }
      const generation = s.generation;
      s.inFlight.set(m.id, m);
      session.send(room0, m.id, m.body).then(
        () => onDelivered(s, m, generation),
        (err: DeliveryError) => onFailed(s, m, generation, err),
      );
    }
  }

  function onDelivered(s: LaneState, m: SpooledMessage, generation: number): void {
    if (generation === s.generation) s.inFlight.delete(m.id);
    s.failures = 0;
    confirm(m);
    checkDrained();
    pump(s);
  }

  function confirm(m: SpooledMessage): void {
    // The spool removes it with its next commit; until then it must not be sent again.
    confirmed.add(m.id);
    spool
      .delivered([m.id])
      .catch((err) => log.error({ err, id: m.id }, "spool: marking delivered failed"))
      .finally(() => confirmed.delete(m.id));
    deps.observer?.delivered?.(m, now() - m.createdAt);
    settle(m.id, { status: "delivered" });
  }

  function onFailed(s: LaneState, m: SpooledMessage, generation: number, err: DeliveryError): void {
    if (generation !== s.generation) return; // the room was lost meanwhile: resent after rejoin
    s.inFlight.delete(m.id);
    checkDrained();
    if (err.permanent) {
      void deadLetter(m, err.message);
      pump(s);
      return;
    }
    deps.observer?.retried?.(m, err.message);
    spool.recordFailure(m.id, err.message).catch(() => {});
    // Resend from this message on, in order, after a pause that grows with each failure.
    s.cursor = Math.min(s.cursor, m.seq - 1);
    if (!s.retryTimer) {
      const delay = backoffDelay(s.failures++, random, DEFAULT_BACKOFF);
      log.warn(
        { id: m.id, room: m.room, nick: m.nick, retryInMs: delay },
        `will resend: ${err.message}`,
      );
      s.retryTimer = setTimeout(() => {
        s.retryTimer = undefined;
        pump(s);
      }, delay);
    }
  }

  function watchSession(session: Session): void {
    session.on("roomReady", (room) => pump(stateOf({ room, nick: session.nick })));
    session.on("roomDown", (room) => {
      const s = stateOf({ room, nick: session.nick });
      // Whatever was in flight may or may not have arrived: after the rejoin, the history
      // check confirms what did, and the rest is resent from the oldest, in order.
      s.generation++;
      s.inFlight.clear();
      s.cursor = 0;
      clearTimeout(s.retryTimer);
      s.retryTimer = undefined;
      checkDrained();
      pump(s); // dead-letters at once if the refusal is permanent
    });
    session.on("confirmed", (room, id) => {
      const m = spool.pending({ room, nick: session.nick }, 1000, 0).find((p) => p.id === id);
      if (m) {
        log.info({ id, room }, "found in the room history after a rejoin: not resent");
        confirm(m);
      }
    });
  }
  for (const session of deps.sessions.values()) watchSession(session);

  return {
    kick: (lane) => pump(stateOf(lane)),
    expectsOutcome(lane) {
      // With the stream up, a confirmation or a refusal is moments away; with it down, not.
      const session = deps.sessions.get(lane.nick);
      return (
        session?.online === true && (lane.nick === DIRECT_NICK || session.rooms.has(lane.room))
      );
    },
    scan() {
      for (const lane of spool.lanes()) {
        const session = deps.sessions.get(lane.nick);
        const room = session?.rooms.get(lane.room);
        // Work in a lane whose room refused us for good was put back by `spool retry` (or
        // waited through a restart): the refusal may be gone (made a member, unbanned), so
        // ask the room now rather than dead-lettering it again on the old refusal, or
        // waiting out the join backoff (up to a minute). Refused again, the room's
        // `roomDown` dead-letters it.
        if (room?.permanent && room.phase === "retrying") session?.retryRoom(lane.room);
        else pump(stateOf(lane));
      }
    },
    waitFor(ids, ms) {
      const outcomes = new Map<string, Outcome>();
      const registered: Array<[string, (o: Outcome) => void]> = [];
      let timer: NodeJS.Timeout | undefined;
      const result = new Promise<WaitResult>((resolve) => {
        const finish = () => {
          clearTimeout(timer);
          for (const [id, w] of registered) waiters.get(id)?.delete(w);
          const failed = [...outcomes.values()].filter((o) => o.status === "failed");
          if (failed.length > 0) {
            resolve({
              status: "failed",
              reasons: failed.map((f) => (f.status === "failed" ? f.reason : "")),
              delivered: outcomes.size - failed.length,
            });
          } else if (outcomes.size === ids.length) resolve({ status: "delivered" });
          else resolve({ status: "queued" });
        };
        for (const id of ids) {
          const w = (o: Outcome) => {
            outcomes.set(id, o);
            if (outcomes.size === ids.length) finish();
          };
          registered.push([id, w]);
          const set = waiters.get(id) ?? new Set();
          set.add(w);
          waiters.set(id, set);
        }
        timer = setTimeout(finish, ms);
      });
      return {
        result,
        cancel() {
          clearTimeout(timer);
          for (const [id, w] of registered) waiters.get(id)?.delete(w);
        },
      };
    },
    unconfirmed(lane) {
      const msgs = spool.pending(lane, 1000, 0).filter((m) => !confirmed.has(m.id));
      if (msgs.length === 0) return undefined;
      return {
        ids: new Set(msgs.map((m) => m.id)),
        since: Math.min(...msgs.map((m) => m.createdAt)),
      };
    },
    watch: watchSession,
    inFlight: inFlightCount,
    drain(graceMs) {
      draining = true;
      for (const s of lanes.values()) clearTimeout(s.retryTimer);
      if (inFlightCount() === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    },
  };
}
