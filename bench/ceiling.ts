/**
 * The server's ceiling, and the library's figure beside it. The minimal client
 * (bench/minimal.ts) sends all at once, with a window of unreflected messages, and open
 * loop at fixed rates, into the archived room (MAM on: the gateway's own room) and into a
 * room without an archive (MAM off); then the library client (xmpp.js through the
 * gateway's session code) sends into the archived room. Each client is connected only
 * for its own block, so that every phase has the same two occupants (sender + observer).
 */
import { statSync } from "node:fs";
import type { XmppSettings } from "../src/config/index.ts";
import type { OneShot } from "../src/xmpp/one-shot.ts";
import { closedLoop, openLoop } from "./load.ts";
import { connectMinimal, groupchat, type MinimalClient } from "./minimal.ts";
import { ARRIVAL_TIMEOUT_MS, type Ctx, type RateRun, type Run } from "./phases.ts";
import { nowMs, sleep } from "./proc.ts";
import { SIZES } from "./settings.ts";
import { delivery, meter } from "./stats.ts";
import { joinedClient, messageBody } from "./xmpp.ts";

/** Bytes per write in the all-at-once run: one TLS record's worth of stanzas. */
const CHUNK_BYTES = 16 * 1024;

/** The minimal client's nick (its reflections are recognised by it). */
const NICK = "minimal";

/**
 * The minimal client sends `n` pre-serialised messages into `room`: with `window`, that
 * many unreflected at any time (the next one goes out as a reflection comes back); else
 * all at once, written as fast as the socket takes them ('drain' respected), each
 * message's start being the moment its chunk was handed to the socket.
 */
export async function minimalRun(
  ctx: Ctx,
  client: MinimalClient,
  room: string,
  n: number,
  window?: number,
): Promise<Run> {
  const from = ctx.next(n);
  const end = from + n;
  const stanzas = Array.from({ length: n }, (_, i) => groupchat(room, from + i));
  let next = from;
  const sendNext = () => {
    ctx.ledger.start[next] = nowMs();
    client.queue(stanzas[next - from] ?? "");
    next++;
  };
  let reflected = 0;
  const allReflected = new Promise<void>((resolve) => {
    client.onReflection = (seq) => {
      if (seq < from || seq >= end) return;
      reflected++;
      if (window !== undefined && next < end) sendNext();
      if (reflected === n) resolve();
    };
  });
  const m = meter({ prosody: ctx.server.pid, database: ctx.database?.pid });
  if (window !== undefined) {
    while (next < end && next - from < window) sendNext();
  } else {
    while (next < end) {
      const first = next;
      let chunk = "";
      while (next < end && chunk.length < CHUNK_BYTES) chunk += stanzas[next++ - from];
      const t = nowMs();
      ctx.ledger.start.fill(t, first, next);
      await client.write(chunk);
    }
  }
  await ctx.arrivals.waitRange(from, n, ARRIVAL_TIMEOUT_MS);
  await Promise.race([allReflected, sleep(2000)]);
  client.onReflection = undefined;
  return { delivery: delivery(ctx.ledger, ctx.arrivals, from, n), usage: m.stop() };
}

/** The minimal client at a fixed rate on a timer: the server's own latency at that load. */
export async function minimalRateRun(
  ctx: Ctx,
  client: MinimalClient,
  room: string,
  pct: number,
  ceiling: number,
  seconds: number,
): Promise<RateRun> {
  const rate = (ceiling * pct) / 100;
  const n = Math.round(rate * seconds);
  const from = ctx.next(n);
  const stanzas = Array.from({ length: n }, (_, i) => groupchat(room, from + i));
  const m = meter({ prosody: ctx.server.pid, database: ctx.database?.pid });
  const lag = await openLoop(
    (seq, scheduled) => {
      ctx.ledger.start[seq] = scheduled;
      client.queue(stanzas[seq - from] ?? "");
      return Promise.resolve();
    },
    from,
    n,
    rate,
  );
  await ctx.arrivals.waitRange(from, n, ARRIVAL_TIMEOUT_MS);
  const run = { delivery: delivery(ctx.ledger, ctx.arrivals, from, n), usage: m.stop() };
  return { pct, offered: rate, ...lag, ...run };
}

/** The library client sends `n` messages into the room; `window` in flight, else all at once. */
export async function libraryRun(
  ctx: Ctx,
  client: OneShot,
  n: number,
  window?: number,
): Promise<Run> {
  const from = ctx.next(n);
  const m = meter({ prosody: ctx.server.pid, database: ctx.database?.pid });
  const send = (seq: number) => {
    ctx.ledger.start[seq] = nowMs();
    return client.send(ctx.room, `c${seq}`, messageBody(seq)).catch(() => {});
  };
  let sent: Promise<unknown>;
  if (window === undefined) {
    const all: Promise<void>[] = [];
    for (let i = 0; i < n; i++) all.push(send(from + i));
    sent = Promise.all(all);
  } else {
    sent = closedLoop(send, from, n, window);
  }
  await ctx.arrivals.waitRange(from, n, ARRIVAL_TIMEOUT_MS);
  await Promise.race([sent, sleep(5000)]);
  return { delivery: delivery(ctx.ledger, ctx.arrivals, from, n), usage: m.stop() };
}

/** One client's block of runs: all at once (repeated), then with a window. */
export interface CeilingBlock {
  runs: Run[];
  windowed: Run;
}

