import assert from "node:assert/strict";
import { test } from "node:test";
import type { PostBody } from "../core/post.ts";
import { buildRouteTable, type Route } from "../core/routes.ts";
import { createLogger } from "../log.ts";
import { buildApp } from "./app.ts";
import { decodeText, parseFormBody } from "./body.ts";

const route: Route = {
  name: "r",
  tokens: ["t"],
  targets: [{ kind: "room", room: "ops@conf", nick: "bot" }],
  format: "json",
};

function setup() {
  const got: PostBody[] = [];
  const app = buildApp({
    routes: buildRouteTable([route]),
    log: createLogger("silent"),
    accept: async (_r, body) => {
      got.push(body);
      return { id: "x", status: "delivered" };
    },
  });
  const post = (payload: string | Buffer, contentType?: string) =>
    app.inject({
      method: "POST",
      url: "/post/t",
      headers: contentType ? { "content-type": contentType } : {},
      payload,
    });
  return { got, post };
}

test("a form post becomes an object of its fields; repeated fields become arrays", async () => {
  const { got, post } = setup();
  const res = await post(
    "title=Deploy&text=done+%E2%9C%93&tag=a&tag=b",
    "application/x-www-form-urlencoded",
  );
  assert.equal(res.statusCode, 200, res.body);
  assert.deepEqual(got[0], {
    kind: "json",
    value: { title: "Deploy", text: "done ✓", tag: ["a", "b"] },
  });
});

test("curl -d '{json}' without -H is the JSON the user meant", async () => {
  const { got, post } = setup();
  const res = await post('{"title":"a+b","n":1.0}', "application/x-www-form-urlencoded");
  assert.equal(res.statusCode, 200, res.body);
  assert.equal(got[0]?.kind, "json");
  assert.deepEqual((got[0] as { value: unknown }).value, { title: "a+b", n: 1 });
});

test("Slack's payload= field holding JSON is parsed", async () => {
  const { got, post } = setup();
  const payload = encodeURIComponent(JSON.stringify({ text: "hello *world*" }));
  const res = await post(`payload=${payload}`, "application/x-www-form-urlencoded");
  assert.equal(res.statusCode, 200, res.body);
  assert.deepEqual(got[0], { kind: "json", value: { text: "hello *world*" } });
  const bad = await post("payload=%7Bnope", "application/x-www-form-urlencoded");
  assert.equal(bad.statusCode, 400);
  assert.match(bad.json().error, /invalid JSON in the payload field/);
});

test("multipart/form-data becomes an object of its fields; text files their text", async () => {
  const { got, post } = setup();
  const b = "----gwboundary";
  const body = [
    `--${b}`,
    'Content-Disposition: form-data; name="title"',
    "",
    "Build #42",
    `--${b}`,
    'Content-Disposition: form-data; name="tag"',
    "",
    "ci",
    `--${b}`,
    'Content-Disposition: form-data; name="tag"',
    "",
    "main",
    `--${b}`,
    'Content-Disposition: form-data; name="log"; filename="build.log"',
    "Content-Type: text/plain",
    "",
    "all green",
    `--${b}--`,
    "",
  ].join("\r\n");
  const res = await post(body, `multipart/form-data; boundary=${b}`);
  assert.equal(res.statusCode, 200, res.body);
  assert.deepEqual(got[0], {
    kind: "json",
    value: { title: "Build #42", tag: ["ci", "main"], log: "all green" },
  });
});

test("text/plain honours its charset; invalid UTF-8 is a 400 naming the offset", async () => {
  const { got, post } = setup();
  const latin1 = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // "café" in ISO-8859-1
  assert.equal((await post(latin1, "text/plain; charset=iso-8859-1")).statusCode, 200);
  assert.deepEqual(got[0], { kind: "text", text: "café" });
  const bad = await post(Buffer.concat([latin1, Buffer.from("!")]), "text/plain");
  assert.equal(bad.statusCode, 400);
  assert.equal(
    bad.json().error,
    "400 Bad Request: the body is not valid utf-8 (decoding fails at byte offset 4)",
  );
  const cut = await post(latin1, "text/plain; charset=UTF-8");
  assert.equal(
    cut.json().error,
    "400 Bad Request: the body is not valid utf-8 (it ends in the middle of a character)",
  );
  const badJson = await post(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]), "application/json");
  assert.equal(badJson.statusCode, 400);
  const unknown = await post("x", "text/plain; charset=klingon");
  assert.equal(unknown.statusCode, 415);
  assert.match(unknown.json().error, /charset "klingon" is not supported/);
});

test("vendor +json types are JSON; a body with no Content-Type is a 415 listing the supported ones", async () => {
  const { got, post } = setup();
  assert.equal((await post('{"a":[1]}', "application/vnd.grafana+json")).statusCode, 200);
  assert.deepEqual(got[0], { kind: "json", value: { a: [1] } });
  const none = await post("x");
  assert.equal(none.statusCode, 415);
  assert.match(
    none.json().error,
    /use one of application\/json, application\/x-www-form-urlencoded, multipart\/form-data, text\/plain/,
  );
});

test("form parsing is linear: 200,000 repeats of one key cost about ten times 20,000", () => {
  const time = (n: number) => {
    const text = "a&".repeat(n);
    const start = process.hrtime.bigint();
    const value = parseFormBody(text, Number.POSITIVE_INFINITY) as { a: string[] };
    assert.equal(value.a.length, n);
    return Number(process.hrtime.bigint() - start) / 1e6;
  };
  time(20_000); // warm up
  const small = Math.min(time(20_000), time(20_000), time(20_000));
  const large = time(200_000);
  // Linear is about 10x; copying the array on each repeat (quadratic) was about 100x,
  // and took minutes. The floor absorbs timer noise on a busy machine.
  assert.ok(large < 30 * small + 100, `20k: ${small.toFixed(1)} ms, 200k: ${large.toFixed(1)} ms`);
});

test("finding the first invalid UTF-8 byte is not quadratic: 200 KB cost about ten times 20 KB", () => {
  const time = (n: number) => {
    const bytes = Buffer.concat([Buffer.alloc(n, 0x61), Buffer.from([0xff])]);
    const start = process.hrtime.bigint();
    assert.throws(() => decodeText(bytes), { message: new RegExp(`at byte offset ${n}\\)$`) });
    return Number(process.hrtime.bigint() - start) / 1e6;
  };
  time(20_000); // warm up
  const small = Math.min(time(20_000), time(20_000), time(20_000));
  const large = time(200_000);
  // Decoding every prefix in turn was about 100x (1 MiB took over a minute).
  assert.ok(
    large < 30 * small + 100,
    `20 KB: ${small.toFixed(1)} ms, 200 KB: ${large.toFixed(1)} ms`,
  );
});
