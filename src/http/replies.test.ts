// Every reply the gateway sends has its `{"error":"<status> <reason>: …"}` shape, the
// ones the HTTP framework and Node's HTTP server make themselves included, and no log
// line holds the token, even at trace level and for requests that are not valid HTTP.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { Writable } from "node:stream";
import { test } from "node:test";
import { leaks } from "../../test/support/leaks.ts";
import { parseReply as parse, rawRequest as raw } from "../../test/support/raw-http.ts";
import { until } from "../../test/support/until.ts";
import { GatewayError } from "../core/errors.ts";
import { buildRouteTable, type Route } from "../core/routes.ts";
import { createLogger } from "../log.ts";
import { buildApp } from "./app.ts";
import { fromClientError } from "./edge.ts";
import { toReply } from "./errors.ts";

const TOKEN = "replies-token-0123456789abcdef";
const LONG = `long-${"x".repeat(251)}`; // 256 characters
const HUGE = `huge-${"y".repeat(2995)}`; // longer than any path segment the router takes

/** The gateway's error shape, with the status repeated first. */
const SHAPE = /^\{"error":"(\d{3}) [A-Z][A-Za-z -]+: [^"]+"\}$/;

function setup(accept: () => Promise<"delivered" | "queued"> = async () => "delivered") {
  let logs = "";
  const sink = new Writable({
    write(chunk, _enc, done) {
      logs += chunk;
      done();
    },
  });
  const route: Route = {
    name: "replies",
    tokens: [TOKEN, LONG, HUGE],
    targets: [{ kind: "room", room: "ops@conf", nick: "bot" }],
    format: "text",
  };
  let accepted = 0;
  const app = buildApp({
    routes: buildRouteTable([route]),
    log: createLogger("trace", sink),
    accept: async () => {
      accepted++;
      return { id: "id-1", status: await accept() };
    },
  });
  return { app, logs: () => logs, accepted: () => accepted };
}

/** Asserts the gateway's shape and the status, and returns the error text. */
function gatewayShape(status: number, body: string): string {
  const m = SHAPE.exec(body);
  assert.ok(m, `not the gateway's shape: ${body}`);
  assert.equal(Number(m[1]), status, body);
  return (JSON.parse(body) as { error: string }).error;
}

const text = { "content-type": "text/plain" };

test("a 256-character token works in the path; one longer than the router takes is a 414 that says what to do", async () => {
  const { app } = setup();
  const ok = await app.inject({
    method: "POST",
    url: `/post/${LONG}`,
    headers: text,
    payload: "hi",
  });
  assert.equal(ok.statusCode, 200, ok.body);
  const tooLong = await app.inject({
    method: "POST",
    url: `/post/${HUGE}`,
    headers: text,
    payload: "hi",
  });
  const error = gatewayShape(414, tooLong.body);
  assert.match(error, /Authorization: Bearer/);
  assert.equal(error.includes(HUGE), false);
  // The same token as a Bearer token is fine.
  const bearer = await app.inject({
    method: "POST",
    url: "/post",
    headers: { ...text, authorization: `Bearer ${HUGE}` },
    payload: "hi",
  });
  assert.equal(bearer.statusCode, 200, bearer.body);
});

test("a bad URL is a 400 in the gateway's shape, without the URL", async () => {
  const { app } = setup();
  const res = await app.inject({
    method: "POST",
    url: `/post/${TOKEN}%zz`,
    headers: text,
    payload: "hi",
  });
  const error = gatewayShape(400, res.body);
  assert.match(error, /percent/);
  assert.equal(error.includes(TOKEN), false);
});

test("what Node's HTTP server rejects itself gets the gateway's shape, and the logs hold no token", async (t) => {
  const { app, logs } = setup();
  await app.listen({ port: 0, host: "127.0.0.1" });
  t.after(() => app.close());
  const port = (app.server.address() as { port: number }).port;
  const head = `POST /post/${TOKEN} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${TOKEN}\r\n`;

  const huge = parse(await raw(port, `${head}X-Big: ${"a".repeat(20_000)}\r\n\r\n`));
  assert.match(gatewayShape(431, huge.body), /headers/);
  assert.equal(huge.headers.get("content-type"), "application/json; charset=utf-8");

  const malformed = parse(await raw(port, `${head}Not A Header\r\nContent-Length: 2\r\n\r\nhi`));
  assert.match(gatewayShape(400, malformed.body), /not valid HTTP/);

  const chunks = `${head}Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\nzz\r\nhi\r\n`;
  gatewayShape(400, parse(await raw(port, chunks)).body);

  const noHost = `POST /post/${TOKEN} HTTP/1.1\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nhi`;
  assert.match(gatewayShape(400, parse(await raw(port, noHost)).body), /Host/);

  const expect = `${head}Expect: 200-ok\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nhi`;
  assert.match(gatewayShape(417, parse(await raw(port, expect)).body), /Expect/);

  await app.close();
  assert.match(logs(), /client error/, "client errors are logged");
  assert.deepEqual(leaks(logs(), { token: TOKEN }), [], logs());
});

