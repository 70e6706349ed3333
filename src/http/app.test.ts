import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import { GatewayError } from "../core/errors.ts";
import type { PostBody } from "../core/post.ts";
import { renderPost } from "../core/render/index.ts";
import { buildRouteTable, type Route } from "../core/routes.ts";
import { createLogger } from "../log.ts";
import { buildApp } from "./app.ts";

const route: Route = {
  name: "ops@conf/bot",
  tokens: ["s3cret-token"],
  targets: [{ kind: "room", room: "ops@conf", nick: "bot" }],
  format: "json",
};

function setup(accept?: (body: PostBody) => Promise<"delivered" | "queued">) {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const got: PostBody[] = [];
  const app = buildApp({
    routes: buildRouteTable([route]),
    log: createLogger("info", sink),
    accept: async (_route, body) => {
      got.push(body);
      return { id: "id-1", status: accept ? await accept(body) : "delivered" };
    },
  });
  return { app, got, lines };
}

test("the old curl example: JSON to /post/<token> gets 200 success", async () => {
  const { app, got } = setup();
  const res = await app.inject({
    method: "POST",
    url: "/post/s3cret-token",
    headers: { "content-type": "application/json" },
    payload: '{"title":"Test message","text":"Hello World!"}',
  });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { success: true, id: "id-1", status: "delivered" });
  assert.deepEqual(got, [{ kind: "json", value: { title: "Test message", text: "Hello World!" } }]);
});

test("an unknown token gets the old gateway's exact 404, before the body is parsed", async () => {
  const { app, got } = setup();
  const res = await app.inject({
    method: "POST",
    url: "/post/wrong",
    headers: { "content-type": "application/json" },
    payload: "{not json",
  });
  assert.equal(res.statusCode, 404);
  assert.equal(res.body, '{"error":"404 Not Found: Token mismatch"}');
  assert.equal(got.length, 0);
});

test("the token may come as a Bearer token or the Basic auth password", async () => {
  const { app } = setup();
  const bearer = await app.inject({
    method: "POST",
    url: "/post",
    headers: { authorization: "Bearer s3cret-token", "content-type": "text/plain" },
    payload: "hi",
  });
  assert.equal(bearer.statusCode, 200);
  const basic = await app.inject({
    method: "POST",
    url: "/post",
    headers: {
      authorization: `Basic ${Buffer.from("grafana:s3cret-token").toString("base64")}`,
      "content-type": "text/plain",
    },
    payload: "hi",
  });
  assert.equal(basic.statusCode, 200);
  const none = await app.inject({ method: "POST", url: "/post", payload: "hi" });
  assert.equal(none.statusCode, 401);
  assert.match(none.json().error, /^401 Unauthorized: no token/);
});

test("__proto__ in a body is an ordinary key (as in Python), never a prototype", async () => {
  const { app, got } = setup();
  const res = await app.inject({
    method: "POST",
    url: "/post/s3cret-token",
    headers: { "content-type": "application/json" },
    payload: '{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}',
  });
  assert.equal(res.statusCode, 200);
  const value = (got[0] as { value: Record<string, unknown> }).value;
  assert.deepEqual(Object.keys(value), ["__proto__", "constructor"]);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(Object.getPrototypeOf(value), Object.prototype);
});

test("queued deliveries answer 202; text/plain is passed through verbatim", async () => {
  const { app, got } = setup(async () => "queued");
  const res = await app.inject({
    method: "POST",
    url: "/post/s3cret-token",
    headers: { "content-type": "text/plain; charset=utf-8" },
    payload: "disk full on db1\n",
  });
  assert.equal(res.statusCode, 202);
  assert.equal(res.json().status, "queued");
  assert.deepEqual(got, [{ kind: "text", text: "disk full on db1\n" }]);
});

