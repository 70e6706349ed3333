// What the README quotes outside its shell blocks, compared with what the gateway and the
// CLI print: each reply of the replies table, the sample output of `xmpp-msg-gw check`,
// and the commands and options of the command-line synopsis. (The shell blocks:
// test/docs-run.test.ts.) Quotes are compared with `…` standing for any text.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { COMMANDS, isCommand } from "../src/cli/commands.ts";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import type { Gateway } from "../src/main.ts";
import { killCliChildren, runCli } from "./support/cli.ts";
import { matchesQuote, REPO_ROOT } from "./support/doc-blocks.ts";
import { startTestGateway, xmppEnv } from "./support/gateway.ts";
import { type Observer, observe } from "./support/witness.ts";

const ALERTS = { user: "alerts", password: "replies-alerts-1" };
const OWNER = { user: "repliesowner", password: "replies-owner-1" };
const TOKEN = "MYTOKEN";
const README = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
let server: ProsodyServer;
let owner: Observer;
let gateway: Gateway;

before(async () => {
  server = await startProsody({ users: [ALERTS, OWNER] });
  owner = await observe(server, OWNER, [`ops@${server.mucDomain}`], "replies-owner");
  gateway = await startTestGateway(server, ALERTS, {
    KNOWN_ROOMS: `${TOKEN}:ops@${server.mucDomain}:grafana`,
    LOG_LEVEL: "silent",
  });
});

after(async () => {
  killCliChildren();
  await gateway?.stop();
  await owner?.stop();
  await server?.stop();
});

const TEXT = { "content-type": "text/plain" };
const text = (body: string) => ({ method: "POST", headers: TEXT, body });

/** For each reply the README's replies table quotes: the request that gets it here, or why none can. */
const REPLY_REQUESTS: Record<
  string,
  { path: string; init: RequestInit; before?: RequestInit } | string
> = {
  '{"success":true,"id":"…","status":"delivered"}': {
    path: `/post/${TOKEN}`,
    init: text("replies: delivered"),
  },
  // The same key twice: the second post gets the first one's reply, marked a duplicate.
  '{"success":true,"id":"…","status":"delivered","duplicate":true}': {
    path: `/post/${TOKEN}`,
    before: { ...text("replies: repeated"), headers: { ...TEXT, "idempotency-key": "replies-1" } },
    init: { ...text("replies: repeated"), headers: { ...TEXT, "idempotency-key": "replies-1" } },
  },
  '{"success":true,"id":"…","status":"queued"}': {
    path: `/post/${TOKEN}?wait=0`,
    init: text("replies: queued"),
  },
  '{"success":true,"dry_run":true,"route":"…","messages":[…]}': {
    path: `/post/${TOKEN}?dry_run=1`,
    init: text("replies: dry run"),
  },
  '{"error":"400 Bad Request: invalid JSON in the body: … at position 8 (line 1 column 9)"}': {
    path: `/post/${TOKEN}`,
    init: { method: "POST", headers: { "content-type": "application/json" }, body: '{"ab":1 2}' },
  },
  '{"error":"400 Bad Request: the body is empty…"}': {
    path: `/post/${TOKEN}`,
    init: { method: "POST", headers: { "content-type": "application/json" }, body: "" },
  },
  '{"error":"401 Unauthorized: no token: …"}': { path: "/post", init: text("no token") },
  '{"error":"404 Not Found: Token mismatch"}': { path: "/post/WRONG", init: text("wrong") },
  '{"error":"404 Not Found: no such endpoint: GET /post/…"}': {
    path: `/post/${TOKEN}`,
    init: { method: "GET" },
  },
  '{"error":"413 Payload Too Large: the body is larger than the limit of 1048576 bytes"}': {
    path: `/post/${TOKEN}`,
    init: text("x".repeat(1_048_577)),
  },
  '{"error":"500 Internal Server Error: internal error"}':
    "a bug in the gateway: no request triggers it (src/http's tests map an internal error to it)",
};

