// The gateway behind Debian's nginx, configured with the very files in docs/nginx/: posts
// pass through unchanged, the client address is logged from X-Forwarded-For only when
// TRUST_PROXY trusts nginx, and both body limits (nginx's and the gateway's) hold.
//
// Every request is sent from 127.0.0.2, so that nginx sees a client that is not the
// proxy (127.0.0.1) and appends 127.0.0.2 to a forged `X-Forwarded-For: 203.0.113.9`.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import path from "node:path";
import { Writable } from "node:stream";
import { after, before, test } from "node:test";
import { generateCerts } from "../src/devserver/certs.ts";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { createLogger } from "../src/log.ts";
import type { Gateway } from "../src/main.ts";
import { assertEmbedsVerbatim } from "./support/doc-blocks.ts";
import { startTestGateway } from "./support/gateway.ts";
import { type Nginx, requireNginx, startNginx } from "./support/nginx.ts";
import { type Observer, observe } from "./support/witness.ts";

const GW = { user: "gw", password: "gw-pass-1" };
const WATCHER = { user: "watcher", password: "watcher-pass-1" };
const CLIENT = "127.0.0.2";
const FORGED = "203.0.113.9";
const DOC_UPSTREAM = "127.0.0.1:10080";

const docs = (name: string) =>
  readFileSync(new URL(`../docs/nginx/${name}`, import.meta.url), "utf8");

/** Replaces `from` (which must occur in the documented file) with `to`, everywhere. */
function substitute(text: string, from: string, to: string): string {
  assert.ok(text.includes(from), `"${from}" is missing from the documented file`);
  return text.replaceAll(from, to);
}

