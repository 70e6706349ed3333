/**
 * The one delivery loop: claim what the spool holds for a lane (room + nick) in order →
 * send → confirmed (remove from the spool) | retry later | dead-letter, exactly once.
 * The carrier reports facts; this file and the supervisor decide everything.
 */
import type { Logger } from "pino";
import { type BackoffOptions, backoffDelay, DEFAULT_BACKOFF } from "../core/backoff.ts";
import { type Clock, systemClock, type Timer } from "../core/clock.ts";
import type { Lane, Spool, SpooledMessage } from "../spool/types.ts";
import { isPermanentRefusal, isSlowDown } from "./classify.ts";
import { type Leadership, withLeases } from "./leadership.ts";
import { createPoisonCheck } from "./poison.ts";
import type { Carrier, StanzaFault, StreamFault, Topology } from "./port.ts";
import type { Readiness } from "./readiness.ts";
import { createRejoinCheck, LOOK_FOR_LIMIT } from "./rejoin.ts";
import { createSupervisor } from "./supervisor.ts";
import { createThreads } from "./threads.ts";
import { createWaiters, type WaitResult } from "./waiters.ts";

export type { Outcome, WaitResult } from "./waiters.ts";

/** Something that happened to a message after it was accepted, counted for metrics. */
export interface LoopObserver {
  delivered?(m: SpooledMessage, latencyMs: number): void;
  failed?(m: SpooledMessage, reason: string): void;
  retried?(m: SpooledMessage, reason: string): void;
  reconnected?(nick: string): void;
}

/** The running loop. */
export interface DeliveryLoop {
  /** Connects every session and starts sending what the spool holds. */
  start(): void;
  /** True when an outcome can come soon: the lane's session is online. */
  expectsOutcome(lane: Lane): boolean;
  /**
   * Starts a lane's work (after an enqueue), once the current microtasks have run: the
   * posts of one group commit resume together, and their lane is claimed from once.
   */
  kick(lane: Lane): void;
  /** Looks for lanes with work (at start, and periodically for `spool retry`). */
  scan(): Promise<void>;
  /** True when the message's outcome is known and its spool write not yet committed. */
  isSettled(id: string): boolean;
  /** Waits up to `ms` for every id's outcome; register before enqueueing. */
  waitFor(ids: readonly string[], ms: number): { result: Promise<WaitResult>; cancel(): void };
  /** Follows nicks and rooms added by a configuration reload. */
  extend(topology: Topology): void;
  /** Stanza size limits known for the server: advertised (XEP-0478) or learned from a refusal. */
  stanzaLimits(): Array<number | undefined>;
  /** `/ready`: every session online and every room joined, with the details. */
  readiness(): Readiness & { learnedMaxStanzaBytes: number | null };
  /** Number of messages sent and not yet confirmed, over all lanes. */
  inFlight(): number;
  /** Stops sending; resolves when nothing is in flight or `graceMs` passed. */
  drain(graceMs: number): Promise<void>;
}

interface Sent {
  readonly m: SpooledMessage;
  /** Send order within the nick's stream: the oldest unconfirmed is the poison suspect. */
  readonly order: number;
}

interface LaneState {
  readonly lane: Lane;
  readonly inFlight: Map<string, Sent>;
  /** Highest seq handed to the carrier since the lane last became ready. */
  cursor: number;
  failures: number;
  retryTimer: Timer | undefined;
  /** A pump is reading the spool; `again`: run another once it is done. */
  pumping: boolean;
  again: boolean;
  /** Counts the lane's losses: a pump that read the spool before a loss sends nothing. */
  epoch: number;
  /** The messages a rejoin found in the room, being settled: pumps wait for it. */
  finding: Promise<void>;
}

const laneKey = (l: Lane) => `${l.nick}\u0000${l.room}`;

