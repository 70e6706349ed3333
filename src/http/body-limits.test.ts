/**
 * Issue 10, the body rows: every parser bounded by the body limit as a whole request,
 * malformed input a 4xx that says what is wrong, and an empty body a 400.
 * Content-Encoding over HTTP is in body-encoding.test.ts.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { request } from "node:http";
import { Readable } from "node:stream";
import { test } from "node:test";
import { gzipSync } from "node:zlib";
import type { PostBody } from "../core/post.ts";
import { buildRouteTable, type Route } from "../core/routes.ts";
import { createLogger } from "../log.ts";
import { buildApp } from "./app.ts";
import { toReply } from "./errors.ts";

const route: Route = {
  name: "r",
  tokens: ["t"],
  targets: [{ kind: "room", room: "ops@conf", nick: "bot" }],
  format: "json",
};

function setup(opts: { bodyLimit?: number; route?: Route } = {}) {
  const got: PostBody[] = [];
  const app = buildApp({
    routes: buildRouteTable([opts.route ?? route]),
    log: createLogger("silent"),
    bodyLimit: opts.bodyLimit,
    accept: async (_r, body) => {
      got.push(body);
      return { id: "x", status: "delivered" };
    },
  });
  const post = (
    payload: string | Buffer | Readable | undefined,
    headers: Record<string, string> = {},
  ) => app.inject({ method: "POST", url: "/post/t", headers, payload });
  return { app, got, post };
}

const B = "gwboundary";
const MP = `multipart/form-data; boundary=${B}`;
const field = (name: string, value: string) =>
  `--${B}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
const file = (name: string, filename: string, value: string | Buffer) =>
  Buffer.concat([
    Buffer.from(
      `--${B}\r\nContent-Disposition: form-data; name="${name}"; filename="${filename}"\r\n` +
        "Content-Type: application/octet-stream\r\n\r\n",
    ),
    Buffer.from(value),
    Buffer.from("\r\n"),
  ]);
const end = `--${B}--\r\n`;

/** A lazy stream of `parts` multipart fields of `size` bytes; `pulled()` says how much was read. */
function lazyMultipart(parts: number, size: number) {
  let pulled = 0;
  let i = 0;
  const chunk = "x".repeat(size);
  const stream = new Readable({
    read() {
      const piece = i < parts ? field(`f${i}`, chunk) : i === parts ? end : null;
      i++;
      if (piece !== null) pulled += piece.length;
      this.push(piece);
    },
  });
  return { stream, pulled: () => pulled };
}

test("row 1: a form with more fields than the cap is a 413 naming the cap", async () => {
  const { got, post } = setup();
  const ok = await post("a&".repeat(1000), { "content-type": "application/x-www-form-urlencoded" });
  assert.equal(ok.statusCode, 200, ok.body);
  assert.equal((got[0] as { value: { a: string[] } }).value.a.length, 1000);
  const res = await post("a&".repeat(5000), {
    "content-type": "application/x-www-form-urlencoded",
  });
  assert.equal(res.statusCode, 413, res.body);
  assert.equal(
    res.json().error,
    "413 Payload Too Large: the form has more than 1000 fields; at most 1000 are accepted",
  );
});

test("row 2: a 50 MB multipart stream is a 413 naming the limit, answered before it is all read", async () => {
  const { got, post } = setup();
  const body = lazyMultipart(60, 900 * 1024);
  const res = await post(body.stream, { "content-type": MP });
  assert.equal(res.statusCode, 413, res.body);
  assert.equal(
    res.json().error,
    "413 Payload Too Large: the body is larger than the limit of 1048576 bytes",
  );
  assert.ok(body.pulled() < 4 * 1024 * 1024, `read ${body.pulled()} bytes of 54 MB`);
  assert.equal(got.length, 0);
});

test("row 2: a multipart body with a Content-Length over the limit is a 413 before it is read", async () => {
  const { post } = setup({ bodyLimit: 1000 });
  const res = await post(field("a", "x".repeat(2000)) + end, { "content-type": MP });
  assert.equal(res.statusCode, 413, res.body);
  assert.match(res.json().error, /larger than the limit of 1000 bytes/);
});

test("row 2: more than 1000 multipart parts is a 413 naming the cap", async () => {
  const { post } = setup();
  const many = (n: number) => Array.from({ length: n }, (_, i) => field(`f${i}`, "v")).join("");
  const res = await post(many(1001) + end, { "content-type": MP });
  assert.equal(res.statusCode, 413, res.body);
  assert.equal(
    res.json().error,
    "413 Payload Too Large: the multipart body has more than 1000 parts; at most 1000 are accepted",
  );
  assert.equal((await post(many(1000) + end, { "content-type": MP })).statusCode, 200);
});

test("row 3: malformed multipart is a 400 that says what is wrong, never a 500", async () => {
  const { post } = setup();
  const body = field("a", "1") + end;
  const none = await post(body, { "content-type": "multipart/form-data" });
  assert.equal(none.statusCode, 400, none.body);
  assert.match(
    none.json().error,
    /^400 Bad Request: Content-Type multipart\/form-data needs a boundary/,
  );
  const wrong = await post(body, { "content-type": "multipart/form-data; boundary=other" });
  assert.equal(wrong.statusCode, 400, wrong.body);
  assert.match(
    wrong.json().error,
    /^400 Bad Request: .*the boundary "--other" given in Content-Type/,
  );
  const cut = await post(field("a", "1") + field("b", "2").slice(0, 30), { "content-type": MP });
  assert.equal(cut.statusCode, 400, cut.body);
  assert.match(cut.json().error, /^400 Bad Request: the multipart body ends before .*truncated/);
  const cutFile = await post(file("f", "a.bin", "abc").subarray(0, 100), { "content-type": MP });
  assert.equal(cutFile.statusCode, 400, cutFile.body);
});

