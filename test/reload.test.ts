// SIGHUP reloads routes and templates in a running gateway without dropping its XMPP
// sessions; a bad new configuration is refused and the old one stays active.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { httpPost } from "../src/devserver/http-post.ts";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { type Observer, observe } from "./support/observer.ts";

const BIN = new URL("../bin/xmpp-msg-gw.js", import.meta.url).pathname;
const GW = { user: "gw", password: "gw-pass-4" };
const WATCHER = { user: "watcher", password: "watcher-pass-4" };
let server: ProsodyServer;
let observer: Observer;
let child: ChildProcess | undefined;
const left: string[] = [];

before(async () => {
  server = await startProsody({ users: [GW, WATCHER] });
  const rooms = ["one", "two", "three"].map((r) => `${r}@${server.mucDomain}`);
  observer = await observe(server, WATCHER, rooms, "reload-watcher");
  observer.session.onStanza((s) => {
    if (s.is("presence") && s.attrs.type === "unavailable") left.push(s.attrs.from ?? "");
  });
});

after(async () => {
  child?.kill("SIGKILL");
  await observer?.stop();
  await server?.stop();
});

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  ms = 15_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

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
  child = spawn(process.execPath, [BIN, "serve"], {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? "",
      JID_FROM_USER: `${GW.user}@${server.domain}`,
      JID_FROM_PASS: GW.password,
      XMPP_HOST: server.host,
      XMPP_PORT: String(server.c2sPort),
      XMPP_CA_FILE: server.caFile,
      HTTP_HOST: "127.0.0.1",
      HTTP_PORT: "0",
      CONFIG_FILE: file,
    },
  });
  let log = "";
  child.stdout?.on("data", (d) => {
    log += d;
  });
  child.stderr?.on("data", (d) => {
    log += d;
  });
  const url = await until(
    "the gateway to listen",
    async () => /listening on (http:\/\/[\d.:]+)/.exec(log)?.[1],
  );
  const post = (token: string, text: string) =>
    httpPost(`${url}/post/${token}`, JSON.stringify({ text }), {
      "content-type": "application/json",
    });
  await until("route a to deliver", async () =>
    (await post("tok-a", "before")).status === 200 ? true : undefined,
  );
  await observer.waitFor((m) => m.nick === "nick-a" && m.body === "before");
  assert.equal((await post("tok-b", "x")).status, 404);

  // A new route with a new nick, and a new room for an existing nick, with a new template.
  writeFileSync(
    file,
    `routes:\n${route("a", "tok-a", "one", "nick-a", "A: {{ text }}")}  - name: b\n    token: tok-b\n    targets:\n      - room: two@${server.mucDomain}\n        nick: nick-b\n      - room: three@${server.mucDomain}\n        nick: nick-a\n`,
  );
  child.kill("SIGHUP");
  await until("route b", async () =>
    (await post("tok-b", "hello b")).status === 200 ? true : undefined,
  );
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
  assert.match(log, /configuration reloaded: 2 route\(s\)/);
  assert.deepEqual(left, [], "no occupant left any room: the sessions were kept");

  // A template error: refused, and the running configuration stays.
  writeFileSync(file, `routes:\n${route("a", "tok-a", "one", "nick-a", "{% if %}")}`);
  child.kill("SIGHUP");
  await until("the refusal", async () =>
    /reload refused, the running configuration stays/.test(log) ? true : undefined,
  );
  assert.match(log, /routes\[0\]\.template/);
  assert.equal((await post("tok-b", "still here")).status, 200);
  await observer.waitFor((m) => m.nick === "nick-b" && m.body === '{\n  "text": "still here"\n}');
});
