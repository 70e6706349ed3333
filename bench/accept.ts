/**
 * The accept path alone: XMPP unreachable (a closed port), so every post is spooled
 * durably and answered 202 at once; autocannon against the gateway, and against a trivial
 * server for the load generator's own limit. On SQLite, and on PostgreSQL (issue 14).
 */
import { type GatewayProcess, startGateway } from "./gateway.ts";
import { closedLoop, createPoster, type HttpRun, hammer } from "./load.ts";
import { type CommitRate, type Ctx, commitCounters, commitRate } from "./phases.ts";
import { freePort, httpGet, nowMs, REPO, spawnNode, waitStatus } from "./proc.ts";
import { meter, type Usage } from "./stats.ts";

/** The gateway's accept path alone: XMPP unreachable, every post spooled and answered 202. */
export interface GatewayAccept {
  gateway: HttpRun;
  gatewayUsage: Usage;
  /** Messages in the spool afterwards, as the gateway's `/ready` reports them. */
  spooled: number | undefined;
  /** The spool's group commits during the measured seconds (its `/metrics`). */
  commits: CommitRate;
}

/** The accept path, and the load generator's own limit against a trivial server. */
export interface AcceptResult extends GatewayAccept {
  connections: number;
  seconds: number;
  trivial: HttpRun;
  /** The benchmark's own node:http client against the trivial server (32 connections). */
  posterRate: number;
}

export async function acceptRun(
  ctx: Ctx,
  connections: number,
  seconds: number,
): Promise<AcceptResult> {
  const trivialPort = await freePort();
  const trivial = spawnNode(
    [`${REPO}/bench/trivial-server.ts`, String(trivialPort)],
    {},
    {
      name: "trivial",
    },
  );
  try {
    const trivialUrl = `http://127.0.0.1:${trivialPort}`;
    await waitStatus(trivialUrl, 202, 10_000);
    const trivialRun = await hammer(trivialUrl, connections, Math.min(seconds, 5));
    // The same check for the client the delivery phases use.
    const n = 5000;
    const from = ctx.next(n);
    const poster = createPoster(trivialUrl, 32, ctx.ledger);
    const t0 = nowMs();
    await closedLoop(poster.post, from, n, 32);
    const posterRate = n / ((nowMs() - t0) / 1000);
    poster.close();
    await trivial.stop();
    const gateway = await acceptGateway(ctx, connections, seconds);
    return { connections, seconds, trivial: trivialRun, posterRate, ...gateway };
  } finally {
    await trivial.stop();
  }
}

/** The gateway alone on the accept path: on SQLite, or on the PostgreSQL spool `spoolUrl`. */
export async function acceptGateway(
  ctx: Ctx,
  connections: number,
  seconds: number,
  spoolUrl?: string,
): Promise<GatewayAccept> {
  const closedPort = await freePort(); // nothing listens there: XMPP unreachable
  const gw = await startGateway({
    server: ctx.server,
    room: ctx.room,
    ready: false,
    xmppPort: closedPort,
    spoolUrl,
  });
  try {
    await hammer(gw.postUrl, connections, 1); // warm-up
    const before = await spoolSize(gw);
    const c0 = await commitCounters(gw);
    const m = meter({ gateway: gw.pid, prosody: ctx.server.pid, database: ctx.database?.pid });
    const gatewayRun = await hammer(gw.postUrl, connections, seconds);
    const gatewayUsage = m.stop();
    const commits = commitRate(c0, await commitCounters(gw), gatewayUsage.wallS);
    const after = await spoolSize(gw);
    return {
      gateway: gatewayRun,
      gatewayUsage,
      spooled: after === undefined || before === undefined ? undefined : after - before,
      commits,
    };
  } finally {
    await gw.stop();
  }
}

async function spoolSize(gw: GatewayProcess): Promise<number | undefined> {
  const res = await httpGet(`${gw.url}/ready`);
  try {
    return (JSON.parse(res.body) as { spool?: { messages?: number } }).spool?.messages;
  } catch {
    return undefined;
  }
}
