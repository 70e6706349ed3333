// Secrets never leave the gateway: `xmpp-msg-gw serve` runs as a child process at trace
// level (every stanza logged) against a real Prosody with a password-protected room; it
// is posted to with a known token in each way a token can come (path, Bearer, Basic),
// as JSON, text and multipart, with a wrong token, with requests that are not valid HTTP
// (whose raw bytes Node's parser keeps), scraped and asked /ready; then its whole output
// and every file of its data directory (SQLite spool, WAL) are searched for the token,
// the account password and the room password, as they are, URL-encoded, base64 (SASL
// PLAIN, Basic), hex and as lists of decimal byte values (a logged Buffer).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { httpPost } from "../src/devserver/http-post.ts";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { createLogger } from "../src/log.ts";
import { connectOnce } from "../src/xmpp/one-shot.ts";
import { configureTrust } from "../src/xmpp/trust.ts";
import { killCliChildren, startServe } from "./support/cli.ts";
import { clientSettings, gatewayEnv } from "./support/gateway.ts";
import { leaks } from "./support/leaks.ts";
import { parseReply, rawRequest } from "./support/raw-http.ts";
import { type Observer, observe } from "./support/witness.ts";

const secret = (what: string) => `${what}-${randomBytes(12).toString("hex")}`;
const GW = { user: "secretgw", password: secret("account-pass") };
const WATCHER = { user: "secretwatch", password: "secret-watch-1" };
const TOKEN = secret("route-token");
/** A KNOWN_ROOMS route: tokens from the environment must not leak either. */
const ENV_TOKEN = secret("env-token");
/** Never configured: a near miss of a real token is as sensitive as the token. */
const WRONG_TOKEN = secret("wrong-token");
const ROOM_PASS = secret("room-pass");
let server: ProsodyServer;
let room: string;
let openRoom: string;
let observer: Observer;

before(async () => {
  // PLAIN only: the account password then crosses the stream itself (base64, RFC 4616),
  // the hardest case for the logs; SCRAM never sends it.
  server = await startProsody({
    users: [GW, WATCHER],
    extraConfig: 'disable_sasl_mechanisms = { "DIGEST-MD5", "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS" }',
  });
  room = `locked@${server.mucDomain}`;
  openRoom = `open@${server.mucDomain}`;
  // The watcher creates both rooms, so it owns them and can lock one with a password.
  observer = await observe(server, WATCHER, [room, openRoom]);
  await observer.configureRoom(room, {
    "muc#roomconfig_passwordprotectedroom": "1",
    "muc#roomconfig_roomsecret": ROOM_PASS,
  });
});

after(async () => {
  killCliChildren();
  await observer?.stop();
  await server?.stop();
});

/** Every file under `dir`, as latin1 text (byte for byte), keyed by path. */
function filesUnder(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files.set(path, readFileSync(path).toString("latin1"));
  }
  return files;
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
}

