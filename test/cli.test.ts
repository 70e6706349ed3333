// The `xmpp-msg-gw` executable as users run it: a separate process, a real Prosody, and
// a second real account in the room checking what arrived.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { httpPost } from "../src/devserver/http-post.ts";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { type Observer, observe } from "./support/observer.ts";

const BIN = new URL("../bin/xmpp-msg-gw.js", import.meta.url).pathname;
const BOT = { user: "clibot", password: "cli-pass-1" };
const WATCHER = { user: "cliwatch", password: "cli-watch-1" };
let server: ProsodyServer;
let room: string;
let observer: Observer;
const children = new Set<ChildProcess>();

before(async () => {
  server = await startProsody({ users: [BOT, WATCHER] });
  room = `cli@${server.mucDomain}`;
  observer = await observe(server, WATCHER, [room]);
});

after(async () => {
  for (const c of children) c.kill("SIGKILL");
  await observer?.stop();
  await server?.stop();
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the executable in an empty directory (no .env), with a bounded time. */
function run(
  args: string[],
  env: Record<string, string> = {},
  stdin?: string,
  ms = 20_000,
): Promise<Run> {
  const cwd = mkdtempSync(join(tmpdir(), "gw-cli-"));
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? "", HOME: cwd, ...env },
  });
  children.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => {
    stdout += d;
  });
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  child.stdin.end(stdin ?? "");
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), ms);
    child.on("close", (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

const xmppEnv = () => ({
  XMPP_HOST: server.host,
  XMPP_PORT: String(server.c2sPort),
  XMPP_CA_FILE: server.caFile,
});

test("send: the old xmpp_client.py flags post a message to the room as the nick", async () => {
  const r = await run(
    [
      "send",
      "-j",
      `${BOT.user}@${server.domain}`,
      "-p",
      BOT.password,
      "-r",
      room,
      "-n",
      "cli-nick",
      "deploy",
      "done ✓",
    ],
    xmppEnv(),
  );
  assert.equal(r.code, 0, r.stderr);
  const got = await observer.waitFor((m) => m.body === "deploy done ✓");
  assert.equal(got.nick, "cli-nick");
});

test("send: the text may come on stdin, and JID_FROM_USER/PASS stand in for -j/-p", async () => {
  const r = await run(
    ["send", "-r", room, "-n", "stdin-nick"],
    { ...xmppEnv(), JID_FROM_USER: `${BOT.user}@${server.domain}`, JID_FROM_PASS: BOT.password },
    "line one\nline two\n",
  );
  assert.equal(r.code, 0, r.stderr);
  const got = await observer.waitFor((m) => m.nick === "stdin-nick");
  assert.equal(got.body, "line one\nline two");
});

test("an untrusted server certificate is refused with a clear message, never sent in plaintext", async () => {
  const before = observer.messages.length;
  const { XMPP_CA_FILE: _, ...noCa } = xmppEnv();
  const r = await run(
    [
      "send",
      "-j",
      `${BOT.user}@${server.domain}`,
      "-p",
      BOT.password,
      "-r",
      room,
      "-n",
      "nope",
      "secret text",
    ],
    noCa,
  );
  assert.equal(r.code, 1);
  assert.match(r.stderr, /TLS certificate of localhost is not trusted .*Set XMPP_CA_FILE/);
  assert.doesNotMatch(r.stderr, new RegExp(BOT.password));
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(observer.messages.length, before, "nothing may arrive");
});

test("serve without the CA logs the refusal and keeps posts spooled (202), never sent in the clear", async () => {
  const cwd = mkdtempSync(join(tmpdir(), "gw-cli-"));
  const { XMPP_CA_FILE: _, ...noCa } = xmppEnv();
  const child = spawn(process.execPath, [BIN, "serve"], {
    cwd,
    env: {
      PATH: process.env.PATH ?? "",
      ...noCa,
      JID_FROM_USER: `${BOT.user}@${server.domain}`,
      JID_FROM_PASS: BOT.password,
      KNOWN_ROOMS: `servetok:${room}:serve-nick`,
      HTTP_HOST: "127.0.0.1",
      HTTP_PORT: "0",
    },
  });
  children.add(child);
  let log = "";
  const listening = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${log}`)), 15_000);
    child.stdout.on("data", (d) => {
      log += d;
      const url = /listening on (http:\/\/[\d.:]+)/.exec(log)?.[1];
      if (url && /not trusted/.test(log)) {
        clearTimeout(timer);
        resolve(url);
      }
    });
  });
  try {
    const url = await listening;
    assert.match(log, /TLS certificate of localhost is not trusted/);
    const res = await httpPost(`${url}/post/servetok`, "hello", { "content-type": "text/plain" });
    assert.equal(res.status, 202, res.body);
    assert.equal(JSON.parse(res.body).status, "queued");
    assert.doesNotMatch(log, /servetok|cli-pass-1/, "no token or password in the log");
  } finally {
    child.kill("SIGTERM");
  }
});

test("a bad configuration stops start-up, naming the setting and what would be valid", async () => {
  const r = await run(["serve"], {
    JID_FROM_USER: "bot@example.org",
    JID_FROM_PASS: "x",
    KNOWN_ROOMS: "tok1:room1@conf.example.org",
  });
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    /KNOWN_ROOMS: entry 1 has no nick; expected token:room@conference\.example\.org:nick/,
  );
});

test("token prints a fresh random URL-safe token", async () => {
  const [a, b] = await Promise.all([run(["token"]), run(["token"])]);
  assert.match(a.stdout, /^[A-Za-z0-9_-]{32}\n$/);
  assert.notEqual(a.stdout, b.stdout);
});

test("watch prints what arrives in the room", async () => {
  const cwd = mkdtempSync(join(tmpdir(), "gw-cli-"));
  const child = spawn(
    process.execPath,
    [
      BIN,
      "watch",
      "-j",
      `${WATCHER.user}@${server.domain}`,
      "-p",
      WATCHER.password,
      "-r",
      room,
      "-n",
      "cli-watcher",
    ],
    { cwd, env: { PATH: process.env.PATH ?? "", ...xmppEnv() } },
  );
  children.add(child);
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => {
    out += d;
  });
  const watching = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`watch did not join: ${err}`)), 15_000);
    child.stderr.on("data", (d) => {
      err += d;
      if (/watching /.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  try {
    await watching;
    const r = await run(
      [
        "send",
        "-j",
        `${BOT.user}@${server.domain}`,
        "-p",
        BOT.password,
        "-r",
        room,
        "-n",
        "to-watch",
        "seen?",
      ],
      xmppEnv(),
    );
    assert.equal(r.code, 0, r.stderr);
    const deadline = Date.now() + 5000;
    while (!out.includes("<to-watch> seen?") && Date.now() < deadline)
      await new Promise((res) => setTimeout(res, 50));
    assert.match(out, /<to-watch> seen\?/);
  } finally {
    child.kill("SIGTERM");
  }
});

test("demo --once: a throwaway Prosody, the gateway, a sample posted and shown arriving", async () => {
  const r = await run(["demo", "--once"], { HTTP_PORT: "0" }, undefined, 30_000);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /reply 200 \{"success":true,"id":"[^"]+","status":"delivered"\}/);
  assert.match(r.stdout, /<alerts>\n\{\n {2}"title": "Test message",\n {2}"text": "Hello World!"/);
});