test("bad JSON is a 400 that says where; unsupported types are a 415 listing the supported ones", async () => {
  const { app } = setup();
  const bad = await app.inject({
    method: "POST",
    url: "/post/s3cret-token",
    headers: { "content-type": "application/json" },
    payload: '{"a": 1,}',
  });
  assert.equal(bad.statusCode, 400);
  assert.match(bad.json().error, /^400 Bad Request: .*position 8/);
  const deep = await app.inject({
    method: "POST",
    url: "/post/s3cret-token",
    headers: { "content-type": "application/json" },
    payload: `${"[".repeat(10_000)}${"]".repeat(10_000)}`,
  });
  assert.equal(deep.statusCode, 400);
  assert.match(deep.json().error, /nested 10000 levels deep in the body; at most 500 are accepted/);
  const xml = await app.inject({
    method: "POST",
    url: "/post/s3cret-token",
    headers: { "content-type": "application/xml" },
    payload: "<a/>",
  });
  assert.equal(xml.statusCode, 415);
  assert.match(
    xml.json().error,
    /application\/json, application\/x-www-form-urlencoded, multipart\/form-data, text\/plain/,
  );
});

test("a body over the limit is a 413 that states the limit", async () => {
  const { app, got } = setup();
  const res = await app.inject({
    method: "POST",
    url: "/post/s3cret-token",
    headers: { "content-type": "text/plain" },
    payload: "x".repeat(1024 * 1024 + 1),
  });
  assert.equal(res.statusCode, 413);
  assert.match(
    res.json().error,
    /^413 Payload Too Large: the body is larger than the limit of 1048576 bytes/,
  );
  assert.equal(got.length, 0);
});

test("an unavailable XMPP side is a 503 with Retry-After", async () => {
  const { app } = setup(async () => {
    throw new GatewayError("UNAVAILABLE", "not connected", { retryAfter: 5 });
  });
  const res = await app.inject({
    method: "POST",
    url: "/post/s3cret-token",
    headers: { "content-type": "text/plain" },
    payload: "x",
  });
  assert.equal(res.statusCode, 503);
  assert.equal(res.headers["retry-after"], "5");
});

test("request log lines name the route, never the token", async () => {
  const { app, lines } = setup();
  await app.inject({
    method: "POST",
    url: "/post/s3cret-token?x=1",
    headers: { "content-type": "text/plain" },
    payload: "x",
  });
  await app.inject({ method: "POST", url: "/post/another-guess", payload: "x" });
  const log = lines.join("");
  assert.match(log, /"route":"ops@conf\/bot"/);
  assert.doesNotMatch(log, /s3cret-token|another-guess/);
  // Each line names its request (Fastify's request id), as a child logger's would.
  const requests = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === "request");
  assert.deepEqual(
    requests.map((l) => [typeof l.reqId, l.status]),
    [
      ["string", 200],
      ["string", 404],
    ],
  );
  assert.notEqual(requests[0].reqId, requests[1].reqId);
});

test("rate limits: per route and global, 429 with Retry-After", async () => {
  let clock = 0;
  const limitedRoute: Route = { ...route, rateLimit: { perMinute: 60, burst: 2 } };
  const app = buildApp({
    routes: buildRouteTable([limitedRoute]),
    log: createLogger("silent"),
    now: () => clock,
    globalRateLimit: { perMinute: 1, burst: 5 },
    accept: async () => ({ id: "x", status: "delivered" }),
  });
  const post = (token = "s3cret-token") =>
    app.inject({
      method: "POST",
      url: `/post/${token}`,
      headers: { "content-type": "text/plain" },
      payload: "x",
    });
  assert.deepEqual([(await post()).statusCode, (await post()).statusCode], [200, 200]);
  const third = await post();
  assert.equal(third.statusCode, 429);
  assert.equal(third.headers["retry-after"], "1");
  assert.match(
    third.json().error,
    /^429 Too Many Requests: too many posts for route ops@conf\/bot \(at most 60 a minute\)/,
  );
  clock = 1000;
  assert.equal((await post()).statusCode, 200);
  // Two more posts (even with a wrong token) exhaust the global bucket of 5.
  assert.equal((await post("guess")).statusCode, 404);
  const global = await post("guess");
  assert.equal(global.statusCode, 429);
  assert.match(global.json().error, /too many posts to this gateway/);
});