/** Everything measured before the gateway phases. */
export interface Ceilings {
  /** Minimal client, archived room (MAM on): the ceiling the targets use. */
  mamOn: CeilingBlock & { rates: RateRun[] };
  /** Minimal client, room without archive (MAM off). */
  mamOff: CeilingBlock;
  /** Library client (xmpp.js, the gateway's session code), archived room. */
  library: CeilingBlock;
  /** Best minimal MAM-on run (all at once or windowed): the open-loop rates are % of it. */
  value: number;
  window: number;
  /** Size of each room's archive file after its block: shows MAM on and off took effect. */
  archiveBytes: { on: number; off: number };
}

const best = (runs: Run[]) => Math.max(...runs.map((r) => r.delivery.throughput));
const rates = (b: CeilingBlock) =>
  [...b.runs.map((r) => r.delivery.throughput), b.windowed.delivery.throughput]
    .map((x) => x.toFixed(0))
    .join(", ");

/** Bytes of `room`'s archive in Prosody's internal storage (0: none, i.e. nothing archived). */
function archiveBytes(ctx: Ctx, room: string): number {
  const [node] = room.split("@");
  const host = ctx.server.mucDomain.replaceAll(".", "%2e");
  try {
    return statSync(`${ctx.server.dir}/data/${host}/muc_log/${node}.list`).size;
  } catch {
    return 0;
  }
}

async function minimalBlock(
  ctx: Ctx,
  sender: XmppSettings,
  room: string,
  repeats: number,
): Promise<CeilingBlock> {
  const client = await connectMinimal(sender, NICK, { [room]: {} });
  try {
    await minimalRun(ctx, client, room, 500); // warm-up
    const runs: Run[] = [];
    for (let i = 0; i < repeats; i++) runs.push(await minimalRun(ctx, client, room, SIZES.n));
    const windowed = await minimalRun(ctx, client, room, SIZES.n, SIZES.concurrency);
    return { runs, windowed };
  } finally {
    await client.stop();
  }
}

/** The ceiling phases (see the file comment), in order: MAM on, MAM off, library. */
export async function measureCeilings(ctx: Ctx, sender: XmppSettings): Promise<Ceilings> {
  const w = SIZES.concurrency;
  ctx.say(
    `minimal client, MAM on: ${SIZES.n} messages all at once ×${SIZES.repeats}, ${w} in flight`,
  );
  const on = await minimalBlock(ctx, sender, ctx.room, SIZES.repeats);
  const value = Math.max(best(on.runs), on.windowed.delivery.throughput);
  ctx.say(`  ${rates(on)} msg/s; ceiling ${value.toFixed(0)} msg/s`);
  const client = await connectMinimal(sender, NICK, { [ctx.room]: {} });
  const onRates: RateRun[] = [];
  try {
    for (const pct of SIZES.ratePcts) {
      await sleep(300);
      const r = await minimalRateRun(ctx, client, ctx.room, pct, value, SIZES.rateSeconds);
      onRates.push(r);
      ctx.say(
        `  open loop ${pct}%: ${r.offered.toFixed(0)}/s offered, ${r.delivery.throughput.toFixed(0)} delivered, p99 ${r.delivery.e2e.p99.toFixed(1)} ms, lost ${r.delivery.lost}`,
      );
    }
  } finally {
    await client.stop();
  }
  const archiveOn = archiveBytes(ctx, ctx.room);

  ctx.say(`minimal client, MAM off (a room created without an archive) ×${SIZES.mamOffRepeats}`);
  const off = await minimalBlock(ctx, sender, ctx.noMamRoom, SIZES.mamOffRepeats);
  const archiveOff = archiveBytes(ctx, ctx.noMamRoom);
  ctx.say(
    `  ${rates(off)} msg/s; archives: ${archiveOn} bytes (MAM on), ${archiveOff} bytes (MAM off)`,
  );
  if (archiveOn === 0 || archiveOff !== 0) ctx.say("  ⚠ MAM on/off did not take effect as meant");

  ctx.say(`library client (xmpp.js), MAM on: all at once ×${SIZES.libraryRepeats}, ${w} in flight`);
  const lib = await joinedClient(sender, ctx.room, "library");
  let library: CeilingBlock;
  try {
    await libraryRun(ctx, lib, 500); // warm-up
    const runs: Run[] = [];
    for (let i = 0; i < SIZES.libraryRepeats; i++) runs.push(await libraryRun(ctx, lib, SIZES.n));
    library = { runs, windowed: await libraryRun(ctx, lib, SIZES.n, w) };
  } finally {
    await lib.stop();
  }
  ctx.say(`  ${rates(library)} msg/s`);
  return {
    mamOn: { ...on, rates: onRates },
    mamOff: off,
    library,
    value,
    window: w,
    archiveBytes: { on: archiveOn, off: archiveOff },
  };
}

/** The minimal client once more, at the end of the run: did the server drift? */
export async function endCeiling(ctx: Ctx, sender: XmppSettings): Promise<Run> {
  const client = await connectMinimal(sender, NICK, { [ctx.room]: {} });
  try {
    return await minimalRun(ctx, client, ctx.room, SIZES.n);
  } finally {
    await client.stop();
  }
}

/** Creates the room without an archive (before the observer joins it: its creator is owner). */
export async function createNoMamRoom(
  sender: XmppSettings,
  room: string,
  config: Record<string, string>,
): Promise<void> {
  const client = await connectMinimal(sender, NICK, { [room]: config });
  await client.stop();
}