test("row 4: a multipart file over the 1 MiB limit is a 413 naming it", async () => {
  const { post } = setup();
  const big = Buffer.concat([file("f", "big.bin", Buffer.alloc(1536 * 1024, 1)), Buffer.from(end)]);
  const res = await post(big, { "content-type": MP });
  assert.equal(res.statusCode, 413, res.body);
  assert.match(res.json().error, /^413 Payload Too Large: .*limit of 1048576 bytes/);
});

test("row 13: an empty body is a 400 'the body is empty', whatever its type", async () => {
  const { got, post } = setup();
  const cases: Array<[string, string | Buffer | undefined, Record<string, string>]> = [
    ["no body, no Content-Type", undefined, {}],
    ["text/plain, zero bytes", "", { "content-type": "text/plain" }],
    ["text/plain, only whitespace", " \r\n\t ", { "content-type": "text/plain" }],
    ["JSON, zero bytes", "", { "content-type": "application/json" }],
    ["form, zero bytes", "", { "content-type": "application/x-www-form-urlencoded" }],
    ["form without fields", "&&", { "content-type": "application/x-www-form-urlencoded" }],
    ["multipart, zero bytes", "", { "content-type": MP }],
    ["multipart without parts", end, { "content-type": MP }],
    ["gzip of nothing", gzipSync(""), { "content-type": "text/plain", "content-encoding": "gzip" }],
  ];
  for (const [what, payload, headers] of cases) {
    const res = await post(payload, headers);
    assert.equal(res.statusCode, 400, `${what}: ${res.body}`);
    assert.match(res.json().error, /^400 Bad Request: the body is empty/, what);
  }
  assert.equal(got.length, 0);
});

test("malformed means 4xx: odd bodies and headers never get a 5xx", async () => {
  const { post } = setup();
  const odd: Array<[string | Buffer, Record<string, string>]> = [
    [Buffer.from([0xff, 0xfe, 0x00]), { "content-type": MP }],
    [`--${B}\r\nno-colon-header\r\n\r\nx\r\n${end}`, { "content-type": MP }],
    [`--${B}\r\n\r\nheaderless\r\n${end}`, { "content-type": MP }],
    ["x", { "content-type": "multipart/form-data; boundary=" }],
    ["x", { "content-type": `multipart/form-data; boundary=${"b".repeat(300)}` }],
    ["a=%zz&%%=1", { "content-type": "application/x-www-form-urlencoded" }],
    ["x", { "content-type": "text/plain", "content-encoding": "gzip, gzip" }],
    ["x", { "content-type": "text/plain", "content-encoding": "" }],
    [
      Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]),
      { "content-type": MP, "content-encoding": "gzip" },
    ],
  ];
  for (const [payload, headers] of odd) {
    const res = await post(payload, headers);
    assert.ok(res.statusCode < 500, `${JSON.stringify(headers)}: ${res.statusCode} ${res.body}`);
    if (res.statusCode >= 400) assert.match(res.json().error, /^4\d\d /, res.body);
  }
});

test("errors from libraries with a 413, 415 or zlib code keep their meaning, never a 500", () => {
  const too = toReply({ code: "FST_PARTS_LIMIT", statusCode: 413, message: "reach parts limit" });
  assert.equal(too.status, 413);
  const type = toReply({ code: "X", statusCode: 415, message: "no" });
  assert.equal(type.status, 415);
  const zlib = toReply({ code: "Z_DATA_ERROR", message: "incorrect header check" });
  assert.deepEqual(
    [zlib.status, zlib.body.error],
    [400, "400 Bad Request: the body is not valid compressed data (incorrect header check)"],
  );
});

test("row 2: on a real socket a 200 MB multipart upload gets its 413 after a few MB", async () => {
  const { app } = setup();
  await app.listen({ port: 0, host: "127.0.0.1" });
  try {
    const { port } = app.server.address() as { port: number };
    const req = request({
      port,
      host: "127.0.0.1",
      method: "POST",
      path: "/post/t",
      headers: { "content-type": MP, "transfer-encoding": "chunked" },
    });
    const chunk = Buffer.from(field("f", "x".repeat(64 * 1024)));
    let written = 0;
    let answered = false;
    const reply = new Promise<{ status?: number; body: string }>((resolve, reject) => {
      req.on("response", (res) => {
        answered = true;
        let body = "";
        res.on("data", (d) => {
          body += d;
        });
        res.on("end", () => resolve({ status: res.statusCode, body }));
      });
      req.on("error", (err) => {
        if (!answered) reject(err);
      });
    });
    while (!answered && !req.destroyed && written < 200 * 1024 * 1024) {
      written += chunk.length;
      // The server closes the socket after its answer: a write may fail with EPIPE then.
      if (!req.write(chunk)) await once(req, "drain").catch(() => undefined);
    }
    const res = await reply;
    assert.equal(res.status, 413, res.body);
    assert.match(res.body, /larger than the limit of 1048576 bytes/);
    assert.ok(written < 32 * 1024 * 1024, `${written} bytes written before the answer`);
    req.destroy();
  } finally {
    await app.close();
  }
});

test("a body nobody reads (415, no boundary) may run over the limit without harm", async () => {
  const { post } = setup({ bodyLimit: 10_000 });
  for (const ct of ["application/xml", "multipart/form-data"]) {
    const body = lazyMultipart(20, 100 * 1024);
    const res = await post(body.stream, { "content-type": ct });
    assert.ok([400, 415].includes(res.statusCode), res.body);
    await new Promise((r) => setTimeout(r, 50));
  }
  const ok = await post("still up", { "content-type": "text/plain" });
  assert.equal(ok.statusCode, 200);
});