/** Creates the loop over `carrier` and `spool`. */
export function createDeliveryLoop(deps: {
  spool: Spool;
  carrier: Carrier;
  topology: Topology;
  log: Logger;
  ttlMs: number;
  /** The XMPP account a nick logs in as, for session limits. */
  accountOf: (nick: string) => string;
  /** Which accounts this gateway sends as now (several gateways on one spool); all by default. */
  leadership?: Leadership;
  /** Messages sent per lane before waiting for confirmations (pipelining). */
  window?: number;
  clock?: Clock;
  random?: () => number;
  backoff?: BackoffOptions;
  observer?: LoopObserver;
}): DeliveryLoop {
  const { spool, log, carrier } = deps;
  // 128: with 32, one lane was bound to 32 / round trip (about 950 msg/s here) whatever the
  // load, while the server took 1,400+ (bench, BENCH_QUICK=1, runs minutes apart).
  const window = deps.window ?? 128;
  const clock = deps.clock ?? systemClock;
  const random = deps.random ?? Math.random;
  const backoff = deps.backoff ?? DEFAULT_BACKOFF;
  const lanes = new Map<string, LaneState>();
  const waiters = createWaiters(clock);
  /** Confirmed or dead-lettered, and still in the spool until its next commit. */
  const settled = new Set<string>();
  const poison = createPoisonCheck(log);
  const threads = createThreads({ spool, log, now: () => clock.now() });
  const rejoin = createRejoinCheck({
    spool,
    log,
    isSettled: (id) => settled.has(id),
    delivered: (m) => settle(m, "delivered"),
  });
  let draining = false;
  let drained: (() => void) | undefined;
  /** Lanes kicked since the last pump of kicked lanes. */
  const kicked = new Set<LaneState>();

  const stateOf = (lane: Lane): LaneState => {
    const key = laneKey(lane);
    let s = lanes.get(key);
    if (!s) {
      s = {
        lane,
        inFlight: new Map(),
        cursor: 0,
        failures: 0,
        retryTimer: undefined,
        pumping: false,
        again: false,
        epoch: 0,
        finding: Promise.resolve(),
      };
      lanes.set(key, s);
    }
    return s;
  };
  const inFlightCount = () => {
    let n = 0;
    for (const s of lanes.values()) n += s.inFlight.size;
    return n;
  };
  const nickInFlight = (nick: string) =>
    [...lanes.values()]
      .filter((s) => s.lane.nick === nick)
      .flatMap((s) => [...s.inFlight.values()]);
  const checkDrained = () => {
    if (draining && drained && inFlightCount() === 0) drained();
  };

  /** Removes a message from the spool's queue for good, one way or the other, once. */
  function settle(m: SpooledMessage, outcome: "delivered" | { reason: string }): void {
    if (settled.has(m.id)) return;
    settled.add(m.id);
    const write =
      outcome === "delivered" ? spool.delivered([m.id]) : spool.deadLetter(m.id, outcome.reason);
    write
      .catch((err) => log.error({ err, id: m.id }, "spool: recording the outcome failed"))
      .finally(() => settled.delete(m.id));
    if (outcome === "delivered") {
      deps.observer?.delivered?.(m, clock.now() - m.createdAt);
      waiters.settle(m.id, { status: "delivered" });
    } else {
      log.error(
        { id: m.id, room: m.room, nick: m.nick, route: m.route, reason: outcome.reason },
        `message dead-lettered: ${outcome.reason}`,
      );
      deps.observer?.failed?.(m, outcome.reason);
      waiters.settle(m.id, { status: "failed", reason: outcome.reason });
    }
    poison.settled(m);
  }

  /** Sends what the lane may send now; one pump per lane at a time (the spool reads are async). */
  function pump(s: LaneState): void {
    if (s.pumping) {
      s.again = true;
      return;
    }
    s.pumping = true;
    pumpOnce(s)
      .catch((err) => log.error({ err, room: s.lane.room }, "spool: reading the queue failed"))
      .finally(() => {
        s.pumping = false;
        if (!s.again) return;
        s.again = false;
        pump(s);
      });
  }

  async function pumpOnce(s: LaneState): Promise<void> {
    await s.finding;
    if (draining) return;
    if (!supervisor.canSend(s.lane)) {
      // A room that refuses us for good (ban, members-only): its messages cannot go out.
      const refusal = supervisor.refusal(s.lane);
      if (refusal && s.inFlight.size === 0) {
        for (const m of await spool.pending(s.lane, LOOK_FOR_LIMIT, 0))
          settle(m, { reason: refusal });
      }
      return;
    }
    let want = window - s.inFlight.size;
    if (poison.suspect(s.lane.nick) !== undefined) {
      // The stream was closed right after the suspect: it goes again alone, to tell.
      if (nickInFlight(s.lane.nick).length > 0) return;
      want = 1;
    } else if (s.inFlight.size > 0 && want < window / 4) {
      return; // refill in batches under load: one claim query per quarter window
    }
    if (want <= 0 || s.retryTimer) return;
    const epoch = s.epoch;
    // Several gateways: the claim is checked against our lease in the database itself.
    const account = deps.accountOf(s.lane.nick);
    const token = deps.leadership?.token(account);
    const fence = token === undefined ? undefined : { account, token };
    let sent = 0;
    for (;;) {
      const limit = want - sent;
      const batch = await spool.claim(s.lane, limit, s.cursor, fence);
      const extras = batch.some((m) => m.thread)
        ? await Promise.all(batch.map((m) => threads.extrasFor(m)))
        : [];
      // Lost, paused or stopped while the spool was read: the next ready pumps afresh.
      if (epoch !== s.epoch || s.retryTimer || draining || !supervisor.canSend(s.lane)) return;
      for (const [i, m] of batch.entries()) {
        s.cursor = m.seq;
        if (s.inFlight.has(m.id) || settled.has(m.id)) continue;
        if (clock.now() - m.createdAt > deps.ttlMs) {
          settle(m, {
            reason: `not delivered within MESSAGE_TTL (${Math.round(deps.ttlMs / 1000)} s)`,
          });
          continue;
        }
        const more = extras[i];
        if (more === "skip") {
          settle(m, "delivered"); // a reaction with nothing to react to (threads.ts logs why)
          continue;
        }
        s.inFlight.set(m.id, { m, order: poison.nextOrder(s.lane.nick) });
        carrier.send(s.lane, m.id, m.body, more);
        sent++;
      }
      // Skipped messages (expired, settled, in flight) leave places: claim again for them,
      // or nothing would send the ones behind until the next scan.
      if (sent >= want || batch.length < limit) break;
    }
  }

  function retryLater(s: LaneState, m: SpooledMessage, reason: string, slowDown: boolean): void {
    deps.observer?.retried?.(m, reason);
    spool.recordFailure(m.id, reason).catch(() => {});
    // Resend from this message on, in order, after a pause that grows with each failure.
    s.cursor = Math.min(s.cursor, m.seq - 1);
    if (s.retryTimer) return;
    const wait = backoffDelay(slowDown ? s.failures + 2 : s.failures, random, backoff);
    s.failures++;
    log.warn({ id: m.id, room: m.room, nick: m.nick, retryInMs: wait }, `will resend: ${reason}`);
    s.retryTimer = clock.setTimeout(() => {
      s.retryTimer = undefined;
      pump(s);
    }, wait);
  }

  function onRefused(lane: Lane, id: string, f: StanzaFault): void {
    const s = stateOf(lane);
    const sent = s.inFlight.get(id);
    if (!sent) return;
    s.inFlight.delete(id);
    checkDrained();
    const reason = `${lane.room} refused the message: ${f.condition}${f.text ? ` (${f.text})` : ""}`;
    if (isPermanentRefusal(f)) {
      settle(sent.m, { reason });
      pump(s);
    } else retryLater(s, sent.m, reason, isSlowDown(f));
  }

  /** The poison check: a stream closed right after the same message, twice. */
  function onDown(nick: string, fault: StreamFault): void {
    const oldest = nickInFlight(nick).sort((a, b) => a.order - b.order)[0]?.m;
    const reason = poison.closed(nick, oldest, fault);
    if (oldest && reason) settle(oldest, { reason });
  }

  const supervisor = createSupervisor({
    carrier,
    topology: deps.topology,
    clock,
    random,
    backoff,
    log,
    accountOf: deps.accountOf,
    leadership: deps.leadership,
    hooks: {
      ready: (lane) => pump(stateOf(lane)),
      lost(lane) {
        const s = stateOf(lane);
        // What was in flight may or may not have arrived: the next join's history and
        // archive check confirms what did, and the rest is resent from the oldest, in order.
        s.inFlight.clear();
        s.cursor = 0;
        s.epoch++;
        clock.clearTimeout(s.retryTimer);
        s.retryTimer = undefined;
        checkDrained();
        pump(s); // dead-letters at once if the refusal is permanent
      },
      found(lane, ids) {
        const s = stateOf(lane);
        // Pumps wait for this: what the room already has must not be sent again.
        s.finding = rejoin
          .found(lane, ids, s.finding)
          .catch((err) => log.error({ err, room: lane.room }, "spool: reading the queue failed"));
      },
      down: onDown,
      lookFor: (lane) => rejoin.lookFor(lane),
    },
  });

  let everUp = new Set<string>();
  carrier.on("up", (nick) => {
    if (everUp.has(nick)) deps.observer?.reconnected?.(nick);
    everUp.add(nick);
  });
  carrier.on("confirmed", (lane, id, stanzaId) => {
    const s = stateOf(lane);
    const sent = s.inFlight.get(id);
    if (!sent) return; // a reflection of a message already settled (or of someone else's)
    s.inFlight.delete(id);
    s.failures = 0;
    threads.confirmed(sent.m, stanzaId);
    settle(sent.m, "delivered");
    checkDrained();
    pump(s);
  });
  carrier.on("refused", onRefused);

  return {
    start: () => supervisor.start(),
    kick(lane) {
      if (kicked.size === 0) {
        queueMicrotask(() => {
          const lanes = [...kicked];
          kicked.clear();
          for (const s of lanes) pump(s);
        });
      }
      kicked.add(stateOf(lane));
    },
    expectsOutcome: (lane) => supervisor.online(lane),
    async scan() {
      for (const lane of await spool.lanes()) {
        // Work put back by `spool retry` in a lane whose room refused us for good: the
        // refusal may be gone (made a member, unbanned), so ask the room again now.
        if (supervisor.refusal(lane)) supervisor.retry(lane);
        else pump(stateOf(lane));
      }
    },
    isSettled: (id) => settled.has(id),
    waitFor: (ids, ms) => waiters.waitFor(ids, ms),
    extend: (topology) => supervisor.extend(topology),
    stanzaLimits: () => [...supervisor.maxStanzaBytes(), poison.learnedMax()],
    readiness: () => ({
      ...withLeases(threads.annotate(supervisor.readiness()), deps.leadership, deps.accountOf),
      learnedMaxStanzaBytes: poison.learnedMax() ?? null,
    }),
    inFlight: inFlightCount,
    drain(graceMs) {
      draining = true;
      supervisor.stop();
      for (const s of lanes.values()) clock.clearTimeout(s.retryTimer);
      everUp = new Set();
      if (inFlightCount() === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = clock.setTimeout(resolve, graceMs);
        drained = () => {
          clock.clearTimeout(timer);
          resolve();
        };
      });
    },
  };
}