test("no token or password in the logs (trace level) or in the data directory", async () => {
  // Proof that the room is locked: joining without its password is refused. The intruder is
  // the gateway's own session, so it trusts the test CA as the gateway does at start-up.
  configureTrust(server.caFile);
  await assert.rejects(
    connectOnce({
      settings: clientSettings(server, WATCHER),
      nick: "intruder",
      rooms: [room],
      log: createLogger("fatal"),
    }),
    /not-authorized/,
  );

  const dir = mkdtempSync(join(tmpdir(), "gw-secrets-"));
  const dataDir = join(dir, "data");
  mkdirSync(dataDir);
  writeFileSync(
    join(dir, "config.yaml"),
    `routes:
  - name: locked
    token: ${TOKEN}
    format: text
    targets:
      - room: ${room}
        nick: locked-bot
        password: ${ROOM_PASS}
`,
  );
  const gw = await startServe(
    {
      ...gatewayEnv(server, GW),
      KNOWN_ROOMS: `${ENV_TOKEN}:${openRoom}:open-bot`,
      CONFIG_FILE: join(dir, "config.yaml"),
      DATA_DIR: dataDir,
      LOG_LEVEL: "trace",
      XMPP_LOG_LEVEL: "trace",
      SHUTDOWN_GRACE_MS: "1000",
    },
    { cwd: dir },
  );
  const output = () => `${gw.stdout()}\n--- stderr ---\n${gw.stderr()}`;
  const base = gw.url;
  const deadline = Date.now() + 20_000;
  while ((await get(`${base}/ready`)).status !== 200) {
    if (Date.now() > deadline) throw new Error(`not ready within 20 s:\n${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  const text = { "content-type": "text/plain" };
  const basic = (user: string, token: string) =>
    `Basic ${Buffer.from(`${user}:${token}`).toString("base64")}`;
  const delivered = [
    await httpPost(`${base}/post/${TOKEN}`, "via path", text),
    await httpPost(`${base}/post`, "via bearer", { ...text, authorization: `Bearer ${TOKEN}` }),
    await httpPost(`${base}/post`, "via basic", {
      ...text,
      authorization: basic("grafana", TOKEN),
    }),
    await httpPost(`${base}/post/${ENV_TOKEN}`, "via known rooms", text),
  ];
  // Multipart parsers log their options at trace, the request's headers among them
  // (@fastify/multipart did: `busboyOptions.headers.authorization`).
  const boundary = "secret-boundary";
  const multipart = (field: string) =>
    `--${boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\n${field}\r\n--${boundary}--\r\n`;
  const form = { "content-type": `multipart/form-data; boundary=${boundary}` };
  delivered.push(
    await httpPost(`${base}/post`, multipart("multipart bearer"), {
      ...form,
      authorization: `Bearer ${TOKEN}`,
    }),
    await httpPost(`${base}/post`, multipart("multipart basic"), {
      ...form,
      authorization: basic("grafana", TOKEN),
      cookie: `session=${ENV_TOKEN}`,
    }),
  );
  for (const res of delivered) assert.equal(res.status, 200, res.body);
  const bodies = ["via path", "via bearer", "via basic", "via known rooms"];
  for (const body of [...bodies, "multipart bearer", "multipart basic"]) {
    await observer.waitFor((m) => m.body === body);
  }
  const refused = [
    await httpPost(`${base}/post/${WRONG_TOKEN}`, "wrong", text),
    await httpPost(`${base}/post`, "wrong", { ...text, authorization: `Bearer ${WRONG_TOKEN}` }),
    await httpPost(`${base}/post`, "wrong", { ...text, authorization: basic("x", WRONG_TOKEN) }),
  ];
  for (const res of refused) assert.equal(res.status, 404, res.body);
  // Error paths that see the token: a bad body, a dry run, a wrong method on the token URL.
  const badJson = await httpPost(`${base}/post/${TOKEN}`, "{oops", {
    "content-type": "application/json",
  });
  assert.equal(badJson.status, 400, badJson.body);
  const dry = await httpPost(`${base}/post/${TOKEN}?dry_run=1`, "dry", text);
  assert.equal(dry.status, 200, dry.body);
  const wrongMethod = await get(`${base}/post/${TOKEN}`);
  assert.ok(wrongMethod.status >= 400 && wrongMethod.status < 500, wrongMethod.body);
  // Requests that are not valid HTTP: Node's parser errors carry the bytes read so far
  // (`rawPacket`: request line, token and Authorization header), which Fastify logs at trace.
  const port = Number(new URL(base).port);
  const head = (path: string) =>
    `POST ${path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${TOKEN}\r\n`;
  const malformed = [
    `${head(`/post/${TOKEN}`)}Not A Header\r\nContent-Length: 2\r\n\r\nhi`,
    `${head(`/post/${TOKEN}`)}Transfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n`,
    `${head(`/post/${TOKEN}`)}X-Big: ${"a".repeat(20_000)}\r\n\r\n`,
    `${head(`/post/${TOKEN}%zz`)}Content-Length: 2\r\n\r\nhi`,
  ];
  const malformedReplies = [];
  for (const request of malformed) {
    const reply = parseReply(await rawRequest(port, request));
    assert.ok(reply.status >= 400 && reply.status < 500, `${reply.status} ${reply.body}`);
    malformedReplies.push(reply);
  }
  const metrics = await get(`${base}/metrics`);
  assert.equal(metrics.status, 200);
  const readyReply = await get(`${base}/ready`);
  assert.equal(readyReply.status, 200, readyReply.body);

  const secrets = {
    token: TOKEN,
    "KNOWN_ROOMS token": ENV_TOKEN,
    "wrong token": WRONG_TOKEN,
    "account password": GW.password,
    "room password": ROOM_PASS,
  };
  const replies = [
    ...delivered,
    ...refused,
    ...malformedReplies,
    badJson,
    dry,
    wrongMethod,
    metrics,
    readyReply,
  ];
  assert.deepEqual(leaks(replies.map((r) => r.body).join("\n"), secrets), [], "in the replies");
  const whileRunning = filesUnder(dataDir);
  assert.ok(whileRunning.size > 0, "the spool has files");
  for (const [path, content] of whileRunning)
    assert.deepEqual(leaks(content, secrets), [], `in ${path} (running)`);

  const { code } = await gw.stop("SIGTERM", 20_000);
  await gw.closed; // the last lines, written as it exited, are searched too
  assert.equal(code, 0, output());
  const stdout = gw.stdout();

  // The search means something only if the stanzas were logged, the join with its
  // password included, and the requests too.
  assert.match(stdout, /"msg":"xmpp out"/, "stanzas are logged at trace level");
  assert.match(stdout, /<password>\[redacted\]<\/password>/, "the room join is logged");
  assert.match(
    stdout,
    /<mechanisms [^>]*><mechanism>PLAIN<\/mechanism><\/mechanisms>/,
    "PLAIN only",
  );
  assert.match(stdout, /"route":"locked"/, "request lines name the route");
  assert.match(stdout, /client error/, "requests that are not HTTP are logged");
  for (const line of stdout.split("\n").filter((l) => l.trim() !== "")) {
    assert.doesNotThrow(() => JSON.parse(line), `not a JSON line: ${line}`);
  }
  assert.deepEqual(leaks(output(), secrets), [], `in the output:\n${output()}`);
  for (const [path, content] of filesUnder(dataDir))
    assert.deepEqual(leaks(content, secrets), [], `in ${path} (stopped)`);
  const sasl = Buffer.from(`\0${GW.user}\0${GW.password}`).toString("base64");
  assert.equal(output().includes(sasl), false, "SASL PLAIN credentials in the output");
});
