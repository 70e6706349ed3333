/**
 * The gateway under test, as operators run it: `node bin/xmpp-msg-gw.js serve` in its own
 * process, configured by the environment only, with a fresh spool directory (or a fresh
 * PostgreSQL database).
 */
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { ProsodyServer } from "../src/devserver/prosody.ts";
import {
  type Child,
  freePort,
  httpGet,
  nowMs,
  REPO,
  sleep,
  spawnNode,
  waitStatus,
} from "./proc.ts";

/** The route's token; the URL to post to is `${url}/post/${TOKEN}`. */
export const TOKEN = "bench-token-7f3a9c2e51d84b06";
export const GW_USER = { user: "gw", password: "gw-bench-pass" };

/** The node options the gateway runs with when deployed (bin/xmpp-msg-gw, the Dockerfile). */
export const DEPLOYED_NODE_ARGS = "--max-semi-space-size=2";

/**
 * Extra node options for the gateway process, from `BENCH_GATEWAY_NODE_ARGS` (space
 * separated), for experiments such as `--max-semi-space-size=8`; the report names them.
 */
export const GATEWAY_NODE_ARGS = (process.env.BENCH_GATEWAY_NODE_ARGS ?? DEPLOYED_NODE_ARGS)
  .split(" ")
  .filter((a) => a !== "");

/** A running gateway process. */
export interface GatewayProcess extends Child {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** The URL messages are posted to. */
  readonly postUrl: string;
  /** Milliseconds from spawn to `/health` 200 and to `/ready` 200 (undefined if not awaited). */
  readonly toHealthMs: number;
  readonly toReadyMs: number | undefined;
}

/** Options of {@link startGateway}. */
export interface GatewayStart {
  server: ProsodyServer;
  room: string;
  /** Point XMPP at this port instead of Prosody's (a closed port: XMPP unreachable). */
  xmppPort?: number;
  /** Wait for `/ready` (XMPP online, room joined); else only for `/health`. */
  ready: boolean;
  /** Directory for a `--cpu-prof` profile of the whole process life. */
  cpuProfDir?: string;
  /** `SPOOL_URL`: a PostgreSQL spool (issue 14) instead of SQLite in the fresh `DATA_DIR`. */
  spoolUrl?: string;
}

/** Spawns the gateway and waits until it answers `/health` (and `/ready` when asked). */
export async function startGateway(o: GatewayStart): Promise<GatewayProcess> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), "bench-gw-"));
  const env: Record<string, string> = {
    JID_FROM_USER: `${GW_USER.user}@${o.server.domain}`,
    JID_FROM_PASS: GW_USER.password,
    XMPP_HOST: o.server.host,
    XMPP_PORT: String(o.xmppPort ?? o.server.c2sPort),
    XMPP_CA_FILE: o.server.caFile,
    KNOWN_ROOMS: `${TOKEN}:${o.room}:bench-bot`,
    RATE_LIMIT_PER_MINUTE: "0",
    LOG_LEVEL: "warn",
    XMPP_LOG_LEVEL: "warn",
    DATA_DIR: path.join(dir, "data"),
    HTTP_HOST: "127.0.0.1",
    HTTP_PORT: String(port),
    // The accept phase spools everything it gets: the default cap (100,000) would turn
    // into 503s, which is the limit working, not the accept path's speed.
    SPOOL_MAX_MESSAGES: "100000000",
    SPOOL_MAX_BYTES: String(64 * 1024 ** 3),
    SHUTDOWN_GRACE_MS: "2000",
    // As deployed: the compiled JavaScript that bench/run.ts builds into dist/.
    XMPP_MSG_GW_COMPILED: "1",
    // One gateway on its own database: it takes the sender lease at once (LEASE_TTL default).
    ...(o.spoolUrl === undefined ? {} : { SPOOL_URL: o.spoolUrl }),
  };
  const args = [
    ...GATEWAY_NODE_ARGS,
    ...(o.cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${o.cpuProfDir}`] : []),
    path.join(REPO, "bin", "xmpp-msg-gw.js"),
    "serve",
  ];
  const t0 = nowMs();
  // cwd is the temp dir: a developer's ./.env or ./.pyenv must not leak into the run.
  const child = spawnNode(args, env, { cwd: dir, name: "gateway" });
  const url = `http://127.0.0.1:${port}`;
  try {
    const exited = child.exited.then(() => {
      throw new Error(`the gateway exited during start-up:\n${child.logTail()}`);
    });
    exited.catch(() => {}); // an exit after start-up is the caller's business
    await Promise.race([waitStatus(`${url}/health`, 200, 15_000), exited]);
    const toHealthMs = nowMs() - t0;
    let toReadyMs: number | undefined;
    if (o.ready) {
      await Promise.race([waitStatus(`${url}/ready`, 200, 20_000), exited]);
      // On PostgreSQL, /ready is 200 for a standby too: wait for the lease and the join, or
      // posts spooled meanwhile are what the join looks for in the room archive first.
      if (o.spoolUrl !== undefined) await Promise.race([sending(url, 20_000), exited]);
      toReadyMs = nowMs() - t0;
    }
    return Object.assign(child, { url, postUrl: `${url}/post/${TOKEN}`, toHealthMs, toReadyMs });
  } catch (err) {
    await child.stop();
    throw new Error(`${(err as Error).message}\n${child.logTail()}`);
  }
}

/** Resolves once `/ready` says the gateway holds every lease and is in every room. */
async function sending(url: string, timeoutMs: number): Promise<void> {
  const by = nowMs() + timeoutMs;
  let body = "";
  while (nowMs() < by) {
    body = (await httpGet(`${url}/ready`)).body;
    try {
      const r = JSON.parse(body) as {
        leases?: { role: string }[];
        sessions?: { online: boolean; rooms: { state: string }[] }[];
      };
      const leading = (r.leases ?? []).every((l) => l.role === "leader");
      const joined = (r.sessions ?? []).every(
        (x) => x.online && x.rooms.every((room) => room.state === "joined"),
      );
      if (leading && joined && r.sessions !== undefined) return;
    } catch {
      // Not JSON yet: ask again.
    }
    await sleep(10);
  }
  throw new Error(`the gateway did not take the lease and join within ${timeoutMs} ms: ${body}`);
}

/** The warning and error lines a stopped gateway logged (pino JSON: level 40 and up). */
export function complaints(gw: GatewayProcess): string[] {
  return gw
    .logTail()
    .split("\n")
    .filter((line) => {
      const level = /"level":(\d+)/.exec(line)?.[1];
      return level !== undefined && Number(level) >= 40;
    });
}
