/**
 * The gateway on a PostgreSQL spool (issue 14, `SPOOL_URL`), beside the SQLite figures of
 * the same run: the accept path, and end to end with callers waiting and `?wait=0`. One
 * throwaway PostgreSQL serves the whole run (src/devserver/postgres.ts: Debian's server on
 * loopback TCP, its data in the temp dir, fsync on as by default); each gateway gets a
 * fresh database, as each SQLite gateway gets a fresh directory. A gateway alone on its
 * database takes the sender lease at once.
 */
import pg from "pg";
import { type PostgresServer, startPostgres } from "../src/devserver/postgres.ts";
import { acceptGateway, type GatewayAccept } from "./accept.ts";
import { describe } from "./e2e.ts";
import { complaints, startGateway } from "./gateway.ts";
import { type ClosedRun, type CommitRate, type Ctx, closedRun, warmUp } from "./phases.ts";
import { SIZES } from "./settings.ts";
import type { Usage } from "./stats.ts";

/** The server's version and the settings that decide what a commit costs. */
export interface PostgresInfo {
  version: string;
  settings: Record<string, string>;
}

/** Settings the report names, as the running server has them (`SHOW`). */
const SHOWN = [
  "fsync",
  "synchronous_commit",
  "wal_sync_method",
  "full_page_writes",
  "shared_buffers",
] as const;

/** The run's PostgreSQL and what it is. */
export interface BenchPostgres {
  server: PostgresServer;
  info: PostgresInfo;
}

/** Starts the run's PostgreSQL (the test harness's defaults) and reads its version and settings. */
export async function startBenchPostgres(): Promise<BenchPostgres> {
  const server = await startPostgres();
  try {
    return { server, info: await describePostgres(server.url) };
  } catch (err) {
    await server.stop();
    throw err;
  }
}

async function describePostgres(url: string): Promise<PostgresInfo> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const show = async (name: string) =>
      String(Object.values((await client.query(`SHOW ${name}`)).rows[0] ?? {})[0] ?? "?");
    const settings: Record<string, string> = {};
    for (const name of SHOWN) settings[name] = await show(name);
    return { version: await show("server_version"), settings };
  } finally {
    await client.end();
  }
}

/** The end-to-end runs on PostgreSQL: one of each mode, on one gateway. */
export interface PostgresEndToEnd {
  waiting: ClosedRun;
  noWait: ClosedRun;
  complaints: string[];
}

/** What the PostgreSQL phases measured. */
export interface PostgresResults {
  info: PostgresInfo;
  accept: GatewayAccept;
  e2e: PostgresEndToEnd;
}

/** Callers waiting, then `?wait=0`, `SIZES.n` each from 32 connections, on a fresh database. */
export async function postgresEndToEnd(ctx: Ctx, db: BenchPostgres): Promise<PostgresEndToEnd> {
  const spoolUrl = await db.server.createDatabase();
  const gw = await startGateway({ server: ctx.server, room: ctx.room, ready: true, spoolUrl });
  try {
    await warmUp(ctx, gw);
    const waiting = await closedRun(ctx, gw, SIZES.n, SIZES.concurrency, "");
    ctx.say(
      `  callers waiting: ${describe(waiting)}; ${commitsLine(waiting.commits, waiting.usage)}`,
    );
    const noWait = await closedRun(ctx, gw, SIZES.n, SIZES.concurrency, "?wait=0");
    ctx.say(`  ?wait=0: ${describe(noWait)}; ${commitsLine(noWait.commits, noWait.usage)}`);
    await gw.stop();
    return { waiting, noWait, complaints: complaints(gw) };
  } finally {
    await gw.stop(); // bounded, and a no-op once it has exited
  }
}

/** The accept path on a fresh database: same connections and seconds as on SQLite. */
export async function postgresAccept(
  ctx: Ctx,
  db: BenchPostgres,
  connections: number,
  seconds: number,
): Promise<GatewayAccept> {
  return acceptGateway(ctx, connections, seconds, await db.server.createDatabase());
}

/** A run's spool commits and the database server's CPU, for the progress output. */
export function commitsLine(c: CommitRate, u: Usage): string {
  return `${c.perSecond.toFixed(0)} commits/s of ${c.writesEach.toFixed(1)} writes, ${c.msEach.toFixed(2)} ms each; PostgreSQL ${u.databaseCores.toFixed(2)} cores`;
}
