// The delivery loop wired to a fake carrier, a fake clock, a fixed random source and the
// memory spool: every decision it makes shows in the carrier's transcript or the spool.
import pino from "pino";
import { backoffDelay } from "../../src/core/backoff.ts";
import type { Leadership } from "../../src/delivery/leadership.ts";
import { createDeliveryLoop, type DeliveryLoop } from "../../src/delivery/loop.ts";
import type { Topology } from "../../src/delivery/port.ts";
import { createMemorySpool } from "../../src/spool/memory.ts";
import type { Lane, Spool, SpooledMessage } from "../../src/spool/types.ts";
import { type FakeCarrier, fakeCarrier } from "./fake-carrier.ts";
import { type FakeClock, fakeClock } from "./fake-clock.ts";

export const ACCOUNT = "gw@example.org";
export const LANE: Lane = { room: "r@c", nick: "bot" };
export const BACKOFF = { baseMs: 1000, maxMs: 60_000 };
/** The random source unless a test says otherwise. */
export const HALF = () => 0.5;

/** The backoff the loop must choose for `attempt` with random `r` (0.5: 750, 1500, 3000…). */
export const delayOf = (attempt: number, r: () => number = HALF) =>
  backoffDelay(attempt, r, BACKOFF);

/** A random source returning `values` in turn (then the last one). */
export function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)] ?? 0.5;
}

/** One macrotask: the memory spool commits its writes on the next one. */
export const tick = () => new Promise<void>((r) => setImmediate(r));

export interface Harness {
  clock: FakeClock;
  carrier: FakeCarrier;
  spool: Spool;
  loop: DeliveryLoop;
  /** What the observer saw, as `delivered m1`, `failed m1: reason`, `retried m1: reason`. */
  seen: string[];
  /** Enqueues messages (`id` or `[id, body]`) on `lane`, waits for the commit, kicks the lane. */
  put(lane: Lane, ...msgs: Array<string | [string, string]>): Promise<SpooledMessage[]>;
  /** Starts, brings every session up and joins every room: the transcript is taken. */
  online(): Promise<void>;
  /** Moves the fake clock by `ms`, then lets the loop's spool reads and sends finish. */
  advance(ms: number): Promise<void>;
  /** After a commit: the dead letters as `id: reason`. */
  dead(): Promise<string[]>;
  /** After a commit: the ids still queued on `lane`. */
  queued(lane?: Lane): Promise<string[]>;
}

/** Creates the loop over fakes; `topology` defaults to `bot` in `r@c`. */
export function harness(
  opts: {
    topology?: Topology;
    ttlMs?: number;
    random?: () => number;
    window?: number;
    /** Nicks logging in as an account of their own; the others as ACCOUNT. */
    accounts?: ReadonlyMap<string, string>;
    /** Which accounts this gateway sends as (several gateways on one spool); all by default. */
    leadership?: Leadership;
    /** The spool's send mark per lane (a PostgreSQL spool's); Infinity by default. */
    sentUpTo?: (lane: Lane) => number;
  } = {},
): Harness {
  const clock = fakeClock();
  const carrier = fakeCarrier();
  const memory = createMemorySpool({
    limits: { maxMessages: 100_000, maxBytes: 100_000_000 },
    now: () => clock.now(),
  });
  const mark = opts.sentUpTo;
  const spool: Spool = mark ? { ...memory, sentUpTo: async (lane) => mark(lane) } : memory;
  const topology = opts.topology ?? new Map([[LANE.nick, new Set([LANE.room])]]);
  const seen: string[] = [];
  const loop = createDeliveryLoop({
    spool,
    carrier,
    topology,
    log: pino({ level: "silent" }),
    ttlMs: opts.ttlMs ?? 86_400_000,
    accountOf: (nick) => opts.accounts?.get(nick) ?? ACCOUNT,
    ...(opts.leadership && { leadership: opts.leadership }),
    ...(opts.window === undefined ? {} : { window: opts.window }),
    clock,
    random: opts.random ?? HALF,
    backoff: BACKOFF,
    observer: {
      delivered: (m) => seen.push(`delivered ${m.id}`),
      failed: (m, reason) => seen.push(`failed ${m.id}: ${reason}`),
      retried: (m, reason) => seen.push(`retried ${m.id}: ${reason}`),
    },
  });
  return {
    clock,
    carrier,
    spool,
    loop,
    seen,
    async put(lane, ...msgs) {
      const stored = await spool.enqueue(
        msgs.map((m) => {
          const [id, body] = typeof m === "string" ? [m, `body of ${m}`] : m;
          return { postId: `p-${id}`, id, route: "r", room: lane.room, nick: lane.nick, body };
        }),
      );
      loop.kick(lane);
      await tick(); // the kick's pump reads the spool, then sends
      return [...stored];
    },
    async online() {
      loop.start();
      for (const [nick, rooms] of topology) {
        await carrier.up(nick);
        for (const room of rooms) await carrier.joined({ room, nick });
      }
      carrier.take();
    },
    async advance(ms) {
      clock.advance(ms);
      await tick();
    },
    async dead() {
      await tick(); // the pumps' spool reads and what they decided
      await tick(); // the commit of those decisions
      return (await spool.listDead()).map((d) => `${d.id}: ${d.reason}`);
    },
    async queued(lane = LANE) {
      await tick();
      await tick();
      return (await spool.pending(lane, 100_000)).map((m) => m.id);
    },
  };
}

/** `send r@c bot m1` for each id. */
export const sends = (lane: Lane, ...ids: string[]) =>
  ids.map((id) => `send ${lane.room} ${lane.nick} ${id}`);

/** `m1` … `mN`. */
export const ids = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `m${from + i}`);
