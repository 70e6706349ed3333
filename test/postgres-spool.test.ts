// The gateway on a PostgreSQL spool (SPOOL_URL), against a real PostgreSQL 15 and a real
// Prosody, read back by a second real account: posts are delivered as with SQLite; while
// the database is down every post gets 503 with Retry-After and /ready says why; once it
// is back the gateway recovers by itself, and nothing accepted is lost or sent twice. A
// gateway started while the database is down starts all the same, and takes posts once
// the database is up.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { httpPost } from "../src/devserver/http-post.ts";
import { type PostgresServer, startPostgres } from "../src/devserver/postgres.ts";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { createLogger } from "../src/log.ts";
import type { Gateway } from "../src/main.ts";
import { FAST_TIMING, startTestGateway } from "./support/gateway.ts";
import { until } from "./support/until.ts";
import { type Observer, observe } from "./support/witness.ts";

const GW = { user: "pggw", password: "pg-gw-pass-1" };
const WATCHER = { user: "pgwatch", password: "pg-watch-pass-1" };
const LATE = { user: "pglate", password: "pg-late-pass-1" };
let server: ProsodyServer | undefined;
let pg: PostgresServer | undefined;
let observer: Observer | undefined;
let gateway: Gateway | undefined;

before(async () => {
  [server, pg] = await Promise.all([startProsody({ users: [GW, WATCHER, LATE] }), startPostgres()]);
  const room = `pg@${server.mucDomain}`;
  observer = await observe(server, WATCHER, [room], "pg-watch");
  gateway = await startTestGateway(
    server,
    GW,
    { KNOWN_ROOMS: `pgt:${room}:pg-bot`, SPOOL_URL: pg.url },
    { log: createLogger("fatal"), timing: FAST_TIMING },
  );
});

after(async () => {
  await gateway?.stop();
  await observer?.stop();
  await Promise.all([server?.stop(), pg?.stop()]);
});

const post = (text: string) =>
  httpPost(`${gateway?.url}/post/pgt`, text, { "content-type": "text/plain" });

/** What the test reads of `/ready`. */
interface ReadyBody {
  spool?: { writable?: boolean; error?: string };
}

async function ready(): Promise<{ status: number; body: ReadyBody }> {
  const res = await fetch(`${gateway?.url}/ready`);
  return { status: res.status, body: (await res.json()) as ReadyBody };
}

test("PostgreSQL spool: delivered; 503 with Retry-After while the database is down; back by itself", async () => {
  assert.ok(pg && observer);
  const first = await post("stored in PostgreSQL");
  assert.equal(first.status, 200, first.body);
  await observer.waitFor((m) => m.body === "stored in PostgreSQL");
  // PostgreSQL text cannot hold NUL; XML cannot either: the body's NUL is shown as ␀.
  const nul = await post("a\u0000b");
  assert.equal(nul.status, 200, nul.body);
  await observer.waitFor((m) => m.body === "a\u2400b");

  await pg.down();
  const refused = await post("posted while the database is down");
  assert.equal(refused.status, 503, refused.body);
  assert.ok(Number(refused.headers["retry-after"]) > 0, "Retry-After");
  assert.match(JSON.parse(refused.body).error, /^503 Service Unavailable: /);
  const r = await ready();
  assert.equal(r.status, 503, JSON.stringify(r.body));
  assert.equal(r.body.spool?.writable, false);
  assert.doesNotMatch(JSON.stringify(r.body), new RegExp(pg.password), "no password in /ready");

  await pg.start();
  let back: Awaited<ReturnType<typeof post>> | undefined;
  await until(
    "a post to be taken again",
    async () => {
      back = await post("posted once the database is back");
      return back.status === 200 || back.status === 202;
    },
    30_000,
  );
  await observer.waitFor((m) => m.body === "posted once the database is back");
  await until("/ready to say ready", async () => (await ready()).status === 200, 30_000);
  const said = observer.messages.filter((m) => m.nick === "pg-bot").map((m) => m.body);
  assert.equal(said.filter((b) => b === "stored in PostgreSQL").length, 1, "nothing twice");
  assert.ok(!said.includes("posted while the database is down"), "a 503 stored nothing");
});

test("PostgreSQL down at start-up: the gateway starts, answers 503 until the database is up, then delivers", async () => {
  assert.ok(pg && observer && server);
  await pg.down();
  const late = await startTestGateway(
    server,
    LATE,
    { KNOWN_ROOMS: `pgl:pg@${server.mucDomain}:pg-late`, SPOOL_URL: pg.url },
    { log: createLogger("fatal"), timing: FAST_TIMING },
  );
  try {
    const latePost = (text: string) =>
      httpPost(`${late.url}/post/pgl`, text, { "content-type": "text/plain" });
    const refused = await latePost("posted before the database was ever reached");
    assert.equal(refused.status, 503, refused.body);
    assert.ok(Number(refused.headers["retry-after"]) > 0, "Retry-After");
    assert.match(JSON.parse(refused.body).error, /cannot be reached yet/);
    const r = await fetch(`${late.url}/ready`);
    const body = (await r.json()) as ReadyBody;
    assert.equal(r.status, 503, JSON.stringify(body));
    assert.match(body.spool?.error ?? "", /cannot be reached yet/);
    assert.doesNotMatch(JSON.stringify(body), new RegExp(pg.password), "no password in /ready");

    await pg.start();
    await until(
      "the late gateway to take a post",
      async () => {
        const res = await latePost("posted once the database was up");
        return res.status === 200 || res.status === 202;
      },
      30_000,
    );
    await observer.waitFor(
      (m) => m.nick === "pg-late" && m.body === "posted once the database was up",
    );
    const said = observer.messages.filter((m) => m.nick === "pg-late").map((m) => m.body);
    assert.deepEqual(said, ["posted once the database was up"], "a 503 stored nothing");
  } finally {
    await late.stop();
  }
});

test("a refused PostgreSQL login stops the start with the database's words, no password", async () => {
  assert.ok(pg && server);
  const url = new URL(pg.url);
  url.password = "not-the-password";
  await assert.rejects(
    startTestGateway(
      server,
      LATE,
      { KNOWN_ROOMS: `pgl:pg@${server.mucDomain}:pg-late`, SPOOL_URL: url.toString() },
      { log: createLogger("fatal"), timing: FAST_TIMING },
    ),
    (err: Error) => {
      assert.match(err.message, /password authentication failed.*28P01/);
      assert.doesNotMatch(err.message, /not-the-password/);
      return true;
    },
  );
});
