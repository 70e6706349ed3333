// Never lose an accepted message: outages of the XMPP server, kicks and permanent
// refusals, against a real Prosody, with what arrived read back from the room archive
// (XEP-0313), which is what the room received whoever was online to see it.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { LogLevel } from "../src/config/index.ts";
import { httpPost } from "../src/devserver/http-post.ts";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { createLogger } from "../src/log.ts";
import type { Gateway } from "../src/main.ts";
import { FAST_TIMING, startTestGateway } from "./support/gateway.ts";
import { until } from "./support/until.ts";
import { type Observer, observe } from "./support/witness.ts";

const GW = { user: "gw", password: "gw-pass-2" };
/** Refusals and reconnects are expected here; set TEST_LOG_LEVEL=debug to see them. */
const LOG_LEVEL = (process.env.TEST_LOG_LEVEL ?? "fatal") as LogLevel;
const WATCHER = { user: "watcher", password: "watcher-pass-2" };
let server: ProsodyServer;
let observer: Observer;
const gateways: Gateway[] = [];

before(async () => {
  server = await startProsody({ users: [GW, WATCHER] });
});

after(async () => {
  await Promise.allSettled(gateways.map((g) => g.stop()));
  await observer?.stop();
  await server?.stop();
});

async function gateway(env: Record<string, string>): Promise<Gateway> {
  const g = await startTestGateway(
    server,
    GW,
    { DATA_DIR: mkdtempSync(join(tmpdir(), "gw-data-")), XMPP_LOG_LEVEL: LOG_LEVEL, ...env },
    { log: createLogger(LOG_LEVEL), timing: FAST_TIMING, selfPingMs: 1000 },
  );
  gateways.push(g);
  return g;
}

const post = (g: Gateway, token: string, text: string, query = "") =>
  httpPost(`${g.url}/post/${token}${query}`, text, { "content-type": "text/plain" });

test("server down: 100 posts are all accepted (202); server up: all 100 arrive, in order, once", async () => {
  const room = `outage@${server.mucDomain}`;
  observer = await observe(server, WATCHER, [room]);
  const g = await gateway({ KNOWN_ROOMS: `out:${room}:outage-bot` });
  await server.down();
  const texts = Array.from({ length: 100 }, (_, i) => `outage message ${i}`);
  for (const text of texts) {
    const res = await post(g, "out", text);
    assert.equal(res.status, 202, res.body);
    assert.equal(JSON.parse(res.body).status, "queued");
  }
  assert.equal(g.spool.stats().messages, 100);
  await server.start();
  await until("the spool to empty", () => g.spool.stats().messages === 0, 30_000);
  await observer.untilJoined(room, 20_000);
  const archived = (await observer.archive(room)).filter((m) => m.nick === "outage-bot");
  assert.deepEqual(
    archived.map((m) => m.body),
    texts,
  );
});

test("kicked: the gateway rejoins, and the next message arrives", async () => {
  const room = `kick@${server.mucDomain}`;
  const owner = await observe(server, WATCHER, [room], "kick-owner"); // first in: owner and moderator
  try {
    const g = await gateway({ KNOWN_ROOMS: `kk:${room}:kick-bot` });
    assert.equal((await post(g, "kk", "before the kick")).status, 200);
    await owner.kick(room, "kick-bot");
    const res = await post(g, "kk", "after the kick");
    assert.ok(res.status === 200 || res.status === 202, res.body);
    const got = await owner.waitFor((m) => m.body === "after the kick");
    assert.equal(got.nick, "kick-bot");
  } finally {
    await owner.stop();
  }
});

test("members-only room without membership: a clear 403, and the message is dead-lettered", async () => {
  const room = `members@${server.mucDomain}`;
  const owner = await observe(server, WATCHER, [room], "members-owner");
  try {
    await owner.configureRoom(room, {
      "muc#roomconfig_membersonly": "1",
      "muc#roomconfig_persistentroom": "1",
    });
    const g = await gateway({ KNOWN_ROOMS: `mo:${room}:member-bot` });
    const res = await post(g, "mo", "let me in");
    assert.equal(res.status, 403, res.body);
    assert.match(
      JSON.parse(res.body).error,
      /^403 Forbidden: not delivered, kept as a dead letter .*registration-required/,
    );
    const dead = await g.spool.listDead();
    assert.equal(dead.length, 1);
    assert.equal(dead[0]?.body, "let me in");
    assert.match(dead[0]?.reason ?? "", /registration-required/);
    const ready = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      import("node:http").then(({ get }) =>
        get(`${g.url}/ready`, (r) => {
          let body = "";
          r.on("data", (d) => {
            body += d;
          });
          r.on("end", () => resolve({ status: r.statusCode ?? 0, body }));
        }).on("error", reject),
      );
    });
    assert.equal(ready.status, 503);
    assert.match(ready.body, /registration-required/);
  } finally {
    await owner.stop();
  }
});

test("1000 posts from 16 concurrent posters while the server is killed and restarted: every 2xx arrives", async (t) => {
  const room = `storm@${server.mucDomain}`;
  const g = await gateway({ KNOWN_ROOMS: `st:${room}:storm-bot`, RATE_LIMIT_PER_MINUTE: "0" });
  const accepted: string[] = [];
  let next = 0;
  const poster = async () => {
    while (next < 1000) {
      const text = `storm ${next++}`;
      const res = await post(g, "st", text, "?wait=0");
      if (res.status === 200 || res.status === 202) accepted.push(text);
      else
        assert.equal(res.status, 503, `only 2xx or 503 are acceptable: ${res.status} ${res.body}`);
    }
  };
  const posting = Promise.all(Array.from({ length: 16 }, poster));
  await until("a third of the posts", () => next > 330);
  await server.down({ crash: true });
  await new Promise((r) => setTimeout(r, 500));
  await server.start();
  await posting;
  await until("the spool to empty", () => g.spool.stats().messages === 0, 60_000);
  const reader = await observe(server, WATCHER, [room], "storm-reader");
  try {
    const archived = (await reader.archive(room)).filter((m) => m.nick === "storm-bot");
    const counts = new Map<string, number>();
    for (const m of archived) counts.set(m.body, (counts.get(m.body) ?? 0) + 1);
    const missing = accepted.filter((text) => !counts.has(text));
    const duplicates = [...counts.values()].reduce((n, c) => n + c - 1, 0);
    t.diagnostic(
      `accepted ${accepted.length}, arrived ${counts.size}, duplicates ${duplicates} (target 0)`,
    );
    assert.deepEqual(missing, [], "every accepted message must arrive");
  } finally {
    await reader.stop();
  }
});
