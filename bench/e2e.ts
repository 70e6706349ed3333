/**
 * The gateway end to end, on one long-lived gateway process: closed loops with the
 * callers waiting for their reply and with `?wait=0`, interleaved so that drift over the
 * block affects both modes alike, then the open-loop rates as percentages of the ceiling.
 */
import { complaints, startGateway } from "./gateway.ts";
import {
  type ClosedRun,
  type Ctx,
  closedRun,
  type RateRun,
  type Run,
  rateRun,
  warmUp,
} from "./phases.ts";
import { sleep } from "./proc.ts";
import { SIZES } from "./settings.ts";

/** What the end-to-end block measured. */
export interface EndToEnd {
  /** Callers waiting for the reply (200 once delivered), 32 keep-alive connections. */
  waiting: ClosedRun[];
  /** `?wait=0`: the reply does not wait for delivery. */
  noWait: ClosedRun[];
  rates: RateRun[];
  complaints: string[];
}

/** A one-line summary of a run, for the progress output. */
export function describe(r: Run): string {
  const d = r.delivery;
  return (
    `${d.throughput.toFixed(0)} msg/s delivered, p50 ${d.e2e.p50.toFixed(1)} ms, ` +
    `p99 ${d.e2e.p99.toFixed(1)} ms, lost ${d.lost}, dup ${d.duplicates}; others used ${r.usage.otherCores.toFixed(2)} cores`
  );
}

export async function endToEnd(ctx: Ctx, ceiling: number): Promise<EndToEnd> {
  const gw = await startGateway({ server: ctx.server, room: ctx.room, ready: true });
  const out: EndToEnd = { waiting: [], noWait: [], rates: [], complaints: [] };
  try {
    await warmUp(ctx, gw);
    for (let i = 0; i < SIZES.e2eRepeats; i++) {
      const waiting = await closedRun(ctx, gw, SIZES.n, SIZES.concurrency, "");
      out.waiting.push(waiting);
      ctx.say(`  callers waiting: ${describe(waiting)}`);
      const noWait = await closedRun(ctx, gw, SIZES.n, SIZES.concurrency, "?wait=0");
      out.noWait.push(noWait);
      ctx.say(`  ?wait=0: ${describe(noWait)}`);
    }
    for (const pct of SIZES.ratePcts) {
      await sleep(500);
      const r = await rateRun(ctx, gw, pct, ceiling, SIZES.rateSeconds);
      out.rates.push(r);
      ctx.say(`  open loop ${pct}%: ${r.offered.toFixed(0)}/s offered, ${describe(r)}`);
    }
  } finally {
    await gw.stop();
    out.complaints.push(...complaints(gw));
  }
  return out;
}
