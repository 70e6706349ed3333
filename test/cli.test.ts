// The `xmpp-msg-gw` executable as users run it: a separate process, a real Prosody, and
// a second real account in the room checking what arrived.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { httpPost } from "../src/devserver/http-post.ts";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { BIN, captureCli, killCliChildren, LISTENING, runCli, spawnCli } from "./support/cli.ts";
import { gatewayEnv, xmppEnv } from "./support/gateway.ts";
import { type Observer, observe } from "./support/witness.ts";

const BOT = { user: "clibot", password: "cli-pass-1" };
const WATCHER = { user: "cliwatch", password: "cli-watch-1" };
let server: ProsodyServer;
let room: string;
let observer: Observer;

before(async () => {
  server = await startProsody({ users: [BOT, WATCHER] });
  room = `cli@${server.mucDomain}`;
  observer = await observe(server, WATCHER, [room]);
});

after(async () => {
  killCliChildren();
  await observer?.stop();
  await server?.stop();
});

/** Runs the executable in an empty directory (no .env), with a bounded time. */
const run = (args: string[], env: Record<string, string> = {}, stdin?: string, ms = 20_000) =>
  runCli(args, env, { stdin, ms });

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
    xmppEnv(server),
  );
  assert.equal(r.code, 0, r.stderr);
  const got = await observer.waitFor((m) => m.body === "deploy done ✓");
  assert.equal(got.nick, "cli-nick");
});

test("send: the text may come on stdin, and JID_FROM_USER/PASS stand in for -j/-p", async () => {
  const r = await run(
    ["send", "-r", room, "-n", "stdin-nick"],
    xmppEnv(server, BOT),
    "line one\nline two\n",
  );
  assert.equal(r.code, 0, r.stderr);
  const got = await observer.waitFor((m) => m.nick === "stdin-nick");
  assert.equal(got.body, "line one\nline two");
});