// @fastify/multipart logged its busboy options at trace, `headers.authorization` included.
test("multipart posts with Bearer or Basic auth log no token, even at trace", async () => {
  const { app, logs } = setup();
  const boundary = "b0undary";
  const payload = `--${boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\nhello\r\n--${boundary}--\r\n`;
  const type = {
    "content-type": `multipart/form-data; boundary=${boundary}`,
    cookie: `s=${TOKEN}`,
  };
  for (const authorization of [
    `Bearer ${TOKEN}`,
    `Basic ${Buffer.from(`grafana:${TOKEN}`).toString("base64")}`,
  ]) {
    const res = await app.inject({
      method: "POST",
      url: "/post",
      headers: { ...type, authorization },
      payload,
    });
    assert.equal(res.statusCode, 200, res.body);
  }
  assert.match(logs(), /"route":"replies"/, "the posts are logged");
  assert.deepEqual(leaks(logs(), { token: TOKEN }), [], logs());
});

test("a post while the gateway closes gets 503 with Retry-After in the gateway's shape", async () => {
  let release = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const { app, accepted } = setup(async () => {
    await held;
    return "delivered";
  });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const port = (app.server.address() as { port: number }).port;
  const post = (body: string) =>
    `POST /post/${TOKEN} HTTP/1.1\r\nHost: gw\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  // The first post is in flight when the close begins; the second comes on the same
  // connection, after it began.
  const socket = connect(port, "127.0.0.1");
  const chunks: Buffer[] = [];
  socket.on("data", (c: Buffer) => chunks.push(c));
  const closedSocket = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  socket.write(post("one"));
  await until("the first post", () => accepted() === 1);
  const closing = app.close();
  socket.write(post("two"));
  await new Promise((r) => setTimeout(r, 200));
  release();
  await closing;
  await closedSocket;
  const all = Buffer.concat(chunks).toString("latin1");
  const second = all.slice(all.indexOf("HTTP/1.1", 1));
  assert.equal(parse(all).status, 200, all);
  const reply = parse(second);
  assert.match(gatewayShape(503, reply.body), /shutting down/);
  assert.match(reply.headers.get("retry-after") ?? "", /^\d+$/, second);
  assert.equal(accepted(), 1);
});

test("a request too slow to arrive is a 408; oversized chunk extensions a 413", () => {
  const slow = toReply(fromClientError({ code: "ERR_HTTP_REQUEST_TIMEOUT" }, 30_000));
  assert.match(gatewayShape(slow.status, JSON.stringify(slow.body)), /^408 .*within 30 s/);
  const ext = toReply(fromClientError({ code: "HPE_CHUNK_EXTENSIONS_OVERFLOW" }, 30_000));
  assert.equal(ext.status, 413);
});

test("every 503 and 429 carries Retry-After, whoever raised it", () => {
  for (const code of ["UNAVAILABLE", "SPOOL_FULL", "SHUTTING_DOWN", "RATE_LIMITED"] as const) {
    const r = toReply(new GatewayError(code, "busy"));
    assert.match(r.headers["retry-after"] ?? "", /^\d+$/, code);
  }
  assert.equal(
    toReply(new GatewayError("SPOOL_FULL", "full", { retryAfter: 30 })).headers["retry-after"],
    "30",
  );
});

test("a 503 (the spool full, shutting down) is logged as a warning, a 500 as an error", async () => {
  let fail: unknown = new GatewayError("SPOOL_FULL", "the spool is full", { retryAfter: 30 });
  const { app, logs } = setup(async () => {
    throw fail;
  });
  const levels = () =>
    logs()
      .split("\n")
      .filter((l) => l.includes('"msg":"50'))
      .map((l) => (JSON.parse(l) as { level: number }).level);
  const full = await app.inject({
    method: "POST",
    url: `/post/${TOKEN}`,
    headers: text,
    payload: "x",
  });
  assert.equal(full.statusCode, 503);
  assert.deepEqual(levels(), [40]);
  fail = new TypeError("a bug");
  const bug = await app.inject({
    method: "POST",
    url: `/post/${TOKEN}`,
    headers: text,
    payload: "x",
  });
  assert.equal(bug.statusCode, 500);
  assert.deepEqual(levels(), [40, 50]);
});
