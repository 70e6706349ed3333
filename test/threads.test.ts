// Alert threads in a room without an archive, on a real Prosody: the room gives its
// messages no stanza-id (XEP-0359 comes with mod_muc_mam's archiving), so there is nothing
// to reply or react to. The notifications still arrive, plain but in one thread, and the
// log and /ready say why once. A second real account (slixmpp) reads the room.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import pino from "pino";
import { httpPost } from "../src/devserver/http-post.ts";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import type { Gateway } from "../src/main.ts";
import { FAST_TIMING, startTestGateway } from "./support/gateway.ts";
import { type Observer, observe } from "./support/witness.ts";

const GW = { user: "threadsgw", password: "threads-gw-pass-1" };
const WATCHER = { user: "threadswatch", password: "threads-watch-1" };
const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url));

let server: ProsodyServer;
let observer: Observer;
let gateway: Gateway;
let room = "";
const logged: string[] = [];

before(async () => {
  server = await startProsody({ users: [GW, WATCHER] });
  room = `noarchive@${server.mucDomain}`;
  observer = await observe(server, WATCHER, [room], "threads-watch");
  await observer.configureRoom(room, {
    "muc#roomconfig_enablearchiving": "0",
    "muc#roomconfig_persistentroom": "1",
  });
  const log = pino({ level: "warn" }, { write: (line: string) => logged.push(line) });
  gateway = await startTestGateway(
    server,
    GW,
    { KNOWN_ROOMS: `am:${room}:am-bot`, MESSAGE_FORMAT: "auto" },
    { log, timing: FAST_TIMING },
  );
});

after(async () => {
  await gateway?.stop();
  await observer?.stop();
  await server?.stop();
});

test("a room without stanza-ids: plain messages in one thread, no reaction, and /ready says so", async () => {
  const post = (name: string) =>
    httpPost(`${gateway.url}/post/am`, fixture(name), { "content-type": "application/json" });
  const firing = await post("alertmanager-firing.json");
  assert.equal(firing.status, 200, firing.body);
  const resolved = await post("alertmanager-resolved.json");
  assert.equal(resolved.status, 200, resolved.body);
  const got = await observer.waitFor((m) => m.nick === "am-bot" && /RESOLVED/.test(m.body));
  const said = observer.messages.filter((m) => m.nick === "am-bot");
  assert.deepEqual(
    said.map((m) => [m.body.split("\n")[0], m.stanzaId, m.reply, m.reactions]),
    [
      ["🔥 FIRING (2) · InstanceDown", undefined, undefined, undefined],
      [got.body.split("\n")[0], undefined, undefined, undefined],
    ],
    "no stanza-id, no reply, no reaction",
  );
  assert.match(got.body, /^✅ RESOLVED/, "no quote either");
  assert.ok(said[0]?.thread && said[0].thread === got.thread, "still one thread");

  const ready = (await fetch(`${gateway.url}/ready`).then((r) => r.json())) as {
    sessions: Array<{ rooms: Array<{ note?: string }> }>;
  };
  const rooms = ready.sessions.flatMap((s) => s.rooms);
  assert.match(
    rooms[0]?.note ?? "",
    /no stanza-id .*archive is off.*without replies and reactions/,
  );
  const warnings = logged.filter((l) => l.includes("no stanza-id"));
  assert.equal(warnings.length, 1, "said once in the log");
});