test("README.md replies table: each quoted reply is what the gateway answers", async () => {
  const table = /^### Replies\n\n([\s\S]*?)\n\n/m.exec(README)?.[1] ?? "";
  const quoted = [...table.matchAll(/^\|[^|]*\|\s*(\d{3})[^|]*\|([^\n]*)\|$/gm)].flatMap((row) =>
    [...(row[2] as string).matchAll(/`(\{[^`]*\})`/g)].map((q) => ({
      status: Number(row[1]),
      reply: q[1] as string,
    })),
  );
  assert.ok(quoted.length >= 8, "the table quotes replies");
  for (const known of Object.keys(REPLY_REQUESTS))
    assert.ok(
      quoted.some((q) => q.reply === known),
      `REPLY_REQUESTS has a reply the table no longer quotes: ${known}`,
    );
  for (const { status, reply } of quoted) {
    const request = REPLY_REQUESTS[reply];
    assert.ok(request, `the table quotes ${reply}: add the request that gets it to REPLY_REQUESTS`);
    if (typeof request === "string") continue;
    if (request.before) await (await fetch(`${gateway.url}${request.path}`, request.before)).text();
    const res = await fetch(`${gateway.url}${request.path}`, request.init);
    const body = await res.text();
    assert.equal(res.status, status, `${reply}: ${body}`);
    assert.ok(matchesQuote(body, reply), `quoted:   ${reply}\nanswered: ${body}`);
    if (status === 401) assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer\b/);
  }
});

test("README.md: the sample of `xmpp-msg-gw check` is what it prints", async () => {
  const block = /^([ \t]*)```\n((?:\1.*\n)*?)\1```$/gm;
  const sample = [...README.matchAll(block)]
    .map((m) =>
      (m[2] as string)
        .split("\n")
        .map((l) => l.slice((m[1] as string).length))
        .filter(Boolean),
    )
    .find((lines) => /^\s*ok\s+configuration\s/.test(lines[0] ?? ""));
  assert.ok(sample, "README.md shows what check prints");
  // Its routes, grafana and alertmanager, post to a members-only room. The test gateway
  // stops first: check logs in with the same resources, and would replace its sessions.
  await gateway.stop();
  const room = `ops@${server.mucDomain}`;
  await owner.configureRoom(room, { "muc#roomconfig_membersonly": "1" });
  const route = (name: string, token: string) =>
    `{ name: ${name}, token: ${token}, targets: [{ room: "${room}", nick: ${name} }] }`;
  const dir = mkdtempSync(join(tmpdir(), "gw-replies-"));
  const config = join(dir, "config.yaml");
  writeFileSync(config, `routes: [${route("grafana", "t1")}, ${route("alertmanager", "t2")}]\n`);
  const r = await runCli(
    ["check"],
    { ...xmppEnv(server, ALERTS), CONFIG_FILE: config },
    {
      ms: 45_000,
    },
  ).finally(() => rmSync(dir, { recursive: true, force: true }));
  assert.equal(r.code, 1, r.output);
  // Column padding follows the longest row; the test server is at XMPP_HOST:XMPP_PORT, not found by DNS SRV.
  const norm = (s: string) => s.trim().replace(/\s+/g, " ");
  const printed = r.stdout.split("\n").map(norm);
  let from = 0;
  for (const line of sample) {
    const quoted = norm(line)
      .replaceAll("example.org", server.domain)
      .replace(`via ${server.domain}`, `via xmpp://${server.host}:${server.c2sPort}`);
    const at = printed.findIndex((p, i) => i >= from && matchesQuote(p, quoted));
    assert.ok(at >= 0, `quoted: ${quoted}\nprinted:\n${r.stdout}`);
    from = at + 1;
  }
});

test("README.md's command-line synopsis: every command and option it shows is the CLI's", () => {
  const synopsis = /^## Command line\n\n```\n([\s\S]*?)^```$/m.exec(README)?.[1] ?? "";
  const lines = [...synopsis.matchAll(/^xmpp-msg-gw (\[?)([a-z]+)\]?(.*?)(?: {2,}|$)/gm)];
  assert.ok(lines.length >= 7, "the synopsis shows the commands");
  for (const [, , name, rest] of lines) {
    assert.ok(name && isCommand(name), `the synopsis shows a command the CLI lacks: ${name}`);
    const options = Object.entries(COMMANDS[name].options);
    for (const [flag] of (rest ?? "").matchAll(/--?[a-z]+/g)) {
      const known = options.some(([long, o]) => flag === `--${long}` || flag === `-${o.short}`);
      assert.ok(known, `the synopsis shows ${name} ${flag}, which ${name} does not take`);
    }
  }
  const shown = new Set(lines.map((l) => l[2]));
  for (const name of Object.keys(COMMANDS))
    assert.ok(shown.has(name), `the synopsis does not show the command ${name}`);
});
