// A CONFIG_FILE route end to end: a template, a room and a direct message to a user,
// against a real Prosody, with real accounts receiving.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { httpPost } from "../src/devserver/http-post.ts";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { createLogger } from "../src/log.ts";
import type { Gateway } from "../src/main.ts";
import { FAST_TIMING, startTestGateway } from "./support/gateway.ts";
import { type Observer, observe } from "./support/witness.ts";

const GW = { user: "gw", password: "gw-pass-3" };
const WATCHER = { user: "watcher", password: "watcher-pass-3" };
const ALICE = { user: "alice", password: "alice-pass-3" };
let server: ProsodyServer;
let observer: Observer;
/** The recipient of the direct message, a witness too. */
let alice: Observer;
let gateway: Gateway | undefined;

before(async () => {
  server = await startProsody({ users: [GW, WATCHER, ALICE] });
  observer = await observe(server, WATCHER, [`dev@${server.mucDomain}`]);
  // Available (observe() sends presence), so that the server delivers chat messages to it.
  alice = await observe(server, ALICE, [], "phone");
});

after(async () => {
  await gateway?.stop();
  await alice?.stop();
  await observer?.stop();
  await server?.stop();
});

test("a file route renders its template into a room and sends a direct message to a user", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gw-cfgfile-"));
  writeFileSync(join(dir, "ci.token"), "# CI\nci-token-1\n");
  writeFileSync(
    join(dir, "config.yaml"),
    `routes:
  - name: ci
    token_file: ci.token
    template: "{{ project }} {{ ref }}: {{ status | upcase }} ({{ tags | join: ', ' }})"
    targets:
      - room: dev@${server.mucDomain}
        nick: ci-bot
      - user: alice@${server.domain}
`,
  );
  gateway = await startTestGateway(
    server,
    GW,
    {
      DATA_DIR: join(dir, "data"),
      CONFIG_FILE: join(dir, "config.yaml"),
    },
    { log: createLogger("fatal"), timing: FAST_TIMING },
  );
  const body = JSON.stringify({
    project: "shop",
    ref: "main",
    status: "failed",
    tags: ["ci", "e2e"],
  });
  const preview = await httpPost(`${gateway.url}/post?dry_run=1`, body, {
    "content-type": "application/json",
    authorization: "Bearer ci-token-1",
  });
  assert.equal(preview.status, 200, preview.body);
  assert.deepEqual(JSON.parse(preview.body).messages, [
    { to: `dev@${server.mucDomain}`, nick: "ci-bot", body: "shop main: FAILED (ci, e2e)" },
    { to: `alice@${server.domain}`, body: "shop main: FAILED (ci, e2e)" },
  ]);
  const res = await httpPost(`${gateway.url}/post`, body, {
    "content-type": "application/json",
    authorization: "Bearer ci-token-1",
  });
  assert.equal(res.status, 200, res.body);
  assert.equal(JSON.parse(res.body).status, "delivered");
  const inRoom = await observer.waitFor((m) => m.nick === "ci-bot");
  assert.equal(inRoom.body, "shop main: FAILED (ci, e2e)");
  const deadline = Date.now() + 5000;
  const inbox = alice.direct;
  while (inbox.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.equal(inbox.length, 1, "exactly one direct message (the dry run sent nothing)");
  const dm = inbox[0];
  assert.ok(dm);
  assert.equal(dm.type, "chat");
  assert.match(dm.from, new RegExp(`^gw@${server.domain}/xmpp-msg-gw-direct$`));
  assert.equal(dm.body, "shop main: FAILED (ci, e2e)");
});
