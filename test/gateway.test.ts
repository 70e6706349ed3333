// The gateway end to end: real HTTP in, a real Prosody in the middle, and a second real
// XMPP account in the rooms checking exactly what arrived (body and sender nick).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, before, test } from "node:test";
import { parse as parseYaml } from "yaml";
import { httpPost } from "../src/devserver/http-post.ts";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { createLogger } from "../src/log.ts";
import type { Gateway } from "../src/main.ts";
import { spoolPath } from "../src/spool/sqlite.ts";
import { startTestGateway } from "./support/gateway.ts";
import { type Observer, observe } from "./support/witness.ts";

const GW = { user: "gw", password: "gw-pass-1" };
const WATCHER = { user: "watcher", password: "watcher-pass-1" };
let server: ProsodyServer;
let room1: string;
let room2: string;
let observer: Observer;
const gateways: Gateway[] = [];

const NESTED = {
  title: "Disk almost full",
  host: { name: "db1", tags: ["prod", "eu"], load: [0.5, 1, -2.25] },
  ok: false,
  none: null,
  unicode: "é 日本 😀",
  empty: { list: [], map: {} },
};

before(async () => {
  server = await startProsody({ users: [GW, WATCHER] });
  room1 = `room1@${server.mucDomain}`;
  room2 = `room2@${server.mucDomain}`;
  observer = await observe(server, WATCHER, [room1, room2]);
});

after(async () => {
  await Promise.allSettled(gateways.map((g) => g.stop()));
  await observer?.stop();
  await server?.stop();
});

async function gateway(env: Record<string, string>): Promise<Gateway> {
  // A spool of its own: not ./data, which outlives the run (and a failed test's leftovers).
  const dataDir = mkdtempSync(join(tmpdir(), "gw-data-"));
  const g = await startTestGateway(
    server,
    GW,
    { DATA_DIR: dataDir, ...env },
    { log: createLogger("warn") },
  );
  gateways.push(g);
  return g;
}

const postJson = (g: Gateway, token: string, value: unknown) =>
  httpPost(`${g.url}/post/${token}`, JSON.stringify(value), { "content-type": "application/json" });

test("MESSAGE_FORMAT=json: the room gets Python's json.dumps(obj, indent=2), from the token's nick", async () => {
  const g = await gateway({ KNOWN_ROOMS: `jtok:${room1}:json-bot` });
  const res = await postJson(g, "jtok", NESTED);
  assert.equal(res.status, 200, res.body);
  const reply = JSON.parse(res.body);
  assert.equal(reply.success, true);
  assert.equal(reply.status, "delivered");
  const got = await observer.waitFor((m) => m.nick === "json-bot");
  assert.equal(got.room, room1);
  assert.equal(
    got.body,
    `{
  "title": "Disk almost full",
  "host": {
    "name": "db1",
    "tags": [
      "prod",
      "eu"
    ],
    "load": [
      0.5,
      1,
      -2.25
    ]
  },
  "ok": false,
  "none": null,
  "unicode": "\\u00e9 \\u65e5\\u672c \\ud83d\\ude00",
  "empty": {
    "list": [],
    "map": {}
  }
}`,
  );
});

test("MESSAGE_FORMAT=yaml: 2-space YAML with Unicode kept", async () => {
  const g = await gateway({ KNOWN_ROOMS: `ytok:${room2}:yaml-bot`, MESSAGE_FORMAT: "yaml" });
  const res = await postJson(g, "ytok", NESTED);
  assert.equal(res.status, 200, res.body);
  const got = await observer.waitFor((m) => m.nick === "yaml-bot");
  assert.equal(got.room, room2);
  assert.equal(
    got.body,
    `title: Disk almost full
host:
  name: db1
  tags:
    - prod
    - eu
  load:
    - 0.5
    - 1
    - -2.25
ok: false
none: null
unicode: é 日本 😀
empty:
  list: []
  map: {}`,
  );
  assert.deepEqual(parseYaml(got.body), NESTED, "the YAML loads back to the posted data");
});

test("three tokens, two rooms, two nicks in one room: each message under its own nick", async () => {
  const g = await gateway({
    KNOWN_ROOMS: `tok1:${room1}:nick1 tok2:${room2}:nick2 tok3:${room1}:nick3`,
  });
  for (const [token, text] of [
    ["tok1", "one"],
    ["tok2", "two"],
    ["tok3", "three"],
  ] as const) {
    const res = await httpPost(`${g.url}/post/${token}`, text, { "content-type": "text/plain" });
    assert.equal(res.status, 200, res.body);
  }
  const seen = await Promise.all(
    ["one", "two", "three"].map((body) => observer.waitFor((m) => m.body === body)),
  );
  assert.deepEqual(
    seen.map((m) => [m.room, m.nick, m.body]),
    [
      [room1, "nick1", "one"],
      [room2, "nick2", "two"],
      [room1, "nick3", "three"],
    ],
  );
});