test("an untrusted server certificate is refused with a clear message, never sent in plaintext", async () => {
  const before = observer.messages.length;
  const { XMPP_CA_FILE: _, ...noCa } = xmppEnv(server);
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
  const { XMPP_CA_FILE: _, ...noCa } = gatewayEnv(server, BOT);
  // Spawned here, not with startServe: container.test.ts and systemd.test.ts check that this
  // file runs exactly `node bin/xmpp-msg-gw.js serve`, as the container and the unit do.
  const child = spawn(process.execPath, [BIN, "serve"], {
    cwd,
    env: { PATH: process.env.PATH ?? "", ...noCa, KNOWN_ROOMS: `servetok:${room}:serve-nick` },
  });
  const serve = captureCli(child);
  try {
    const [, url] = await serve.waitFor(LISTENING, 15_000);
    await serve.waitFor(/not trusted/, 15_000);
    assert.match(serve.stdout(), /TLS certificate of localhost is not trusted/);
    const res = await httpPost(`${url}/post/servetok`, "hello", { "content-type": "text/plain" });
    assert.equal(res.status, 202, res.body);
    assert.equal(JSON.parse(res.body).status, "queued");
    assert.doesNotMatch(serve.stdout(), /servetok|cli-pass-1/, "no token or password in the log");
  } finally {
    child.kill("SIGTERM");
    await serve.closed;
    rmSync(cwd, { recursive: true, force: true });
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
  const watch = spawnCli(
    [
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
    xmppEnv(server),
  );
  try {
    await watch.waitFor(/watching /, 15_000);
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
      xmppEnv(server),
    );
    assert.equal(r.code, 0, r.stderr);
    const deadline = Date.now() + 5000;
    while (!watch.stdout().includes("<to-watch> seen?") && Date.now() < deadline)
      await new Promise((res) => setTimeout(res, 50));
    assert.match(watch.stdout(), /<to-watch> seen\?/);
  } finally {
    watch.child.kill("SIGTERM");
  }
});

test("demo --once: a throwaway Prosody, the gateway, a sample posted and shown arriving", async () => {
  const r = await run(["demo", "--once"], { HTTP_PORT: "0" }, undefined, 30_000);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /reply 200 \{"success":true,"id":"[^"]+","status":"delivered"\}/);
  assert.match(r.stdout, /<alerts>\n\{\n {2}"title": "Test message",\n {2}"text": "Hello World!"/);
});

test("send -v: each XMPP step on stderr, like xmpp_client.py -v; without it, none", async () => {
  const args = ["send", "-j", `${BOT.user}@${server.domain}`, "-p", BOT.password, "-r", room];
  const r = await run([...args, "-n", "verbose-nick", "-v", "verbose ✓"], xmppEnv(server));
  assert.equal(r.code, 0, r.stderr);
  const steps = [
    `connecting to 127\\.0\\.0\\.1:${server.c2sPort} as clibot@localhost, STARTTLS`,
    "TLS established by STARTTLS .*; the certificate of localhost is trusted",
    "authenticated as clibot@localhost/xmpp-msg-gw-[0-9a-f]+ \\(SCRAM-SHA-",
    `joined ${room} as verbose-nick`,
    `sent message [0-9a-f-]{36} \\(\\d+ bytes\\) to ${room}`,
    `confirmed: ${room} reflected message [0-9a-f-]{36} back`,
  ];
  assert.match(
    r.stderr,
    new RegExp(steps.map((s) => `^xmpp-msg-gw send: ${s}.*$`).join("\n"), "m"),
  );
  assert.doesNotMatch(r.stderr, new RegExp(BOT.password), "no password in the steps");
  assert.doesNotMatch(r.stderr, /<\w+[ >]/, "steps, not XML");
  assert.equal((await observer.waitFor((m) => m.body === "verbose ✓")).nick, "verbose-nick");
  const quiet = await run([...args, "-n", "quiet-nick", "quiet"], xmppEnv(server));
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.equal(quiet.stderr, "", "no -v: nothing on stderr");
});

test("every command's -h and --help print its own usage and exit 0", async () => {
  const commands = ["serve", "send", "watch", "token", "check", "demo", "spool"];
  const runs = await Promise.all(
    commands.flatMap((c) => [run([c, "-h"]), run([c, "--help"])]).concat(run(["help", "send"])),
  );
  for (const [i, r] of runs.entries()) {
    const command = commands[Math.floor(i / 2)] ?? "send";
    assert.equal(r.code, 0, `${command}: ${r.stderr}`);
    assert.match(
      r.stdout,
      new RegExp(`^Usage: xmpp-msg-gw (\\[${command}\\]|${command}\\b)`),
      command,
    );
    assert.doesNotMatch(r.stdout, /^Commands:/m, `${command}: its own usage, not the general one`);
    assert.equal(r.stderr, "");
  }
  const send = runs[2]?.stdout ?? "";
  for (const option of ["-j, --jid", "-p, --password", "-r, --room", "-n, --nick", "-v, --verbose"])
    assert.ok(send.includes(option), `send --help lists ${option}`);
  const general = await run(["--help"]);
  assert.match(general.stdout, /^Commands:/m);
  assert.match(general.stdout, /xmpp-msg-gw <command> --help/);
});

test("an unknown option names itself and the command and shows that command's usage, exit 2", async () => {
  const send = await run(["send", "-r", room, "-x", "text"]);
  assert.equal(send.code, 2);
  assert.match(
    send.stderr,
    /^xmpp-msg-gw send: unknown option "-x" \(send takes the options below/,
  );
  assert.match(send.stderr, /goes after "--"/, "says how to send a text starting with -");
  assert.match(send.stderr, /\n\nUsage: xmpp-msg-gw send .*\n[\s\S]*-v, --verbose/);
  assert.doesNotMatch(send.stderr, /Unknown option '|TypeError|at .*\.ts:\d+/);
  const check = await run(["check", "--verbose"]);
  assert.equal(check.code, 2);
  assert.match(
    check.stderr,
    /^xmpp-msg-gw check: unknown option "--verbose" \(check takes the options below\)/,
  );
  assert.match(check.stderr, /Usage: xmpp-msg-gw check\n/);
  const extra = await run(["token", "extra"]);
  assert.equal(extra.code, 2);
  assert.match(extra.stderr, /^xmpp-msg-gw token: unexpected argument "extra"/);
  const missing = await run(["send", "-r"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^xmpp-msg-gw send: Option '-r, --room <value>' argument missing/);
});

test("a port in use: serve and demo say which address and that HTTP_PORT is the setting to change", async () => {
  const taken = createServer();
  await new Promise<void>((res) => taken.listen(0, "127.0.0.1", res));
  const port = (taken.address() as AddressInfo).port;
  try {
    const [serve, demo] = await Promise.all([
      run(["serve"], {
        ...gatewayEnv(server, BOT),
        HTTP_PORT: String(port),
        KNOWN_ROOMS: `porttok:${room}:port-nick`,
      }),
      run(["demo", "--once"], { HTTP_PORT: String(port) }, undefined, 30_000),
    ]);
    const said = `HTTP_PORT ${port} on 127\\.0\\.0\\.1 is already in use \\(another gateway or demo\\?\\): set HTTP_PORT to a free port`;
    assert.equal(serve.code, 1, serve.output);
    assert.match(serve.stderr, new RegExp(`^xmpp-msg-gw: ${said}\\n$`, "m"));
    assert.equal(demo.code, 1, demo.output);
    assert.match(demo.stderr, new RegExp(`${said}, e\\.g\\. HTTP_PORT=${port + 1} npm run demo`));
    for (const r of [serve, demo]) assert.doesNotMatch(r.stderr, /listen EADDRINUSE/);
  } finally {
    taken.close();
  }
});
