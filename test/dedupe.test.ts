// Retried posts: the same Idempotency-Key twice, and once more after a kill -9 and a restart
// of the gateway, gives one message in the room and the same id in every reply. The
// gateway runs as a child process (`xmpp-msg-gw serve`) against a real Prosody; a second
// real account reads what the room received, live and from its archive (XEP-0313).
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { httpPost } from "../src/devserver/http-post.ts";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { killCliChildren, type ServeProcess, startServe } from "./support/cli.ts";
import { gatewayEnv } from "./support/gateway.ts";
import { until } from "./support/until.ts";
import { type Observer, observe } from "./support/witness.ts";

const GW = { user: "dedupegw", password: "dedupe-gw-pass-1" };
const WATCHER = { user: "dedupewatch", password: "dedupe-watch-1" };
let server: ProsodyServer;
let observer: Observer;
const ROOM = () => `retries@${server.mucDomain}`;

before(async () => {
  server = await startProsody({ users: [GW, WATCHER] });
  observer = await observe(server, WATCHER, [ROOM()], "dedupe-watch");
  // Persistent: the archive must outlive the gateway's restarts.
  await observer.configureRoom(ROOM(), { "muc#roomconfig_persistentroom": "1" });
});

after(async () => {
  killCliChildren();
  await observer?.stop();
  await server?.stop();
});

function startGateway(dataDir: string, env: Record<string, string> = {}): Promise<ServeProcess> {
  return startServe({
    ...gatewayEnv(server, GW),
    KNOWN_ROOMS: `rt:${ROOM()}:retry-bot`,
    DATA_DIR: dataDir,
    LOG_LEVEL: "info",
    ...env,
  });
}

async function ready(g: ServeProcess): Promise<void> {
  await until("the gateway to be ready", async () => {
    const res = await fetch(`${g.url}/ready`).catch(() => undefined);
    return res?.status === 200;
  });
}

/** Posts `text` with `key` as Idempotency-Key: the status and the reply's fields. */
async function post(g: ServeProcess, text: string, key: string) {
  const res = await httpPost(`${g.url}/post/rt`, text, {
    "content-type": "text/plain",
    "idempotency-key": key,
  });
  const body = JSON.parse(res.body) as { id: string; status: string; duplicate?: boolean };
  return { ...body, code: res.status };
}

/** How many times `text` reached the room: live, and in its archive. */
async function copies(text: string): Promise<{ live: number; archived: number }> {
  const live = observer.messages.filter((m) => m.nick === "retry-bot" && m.body === text).length;
  const archive = await observer.archive(ROOM());
  const archived = archive.filter((m) => m.nick === "retry-bot" && m.body === text).length;
  return { live, archived };
}

test("the same Idempotency-Key twice, then after kill -9 and a restart: one message, one id", async () => {
  const data = mkdtempSync(join(tmpdir(), "gw-dedupe-"));
  const first = await startGateway(data);
  await ready(first);
  const a = await post(first, "deploy 42 finished", "deploy-42");
  assert.deepEqual([a.code, a.status, a.duplicate], [200, "delivered", undefined]);
  const b = await post(first, "deploy 42 finished", "deploy-42");
  assert.deepEqual([b.code, b.id, b.duplicate], [200, a.id, true], "the first post's reply");
  await first.stop("SIGKILL");

  const second = await startGateway(data);
  try {
    await ready(second);
    const c = await post(second, "deploy 42 finished", "deploy-42");
    assert.deepEqual([c.code, c.id, c.duplicate], [200, a.id, true], "remembered across kill -9");
    // A different key is a different post.
    const d = await post(second, "deploy 42 finished", "deploy-42-again");
    assert.equal(d.code, 200);
    assert.notEqual(d.id, a.id);
    await observer.waitFor((m) => m.id === d.id);
    assert.deepEqual(await copies("deploy 42 finished"), { live: 2, archived: 2 });
  } finally {
    await second.stop("SIGTERM");
  }
});

test("a post accepted while XMPP is down, retried after kill -9: sent once, with the first id", async () => {
  const data = mkdtempSync(join(tmpdir(), "gw-dedupe-"));
  const first = await startGateway(data);
  await ready(first);
  await server.down();
  const a = await post(first, "backup failed on db-1", "backup-db-1");
  let b: Awaited<ReturnType<typeof post>>;
  try {
    assert.deepEqual([a.code, a.status], [202, "queued"]);
    b = await post(first, "backup failed on db-1", "backup-db-1");
    await first.stop("SIGKILL");
  } finally {
    await server.start();
  }
  assert.deepEqual([b.code, b.id, b.duplicate], [202, a.id, true]);
  const second = await startGateway(data);
  try {
    // The caller retries, as after a timeout: the gateway has the first copy queued.
    const c = await post(second, "backup failed on db-1", "backup-db-1");
    assert.deepEqual([c.id, c.duplicate], [a.id, true]);
    await observer.waitFor((m) => m.id === a.id, 60_000);
    await ready(second);
    const e = await post(second, "backup failed on db-1", "backup-db-1");
    assert.deepEqual([e.code, e.id, e.duplicate], [200, a.id, true], "delivered by now: 200");
    assert.deepEqual(await copies("backup failed on db-1"), { live: 1, archived: 1 });
  } finally {
    await second.stop("SIGTERM");
  }
});

test("DEDUPE_WINDOW=0: every post is sent, keys or not", async () => {
  const data = mkdtempSync(join(tmpdir(), "gw-dedupe-"));
  const g = await startGateway(data, { DEDUPE_WINDOW: "0" });
  try {
    await ready(g);
    const a = await post(g, "no dedupe here", "same-key");
    const b = await post(g, "no dedupe here", "same-key");
    assert.notEqual(a.id, b.id);
    assert.equal(b.duplicate, undefined);
    await observer.waitFor((m) => m.id === b.id);
    assert.equal((await copies("no dedupe here")).live, 2);
  } finally {
    await g.stop("SIGTERM");
  }
});

test("an Idempotency-Key that is not printable ASCII, or too long, is a 400 saying so", async () => {
  const data = mkdtempSync(join(tmpdir(), "gw-dedupe-"));
  const g = await startGateway(data);
  try {
    for (const key of ["x".repeat(256), "tab\there"]) {
      const res = await httpPost(`${g.url}/post/rt`, "bad key", {
        "content-type": "text/plain",
        "idempotency-key": key,
      });
      assert.equal(res.status, 400, res.body);
      assert.match(JSON.parse(res.body).error, /Idempotency-Key must be 1 to 255 printable ASCII/);
    }
  } finally {
    await g.stop("SIGTERM");
  }
});