test("an unknown token gets 404 Token mismatch and sends nothing", async () => {
  const g = await gateway({ KNOWN_ROOMS: `good:${room1}:guard` });
  const before = observer.messages.length;
  const res = await postJson(g, "bad", { text: "should not arrive" });
  assert.equal(res.status, 404);
  assert.equal(res.body, '{"error":"404 Not Found: Token mismatch"}');
  const ok = await httpPost(`${g.url}/post/good`, "after the 404", {
    "content-type": "text/plain",
  });
  assert.equal(ok.status, 200);
  await observer.waitFor((m) => m.body === "after the 404");
  assert.deepEqual(
    observer.messages.slice(before).map((m) => m.body),
    ["after the 404"],
  );
});

test("direct TLS to an address still verifies the certificate against the XMPP domain", async () => {
  const g = await gateway({
    KNOWN_ROOMS: `dtok:${room2}:direct-bot`,
    XMPP_TLS: "direct",
    XMPP_PORT: String(server.directTlsPort),
  });
  const res = await httpPost(`${g.url}/post/dtok`, "over direct TLS", {
    "content-type": "text/plain",
  });
  assert.equal(res.status, 200, res.body);
  const got = await observer.waitFor((m) => m.body === "over direct TLS");
  assert.equal(got.nick, "direct-bot");
});

const fixture = (name: string) =>
  readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8");

test("format auto: an Alertmanager group arrives summarised for people", async () => {
  const g = await gateway({ KNOWN_ROOMS: `atok:${room1}:am-bot`, MESSAGE_FORMAT: "auto" });
  const res = await httpPost(`${g.url}/post/atok`, fixture("alertmanager-firing.json"), {
    "content-type": "application/json",
  });
  assert.equal(res.status, 200, res.body);
  const got = await observer.waitFor((m) => m.nick === "am-bot");
  const lines = got.body.split("\n");
  assert.equal(lines[0], "🔥 FIRING (2) · InstanceDown");
  assert.equal(lines[2], "InstanceDown · critical · db-1.example.org:9100");
  assert.equal(lines[3], "Firing since 2024-05-14 07:58 UTC");
  assert.equal(lines[4], "Instance db-1.example.org:9100 down");
  assert.ok(!got.body.includes('"status"'), "not a JSON dump");
});

test("format text: Slack attachments arrive as readable text; a form post too", async () => {
  const g = await gateway({ KNOWN_ROOMS: `stok:${room2}:slack-bot`, MESSAGE_FORMAT: "text" });
  const res = await httpPost(`${g.url}/post/stok`, fixture("slack-attachments.json"), {
    "content-type": "application/json",
  });
  assert.equal(res.status, 200, res.body);
  const got = await observer.waitFor((m) => m.nick === "slack-bot");
  assert.match(
    got.body,
    /^Nightly backup report\n\nBackups for 14 May 2024\ndb-1: backup completed \(https:\/\/backups\.example\.org\/runs\/1234\)/,
  );
  const form = await httpPost(`${g.url}/post/stok`, "text=deployed+v1.2+%E2%9C%93&channel=ops", {
    "content-type": "application/x-www-form-urlencoded",
  });
  assert.equal(form.status, 200, form.body);
  await observer.waitFor((m) => m.nick === "slack-bot" && m.body === "deployed v1.2 ✓");
});

test("a spool that cannot be written: posts get 503 with Retry-After, /ready is 503 saying why; both recover", async () => {
  const g = await gateway({ KNOWN_ROOMS: `stok:${room1}:spool-bot` });
  const ready = async () => {
    const res = await fetch(`${g.url}/ready`);
    return { status: res.status, body: (await res.json()) as { spool: { writable: boolean } } };
  };
  assert.equal((await ready()).status, 200);
  // Another process holds the write lock past the spool's busy timeout: writes fail.
  const other = new DatabaseSync(spoolPath(g.config.dataDir));
  other.exec("BEGIN IMMEDIATE");
  try {
    const res = await postJson(g, "stok", { n: 1 });
    assert.equal(res.status, 503, res.body);
    const down = await ready();
    assert.equal(down.status, 503);
    assert.equal(down.body.spool.writable, false);
  } finally {
    other.exec("ROLLBACK");
    other.close();
  }
  assert.equal((await postJson(g, "stok", { n: 2 })).status, 200);
  assert.equal((await ready()).status, 200);
});

test("a full spool: /ready is 503 saying so, posts get 503; room made: both recover", async () => {
  const g = await gateway({ KNOWN_ROOMS: `ftok:${room1}:full-bot`, SPOOL_MAX_MESSAGES: "2" });
  const ready = async () => {
    const res = await fetch(`${g.url}/ready`);
    return { status: res.status, body: (await res.json()) as { spool: { full?: string } } };
  };
  assert.equal((await ready()).status, 200);
  // Two messages for a lane no session serves: they stay, and the spool is at its limit.
  const elsewhere = { room: "elsewhere@conference.localhost", nick: "nobody" };
  const held = await g.spool.enqueue([
    { postId: "p1", id: "held-1", route: "r", ...elsewhere, body: "a" },
    { postId: "p2", id: "held-2", route: "r", ...elsewhere, body: "b" },
  ]);
  const full = await ready();
  assert.equal(full.status, 503);
  assert.match(full.body.spool.full ?? "", /the spool is full: 2 messages wait/);
  assert.equal((await postJson(g, "ftok", { n: 1 })).status, 503);
  await g.spool.delivered(held.map((m) => m.id));
  assert.equal((await ready()).status, 200);
  assert.equal((await postJson(g, "ftok", { n: 2 })).status, 200);
});
