/**
 * Issue 10, row 12: Content-Encoding over HTTP. gzip, deflate and br are decoded with the
 * body limit on the decoded size; anything else is a 415, corrupt data a 400.
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";
import { brotliCompressSync, deflateSync, gzipSync } from "node:zlib";
import type { PostBody } from "../core/post.ts";
import { buildRouteTable, type Route } from "../core/routes.ts";
import { createLogger } from "../log.ts";
import { buildApp } from "./app.ts";

const route: Route = {
  name: "r",
  tokens: ["t"],
  targets: [{ kind: "room", room: "ops@conf", nick: "bot" }],
  format: "json",
};

function setup(opts: { route?: Route } = {}) {
  const got: PostBody[] = [];
  const app = buildApp({
    routes: buildRouteTable([opts.route ?? route]),
    log: createLogger("silent"),
    accept: async (_r, body) => {
      got.push(body);
      return { id: "x", status: "delivered" };
    },
  });
  const post = (payload: string | Buffer, headers: Record<string, string>) =>
    app.inject({ method: "POST", url: "/post/t", headers, payload });
  return { got, post };
}

const B = "gwboundary";
const MP = `multipart/form-data; boundary=${B}`;
const field = (name: string, value: string) =>
  `--${B}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
const end = `--${B}--\r\n`;

test("row 12: gzip, deflate and br bodies are decoded", async () => {
  const { got, post } = setup();
  const json = Buffer.from('{"title":"zipped ✓"}');
  const ct = { "content-type": "application/json" };
  for (const [encoding, bytes] of [
    ["gzip", gzipSync(json)],
    ["x-gzip", gzipSync(json)],
    ["deflate", deflateSync(json)],
    ["br", brotliCompressSync(json)],
    ["identity", json],
    ["gzip, br", brotliCompressSync(gzipSync(json))],
  ] as const) {
    const res = await post(bytes, { ...ct, "content-encoding": encoding });
    assert.equal(res.statusCode, 200, `${encoding}: ${res.body}`);
    assert.deepEqual(got.pop(), { kind: "json", value: { title: "zipped ✓" } }, encoding);
  }
  const form = await post(gzipSync("a=1&b=2"), {
    "content-type": "application/x-www-form-urlencoded",
    "content-encoding": "gzip",
  });
  assert.equal(form.statusCode, 200, form.body);
  const mp = await post(gzipSync(field("a", "1") + end), {
    "content-type": MP,
    "content-encoding": "gzip",
  });
  assert.equal(mp.statusCode, 200, mp.body);
  assert.deepEqual(got.pop(), { kind: "json", value: { a: "1" } });
});

test("row 12: an unknown Content-Encoding is a 415 listing the supported ones", async () => {
  const { post } = setup();
  const res = await post("x", { "content-type": "text/plain", "content-encoding": "compress" });
  assert.equal(res.statusCode, 415, res.body);
  assert.equal(
    res.json().error,
    '415 Unsupported Media Type: Content-Encoding "compress" is not supported; use gzip, deflate, br or none',
  );
});

test("row 12: corrupt compressed data is a 400 naming the encoding", async () => {
  const { post } = setup();
  const ct = { "content-type": "text/plain" };
  const garbage = await post("not gzip at all", { ...ct, "content-encoding": "gzip" });
  assert.equal(garbage.statusCode, 400, garbage.body);
  assert.match(garbage.json().error, /^400 Bad Request: the body is not valid gzip data \(/);
  const cut = await post(gzipSync("hello world").subarray(0, 12), {
    ...ct,
    "content-encoding": "gzip",
  });
  assert.equal(cut.statusCode, 400, cut.body);
  assert.match(cut.json().error, /not valid gzip data/);
  const br = await post("nope", { ...ct, "content-encoding": "br" });
  assert.equal(br.statusCode, 400, br.body);
  assert.match(br.json().error, /not valid br data/);
});

test("row 12: a gzip bomb is a 413 naming the limit on the decoded size", async () => {
  const { got, post } = setup();
  const bomb = gzipSync(Buffer.alloc(20 * 1024 * 1024)); // 20 MiB of zeros, about 20 KB
  for (const ct of ["text/plain", "application/json", MP]) {
    const res = await post(bomb, { "content-type": ct, "content-encoding": "gzip" });
    assert.equal(res.statusCode, 413, `${ct}: ${res.body}`);
    assert.equal(
      res.json().error,
      "413 Payload Too Large: the body is larger than the limit of 1048576 bytes once decoded",
    );
  }
  assert.equal(got.length, 0);
});

test("row 12: an HMAC signature covers the decoded body (what the sender signed), not the compressed bytes", async () => {
  const signed: Route = {
    ...route,
    hmac: { secret: "k", header: "X-Grafana-Alerting-Signature", maxSkewMs: 300_000 },
  };
  const { got, post } = setup({ route: signed });
  const json = '{"status":"firing"}';
  const sig = (b: string | Buffer) => createHmac("sha256", "k").update(b).digest("hex");
  const zipped = gzipSync(json);
  const headers = { "content-type": "application/json", "content-encoding": "gzip" };
  const ok = await post(zipped, { ...headers, "x-grafana-alerting-signature": sig(json) });
  assert.equal(ok.statusCode, 200, ok.body);
  assert.deepEqual(got, [{ kind: "json", value: { status: "firing" } }]);
  const overWire = await post(zipped, { ...headers, "x-grafana-alerting-signature": sig(zipped) });
  assert.equal(overWire.statusCode, 401, overWire.body);
});
