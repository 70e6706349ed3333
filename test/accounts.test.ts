// Session limits, on ejabberd (Prosody has no per-account limit by default; ejabberd's is
// max_user_sessions: 10): more nicks than the account may have sessions is reported with
// its fix, by `/ready` and by `check`, without flapping; a route with an XMPP account of its
// own (CONFIG_FILE `account`) is the fix. What arrived is checked by an independent client.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { LogLevel } from "../src/config/index.ts";
import { type EjabberdServer, startEjabberd } from "../src/devserver/ejabberd.ts";
import { httpPost } from "../src/devserver/http-post.ts";
import { createLogger } from "../src/log.ts";
import type { Gateway } from "../src/main.ts";
import { runCli } from "./support/cli.ts";
import { FAST_TIMING, startTestGateway, xmppEnv } from "./support/gateway.ts";
import { until } from "./support/until.ts";
import { type Observer, observe } from "./support/witness.ts";

const LOG_LEVEL = (process.env.TEST_LOG_LEVEL ?? "fatal") as LogLevel;
const WATCHER = { user: "witness", password: "witness-pass-1" };
const MAIN = { user: "gw-main", password: "main-pass-1" };
const SECOND = { user: "gw-second", password: "second-pass-1" };
/** Small, so that three nicks are one too many. */
const LIMIT = 2;

let server: EjabberdServer;
const gateways: Gateway[] = [];
const observers: Observer[] = [];

before(async () => {
  server = await startEjabberd({ users: [WATCHER, MAIN, SECOND], maxUserSessions: LIMIT });
});

after(async () => {
  await Promise.allSettled(gateways.map((g) => g.stop()));
  await Promise.allSettled(observers.map((o) => o.stop()));
  await server?.stop();
});

async function gateway(env: Record<string, string>): Promise<Gateway> {
  const g = await startTestGateway(
    server as never,
    MAIN,
    {
      DATA_DIR: mkdtempSync(join(tmpdir(), "gw-data-")),
      XMPP_LOG_LEVEL: LOG_LEVEL,
      RATE_LIMIT_PER_MINUTE: "0",
      ...env,
    },
    { log: createLogger(LOG_LEVEL), timing: FAST_TIMING, selfPingMs: 1000 },
  );
  gateways.push(g);
  return g;
}

const readiness = async (g: Gateway) => {
  const res = await fetch(`${g.url}/ready`);
  return { status: res.status, body: (await res.json()) as Readiness };
};
interface Readiness {
  sessions: Array<{ nick: string; online: boolean }>;
}
const online = (r: Readiness) =>
  r.sessions
    .filter((s) => s.online)
    .map((s) => s.nick)
    .sort();

test("more nicks than the server allows sessions: reported with the fix, no flapping", async () => {
  const room = `limit@${server.mucDomain}`;
  const g = await gateway({ KNOWN_ROOMS: `l1:${room}:n1 l2:${room}:n2 l3:${room}:n3` });
  await until(
    "a session to be reported blocked",
    async () => JSON.stringify((await readiness(g)).body).includes("max_user_sessions"),
    20_000,
  );
  const first = await readiness(g);
  await new Promise((r) => setTimeout(r, 3000));
  const later = await readiness(g);
  assert.equal(later.status, 503);
  assert.deepEqual(online(later.body), online(first.body), "the same sessions stay up");
  assert.equal(online(later.body).length, LIMIT);
  await g.stop(); // its sessions count against gw-main's limit in the next tests
});

test("`check` reports the session limit with its fix, and exits non-zero", async () => {
  const room = `check@${server.mucDomain}`;
  const r = await runCli(
    ["check"],
    { ...xmppEnv(server as never, MAIN), KNOWN_ROOMS: `c1:${room}:c1 c2:${room}:c2 c3:${room}:c3` },
    { ms: 60_000 },
  );
  assert.notEqual(r.code, 0, r.output);
  assert.match(r.output, /gw-main@localhost needs 3 sessions/);
  assert.match(r.output, /max_user_sessions/);
  assert.match(r.output, /CONFIG_FILE: account/);
});

test("a route with an XMPP account of its own: every nick online, each message from its nick", async () => {
  const room = `own@${server.mucDomain}`;
  const witness = await observe(server as never, WATCHER, [room], "witness");
  observers.push(witness);
  const dir = mkdtempSync(join(tmpdir(), "gw-accounts-"));
  writeFileSync(join(dir, "second.password"), `${SECOND.password}\n`);
  writeFileSync(
    join(dir, "config.yaml"),
    `routes:
  - name: second
    token: o3
    account: { jid: ${SECOND.user}@${server.domain}, password_file: second.password }
    targets:
      - { room: ${room}, nick: o3 }
`,
  );
  const g = await gateway({
    KNOWN_ROOMS: `o1:${room}:o1 o2:${room}:o2`,
    CONFIG_FILE: join(dir, "config.yaml"),
  });
  await until("every session to be up", async () => (await readiness(g)).status === 200, 20_000);
  for (const nick of ["o1", "o2", "o3"]) {
    const res = await httpPost(`${g.url}/post/${nick}`, `from ${nick}`, {
      "content-type": "text/plain",
    });
    assert.equal(res.status, 200, res.body);
    assert.equal((await witness.waitFor((m) => m.body === `from ${nick}`)).nick, nick);
  }
  await new Promise((r) => setTimeout(r, 2000));
  const r = await readiness(g);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  // Three sessions up while gw-main may have two: o3 is logged in as gw-second.
  assert.deepEqual(online(r.body), ["o1", "o2", "o3"]);
});
