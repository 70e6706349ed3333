import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import { stripVTControlCharacters } from "node:util";
import { createLogger } from "./log.ts";

/** A stream that records what is written to it, optionally claiming to be a terminal. */
function sink(isTTY: boolean): Writable & { text(): string; isTTY?: boolean } {
  let text = "";
  const w = new Writable({
    write(chunk, _enc, cb) {
      text += chunk;
      cb();
    },
  });
  return Object.assign(w, { isTTY, text: () => text });
}

test("not a terminal: one JSON object per line, secrets redacted", () => {
  const out = sink(false);
  const log = createLogger("info", out);
  log.info({ route: "ci", token: "tok-123", target: { password: "pw-456" } }, "hello");
  const line = JSON.parse(out.text().trim());
  assert.equal(line.msg, "hello");
  assert.equal(line.route, "ci");
  assert.equal(line.token, "[redacted]");
  assert.equal(line.target.password, "[redacted]");
});

test("a terminal: human-readable lines, still redacted", () => {
  const out = sink(true);
  const log = createLogger("debug", out);
  log.debug({ route: "ci", token: "tok-123", target: { password: "pw-456" } }, "hello there");
  const text = stripVTControlCharacters(out.text());
  assert.throws(() => JSON.parse(text.trim()), "not JSON");
  assert.match(text, /DEBUG/);
  assert.match(text, /hello there/);
  assert.match(text, /route: "ci"/);
  assert.doesNotMatch(text, /tok-123|pw-456/);
});

test("the level is respected", () => {
  const out = sink(false);
  const log = createLogger("warn", out);
  log.info("quiet");
  log.warn("loud");
  assert.equal(out.text().trim().split("\n").length, 1);
  assert.match(out.text(), /loud/);
});

test("request headers and raw request bytes are redacted wherever a library logs them", () => {
  const out = sink(false);
  const log = createLogger("trace", out);
  const headers = {
    authorization: "Bearer tok-1",
    "proxy-authorization": "Basic dG9rLTI=",
    cookie: "s=tok-3",
    "set-cookie": ["s=tok-4"],
    "x-grafana-alerting-signature": "sig-5",
    "content-type": "multipart/form-data",
  };
  // @fastify/multipart logs its busboy options, the request's headers included.
  log.trace({ busboyOptions: { headers } }, "Providing options to busboy");
  log.trace({ req: { raw: { headers } } }, "deeper");
  // Node's HTTP parser errors carry the bytes it read: path, headers and all.
  const err = Object.assign(new Error("Parse Error"), {
    code: "HPE_INVALID_HEADER_TOKEN",
    rawPacket: Buffer.from("POST /post/tok-6 HTTP/1.1"),
  });
  log.trace({ err }, "client error");
  log.trace(err, "as the first argument");
  log.trace({ rawHeaders: ["Authorization", "Bearer tok-7"] }, "raw headers");
  const text = out.text();
  assert.doesNotMatch(text, /tok-|dG9rLT|sig-5|rawPacket":\{/);
  const first = JSON.parse(text.split("\n")[0] as string);
  assert.equal(first.busboyOptions.headers.authorization, "[redacted]");
  assert.equal(first.busboyOptions.headers["content-type"], "multipart/form-data");
});