test("a route with an HMAC secret takes only bodies signed with it", async () => {
  const { createHmac } = await import("node:crypto");
  const signed: Route = {
    ...route,
    hmac: { secret: "hmac-secret", header: "X-Grafana-Alerting-Signature", maxSkewMs: 300_000 },
  };
  const got: PostBody[] = [];
  const app = buildApp({
    routes: buildRouteTable([signed]),
    log: createLogger("silent"),
    accept: async (_r, body) => {
      got.push(body);
      return { id: "x", status: "delivered" };
    },
  });
  const payload = '{"status":"firing"}';
  const good = createHmac("sha256", "hmac-secret").update(payload).digest("hex");
  const ok = await app.inject({
    method: "POST",
    url: "/post/s3cret-token",
    headers: { "content-type": "application/json", "x-grafana-alerting-signature": good },
    payload,
  });
  assert.equal(ok.statusCode, 200, ok.body);
  const bad = await app.inject({
    method: "POST",
    url: "/post/s3cret-token",
    headers: { "content-type": "application/json", "x-grafana-alerting-signature": good },
    payload: '{"status":"resolved"}',
  });
  assert.equal(bad.statusCode, 401);
  assert.match(
    bad.json().error,
    /^401 Unauthorized: X-Grafana-Alerting-Signature does not match the body/,
  );
  assert.equal(got.length, 1, "the forged post is not accepted");
});

test("?dry_run=1 shows the rendered messages and their targets without sending", async () => {
  let accepted = 0;
  const app = buildApp({
    routes: buildRouteTable([route]),
    log: createLogger("silent"),
    accept: async () => {
      accepted++;
      return { id: "x", status: "delivered" };
    },
    preview: async (_r, body) => ({
      messages: [
        { to: "ops@conf", nick: "bot", body: body.kind === "text" ? body.text.toUpperCase() : "?" },
      ],
    }),
  });
  const res = await app.inject({
    method: "POST",
    url: "/post/s3cret-token?dry_run=1",
    headers: { "content-type": "text/plain" },
    payload: "hello",
  });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), {
    success: true,
    dry_run: true,
    route: "ops@conf/bot",
    messages: [{ to: "ops@conf", nick: "bot", body: "HELLO" }],
  });
  assert.equal(accepted, 0);
});

test("GET on a post URL is a plain 404, not a token error", async () => {
  const { app } = setup();
  const res = await app.inject({ method: "GET", url: "/post/s3cret-token" });
  assert.equal(res.statusCode, 404);
  assert.equal(res.json().error, "404 Not Found: no such endpoint: GET /post/…");
});

test("MESSAGE_FORMAT=json: a bare number posted prints as Python's json.dumps prints it", async () => {
  const { app, got } = setup();
  // Literal expectations, from python3 -c 'import json; print(json.dumps(json.loads(s)))'.
  const cases: Array<[string, string]> = [
    ["1.0", "1.0"],
    ["-0.0", "-0.0"],
    ["12345678901234567890123", "12345678901234567890123"],
    ["1e3", "1000.0"],
    ['{"a":1.0}', '{\n  "a": 1.0\n}'],
  ];
  for (const [payload] of cases) {
    const res = await app.inject({
      method: "POST",
      url: "/post/s3cret-token",
      headers: { "content-type": "application/json" },
      payload,
    });
    assert.equal(res.statusCode, 200, res.body);
  }
  assert.deepEqual(
    got.map((body) => renderPost(route, body)[0]),
    cases.map(([, printed]) => printed),
  );
});