/** Points the documented file at the gateway; no directive may still name port 10080. */
function upstream(text: string, g: Gateway, proxyPasses: number): string {
  const host = new URL(g.url).host;
  const conf = substitute(text, DOC_UPSTREAM, host);
  const directives = conf.split("\n").filter((l) => !/^\s*(#|$)/.test(l));
  assert.deepEqual(
    directives.filter((l) => l.includes("10080")),
    [],
  );
  const active = directives.filter((l) => /^\s*proxy_pass /.test(l));
  assert.deepEqual(active, Array(proxyPasses).fill(active[0]));
  assert.match(active[0] ?? "", new RegExp(`proxy_pass http://${host};`));
  return conf;
}

/** docs/nginx/subpath.conf, pointed at a gateway: the only change. */
const subpathFor = (g: Gateway) => upstream(docs("subpath.conf"), g, 2);

/** docs/nginx/server.conf with its upstream, listeners and certificate paths made local. */
function serverFor(g: Gateway, port: number, dir: string): string {
  let conf = upstream(docs("server.conf"), g, 3);
  conf = substitute(conf, "listen 443 ssl;", `listen 127.0.0.1:${port} ssl;`);
  conf = substitute(conf, "listen [::]:443 ssl;", ""); // no IPv6 on every test machine
  conf = substitute(
    conf,
    "/etc/letsencrypt/live/gw.example.org/fullchain.pem",
    path.join(dir, "cert.pem"),
  );
  return substitute(
    conf,
    "/etc/letsencrypt/live/gw.example.org/privkey.pem",
    path.join(dir, "key.pem"),
  );
}

interface Logged {
  readonly gateway: Gateway;
  /** The gateway's log, one parsed JSON object per line. */
  readonly lines: Array<Record<string, unknown>>;
}

let server: ProsodyServer;
let room: string;
let observer: Observer;
let nginx: Nginx;
let caPem: string;
/** TRUST_PROXY=127.0.0.1: nginx's address only; behind subpath.conf. */
let trusting: Logged;
/** No TRUST_PROXY, MAX_BODY_BYTES=1000; behind subpath.conf. */
let untrusting: Logged;
/** TRUST_PROXY=loopback: nginx and the client alike; behind server.conf (TLS). */
let loopback: Logged;
const urls = { trusting: "", untrusting: "", server: "" };
/** Every gateway started, stopped in after() even if a later start failed. */
const started: Gateway[] = [];

async function gateway(env: Record<string, string>): Promise<Logged> {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split("\n")) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  const g = await startTestGateway(server, GW, env, { log: createLogger("info", sink) });
  started.push(g);
  return { gateway: g, lines };
}

before(async () => {
  requireNginx(); // fails the suite with an install hint, before anything starts
  server = await startProsody({ users: [GW, WATCHER] });
  room = `proxied@${server.mucDomain}`;
  observer = await observe(server, WATCHER, [room]);
  const dataDir = (name: string) => path.join(server.dir, name);
  [trusting, untrusting, loopback] = await Promise.all([
    gateway({
      KNOWN_ROOMS: `tok-trusting:${room}:via-subpath`,
      TRUST_PROXY: "127.0.0.1",
      DATA_DIR: dataDir("gw-trusting"),
    }),
    gateway({
      KNOWN_ROOMS: `tok-untrusting:${room}:no-trust`,
      MAX_BODY_BYTES: "1000",
      DATA_DIR: dataDir("gw-untrusting"),
    }),
    gateway({
      KNOWN_ROOMS: `tok-loopback:${room}:own-server`,
      TRUST_PROXY: "loopback",
      DATA_DIR: dataDir("gw-loopback"),
    }),
  ]);
  const certs = await generateCerts();
  caPem = certs.caPem;
  nginx = await startNginx({
    portCount: 3,
    files: (ports, dir) => ({
      "cert.pem": certs.certPem,
      "key.pem": certs.keyPem,
      "subpath-trusting.conf": subpathFor(trusting.gateway),
      "subpath-untrusting.conf": subpathFor(untrusting.gateway),
      "server.conf": serverFor(loopback.gateway, Number(ports[2]), dir),
    }),
    // The XMPP domain's own server block with the documented locations included in it,
    // twice (one per gateway), and the documented server block of its own.
    http: (ports, dir) => {
      const site = (port: number | undefined, conf: string) => `
  server {
    listen 127.0.0.1:${port};
    server_name example.org;
    location / { return 404; }
    include ${path.join(dir, conf)};
  }`;
      return [
        site(ports[0], "subpath-trusting.conf"),
        site(ports[1], "subpath-untrusting.conf"),
        `  include ${path.join(dir, "server.conf")};`,
      ].join("\n");
    },
  });
  // The documented files load without a single warning (deprecated or duplicate directives).
  assert.doesNotMatch(nginx.errorLog(), /\[(warn|error|crit|alert|emerg)\]/, nginx.errorLog());
  urls.trusting = `http://127.0.0.1:${nginx.ports[0]}`;
  urls.untrusting = `http://127.0.0.1:${nginx.ports[1]}`;
  urls.server = `https://127.0.0.1:${nginx.ports[2]}`;
});

after(async () => {
  await nginx?.stop();
  await Promise.allSettled(started.map((g) => g.stop()));
  await observer?.stop();
  await server?.stop();
});

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One request from 127.0.0.2 (plain or TLS by the URL), bounded in time. */
function send(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Reply> {
  const tls = url.startsWith("https:");
  const options = {
    method: opts.method ?? "POST",
    headers: opts.headers,
    localAddress: CLIENT,
    timeout: 15_000,
    // The test certificate names localhost, not the Host header's gw.example.org.
    ...(tls ? { ca: caPem, servername: "localhost" } : {}),
  };
  return new Promise((resolve, reject) => {
    const req = (tls ? httpsRequest : httpRequest)(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        }),
      );
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no reply from ${url} within 15 s`)));
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** The gateway's request log lines after the first `from`. */
const requestLines = (l: Logged, from = 0) =>
  l.lines.slice(from).filter((x) => x.msg === "request");

/** Waits for the next request log line after index `from` (the onResponse hook runs late). */
async function nextRequestLine(
  l: Logged,
  from: number,
  after = "",
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const [line] = requestLines(l, from);
    if (line) return line;
    if (Date.now() > deadline)
      assert.fail(`no request line logged${after}; log: ${JSON.stringify(l.lines)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Sends a request and returns the reply with the request line the gateway logged for it. */
async function logged(l: Logged, url: string, opts: Parameters<typeof send>[1]) {
  const from = l.lines.length;
  const reply = await send(url, opts);
  const line = await nextRequestLine(l, from, ` after a ${reply.status} reply: ${reply.body}`);
  return { reply, line };
}

/** nginx's warnings and errors so far, without time, PID and connection number or host. */
const problems = () =>
  nginx
    .errorLog()
    .split("\n")
    .filter((l) => /\[(warn|error|crit|alert|emerg)\]/.test(l))
    .map((l) => l.replace(/^.*?\] \d+#\d+: (\*\d+ )?/, "").replace(/, host: .*$/, ""));

const text = (body: string, extra: Record<string, string> = {}) => ({
  headers: { "content-type": "text/plain", ...extra },
  body,
});

test("a post through nginx on /post/ arrives in the room; the gateway's reply passes unchanged", async () => {
  const res = await send(`${urls.trusting}/post/tok-trusting`, {
    headers: { host: "example.org", "content-type": "application/json" },
    body: JSON.stringify({ text: "through nginx on a subpath" }),
  });
  assert.equal(res.status, 200, res.body);
  assert.match(String(res.headers["content-type"]), /^application\/json; charset=utf-8$/);
  const reply = JSON.parse(res.body);
  assert.deepEqual(Object.keys(reply), ["success", "id", "status"]);
  assert.equal(res.body, JSON.stringify({ success: true, id: reply.id, status: "delivered" }));
  const got = await observer.waitFor((m) => m.nick === "via-subpath");
  assert.equal(got.room, room);
  assert.equal(got.body, JSON.stringify({ text: "through nginx on a subpath" }, null, 2));

  // The gateway's own errors, byte for byte (nginx does not intercept them).
  const wrong = await send(`${urls.trusting}/post/not-a-token`, text("x"));
  assert.equal(wrong.status, 404);
  assert.equal(wrong.body, '{"error":"404 Not Found: Token mismatch"}');
  // POST /post with the token in Authorization goes through `location = /post`.
  const bearer = await send(
    `${urls.trusting}/post`,
    text("bearer through nginx", { authorization: "Bearer tok-trusting" }),
  );
  assert.equal(bearer.status, 200, bearer.body);
  await observer.waitFor((m) => m.body === "bearer through nginx");
  // Everything else on the domain stays with the site (nginx's page, not the gateway's JSON).
  const other = await send(`${urls.trusting}/postman`, text("x"));
  assert.equal(other.status, 404);
  assert.match(other.body, /<title>404 Not Found<\/title>/);
  // Tokens in URLs stay out of nginx's access log; POST /post is logged, without the header.
  const access = nginx.accessLog();
  assert.match(access, /"POST \/post HTTP\/1\.1" 200 /);
  assert.doesNotMatch(access, /tok-trusting|not-a-token/);
});

test("X-Forwarded-For names the client only when TRUST_PROXY trusts nginx, up to the first untrusted hop", async () => {
  const forged = { "x-forwarded-for": FORGED };
  // TRUST_PROXY=127.0.0.1: nginx (the TCP peer) is trusted, the hop it appended
  // (127.0.0.2) is not: that is the client, and the forged address left of it is ignored.
  const a = await logged(trusting, `${urls.trusting}/post/tok-trusting`, text("a", forged));
  assert.equal(a.reply.status, 200, a.reply.body);
  assert.equal(a.line.remote, CLIENT);
  assert.equal(a.line.route, `${room}/via-subpath`);
  // No TRUST_PROXY: the TCP peer, nginx, whatever the headers say.
  const b = await logged(untrusting, `${urls.untrusting}/post/tok-untrusting`, text("b", forged));
  assert.equal(b.reply.status, 200, b.reply.body);
  assert.equal(b.line.remote, "127.0.0.1");
  // TRUST_PROXY=loopback trusts the client's 127.0.0.2 as well, so the walk goes on to
  // the forged address: trust only your proxies.
  const c = await logged(
    loopback,
    `${urls.server}/post`,
    text("c", { ...forged, host: "gw.example.org", authorization: "Bearer tok-loopback" }),
  );
  assert.equal(c.reply.status, 200, c.reply.body);
  assert.equal(c.line.remote, FORGED);
  // Directly, without nginx, a trusting gateway ignores the header of an untrusted peer.
  const direct = await logged(
    trusting,
    `${trusting.gateway.url}/post/tok-trusting`,
    text("d", forged),
  );
  assert.equal(direct.reply.status, 200, direct.reply.body);
  assert.equal(direct.line.remote, CLIENT);
});

test("body limits hold through the proxy: nginx's 1m first, then the gateway's MAX_BODY_BYTES", async () => {
  const big = Buffer.alloc(2 * 1024 * 1024, "x");
  for (const [l, url] of [
    [trusting, `${urls.trusting}/post/tok-trusting`],
    [loopback, `${urls.server}/post/tok-loopback`],
  ] as const) {
    const from = l.lines.length;
    const res = await send(url, { headers: { "content-type": "text/plain" }, body: big });
    assert.equal(res.status, 413);
    assert.match(res.body, /<title>413 Request Entity Too Large<\/title>/, "nginx's own page");
    // The gateway never saw it: the next line it logs is that of the next request.
    const next = await logged(l, url, text("small enough"));
    assert.equal(next.reply.status, 200, next.reply.body);
    assert.deepEqual(
      requestLines(l, from).map((x) => [x.path, x.status]),
      [["/post/:token", 200]],
    );
  }
  // nginx says why, and names the URL, token included, as the docs warn.
  assert.deepEqual(
    problems().filter((l) => l.startsWith("client intended to send too large body")),
    [
      'client intended to send too large body: 2097152 bytes, client: 127.0.0.2, server: example.org, request: "POST /post/tok-trusting HTTP/1.1"',
      'client intended to send too large body: 2097152 bytes, client: 127.0.0.2, server: gw.example.org, request: "POST /post/tok-loopback HTTP/1.1"',
    ],
  );
  // 5 KB passes nginx; the gateway (MAX_BODY_BYTES=1000) answers with its own 413.
  const res = await send(`${urls.untrusting}/post/tok-untrusting`, {
    headers: { "content-type": "text/plain" },
    body: "y".repeat(5000),
  });
  assert.equal(res.status, 413);
  assert.equal(
    res.body,
    '{"error":"413 Payload Too Large: the body is larger than the limit of 1000 bytes"}',
  );
});

test("server.conf: /health and /ready pass through over TLS; /metrics is not served to the outside", async () => {
  const get = (p: string) =>
    send(`${urls.server}${p}`, { method: "GET", headers: { host: "gw.example.org" } });
  const health = await get("/health");
  assert.equal(health.status, 200);
  assert.equal(health.body, '{"status":"ok"}');
  const ready = await get("/ready");
  assert.equal(ready.status, 200, ready.body);
  assert.equal(JSON.parse(ready.body).ready, true);
  // The gateway serves /metrics to whoever reaches it directly…
  const direct = await send(`${loopback.gateway.url}/metrics`, { method: "GET" });
  assert.equal(direct.status, 200);
  assert.match(direct.body, /^# HELP /m);
  // …but through nginx, in any spelling nginx normalises to /metrics, it is nginx's own 404.
  const from = loopback.lines.length;
  for (const p of ["/metrics", "/metrics?x=1", "//metrics", "/%6Detrics"]) {
    const res = await get(p);
    assert.equal(res.status, 404, p);
    assert.match(res.body, /<center>nginx<\/center>/, `${p}: nginx's page, without its version`);
  }
  const next = await logged(loopback, `${urls.server}/health`, { method: "GET" });
  assert.equal(next.reply.status, 200);
  assert.deepEqual(
    requestLines(loopback, from).map((x) => x.path),
    ["/health"],
    "no /metrics request reached the gateway",
  );
  // Unknown paths get the gateway's own 404.
  const unknown = await get("/nope");
  assert.equal(unknown.status, 404);
  assert.equal(JSON.parse(unknown.body).error, "404 Not Found: no such endpoint: GET /nope");
  assert.doesNotMatch(nginx.accessLog(), /tok-loopback/);
});

test("nginx's error log: no upstream failure, nothing but refused bodies", () => {
  const unexpected = problems().filter(
    (l) => !l.startsWith("client intended to send too large body"),
  );
  assert.deepEqual(unexpected, []);
});

test("docs/nginx.md shows both files exactly as tested", () => {
  assertEmbedsVerbatim("docs/nginx.md", ["docs/nginx/subpath.conf", "docs/nginx/server.conf"]);
});
