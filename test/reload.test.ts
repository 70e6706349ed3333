// SIGHUP reloads routes and templates in a running gateway without dropping its XMPP
// sessions; a bad new configuration is refused and the old one stays active.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { httpPost } from "../src/devserver/http-post.ts";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { killCliChildren, startServe } from "./support/cli.ts";
import { gatewayEnv } from "./support/gateway.ts";
import { until } from "./support/until.ts";
import { type Observer, observe } from "./support/witness.ts";

const GW = { user: "gw", password: "gw-pass-4" };
const WATCHER = { user: "watcher", password: "watcher-pass-4" };
let server: ProsodyServer;
let observer: Observer;
const left: string[] = [];

before(async () => {
  server = await startProsody({ users: [GW, WATCHER] });
  const rooms = ["one", "two", "three"].map((r) => `${r}@${server.mucDomain}`);
  observer = await observe(server, WATCHER, rooms, "reload-watcher");
  observer.onPresence((p) => {
    if (p.type === "unavailable") left.push(`${p.room}/${p.nick}`);
  });
});

after(async () => {
  killCliChildren();
  await observer?.stop();
  await server?.stop();
});

test("SIGHUP: new routes, rooms and nicks without dropping sessions; a bad file is refused", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gw-reload-"));
  const file = join(dir, "config.yaml");
  const route = (
    name: string,
    token: string,
    room: string,
    nick: string,
    template = "{{ text }}",
  ) =>
    `  - name: ${name}\n    token: ${token}\n    template: "${template}"\n    targets:\n      - room: ${room}@${server.mucDomain}\n        nick: ${nick}\n`;
  writeFileSync(file, `routes:\n${route("a", "tok-a", "one", "nick-a")}`);
  const gw = await startServe(
    { ...gatewayEnv(server, GW), CONFIG_FILE: file },
    { cwd: dir, ms: 15_000 },
  );
  const { child, url } = gw;
  const post = (token: string, text: string) =>
    httpPost(`${url}/post/${token}`, JSON.stringify({ text }), {
      "content-type": "application/json",
    });
  const delivers = (token: string, text: string) => async () =>
    (await post(token, text)).status === 200;
  await until("route a to deliver", delivers("tok-a", "before"), 15_000);
  await observer.waitFor((m) => m.nick === "nick-a" && m.body === "before");
  assert.equal((await post("tok-b", "x")).status, 404);

  // A new route with a new nick, and a new room for an existing nick, with a new template.
  writeFileSync(
    file,
    `routes:\n${route("a", "tok-a", "one", "nick-a", "A: {{ text }}")}  - name: b\n    token: tok-b\n    targets:\n      - room: two@${server.mucDomain}\n        nick: nick-b\n      - room: three@${server.mucDomain}\n        nick: nick-a\n`,
  );
  child.kill("SIGHUP");
  await until("route b", delivers("tok-b", "hello b"), 15_000);
  const inTwo = await observer.waitFor(
    (m) => m.room === `two@${server.mucDomain}` && m.nick === "nick-b",
  );
  const inThree = await observer.waitFor(
    (m) => m.room === `three@${server.mucDomain}` && m.nick === "nick-a",
  );
  // Route b has no template: the default format, json.
  assert.equal(inTwo.body, '{\n  "text": "hello b"\n}');
  assert.equal(inThree.body, '{\n  "text": "hello b"\n}');
  assert.equal((await post("tok-a", "after")).status, 200);
  await observer.waitFor((m) => m.nick === "nick-a" && m.body === "A: after");
  assert.match(gw.output(), /configuration reloaded: 2 route\(s\)/);
  assert.deepEqual(left, [], "no occupant left any room: the sessions were kept");

  // A template error: refused, and the running configuration stays.
  writeFileSync(file, `routes:\n${route("a", "tok-a", "one", "nick-a", "{% if %}")}`);
  child.kill("SIGHUP");
  await until(
    "the refusal",
    () => /reload refused, the running configuration stays/.test(gw.output()),
    15_000,
  );
  assert.match(gw.output(), /routes\[0\]\.template/);
  assert.equal((await post("tok-b", "still here")).status, 200);
  await observer.waitFor((m) => m.nick === "nick-b" && m.body === '{\n  "text": "still here"\n}');
});
