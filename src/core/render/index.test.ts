import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Format, Route } from "../routes.ts";
import { renderPost } from "./index.ts";
import { compileTemplate } from "./template.ts";

const route = (format: Format, extra: Partial<Route> = {}): Route => ({
  name: "r",
  tokens: ["t"],
  targets: [{ kind: "room", room: "ops@conference.example.org", nick: "bot" }],
  format,
  ...extra,
});

const json = (value: unknown) => ({ kind: "json", value }) as const;

describe("renderPost", () => {
  it("renders a parsed body in the route's format", () => {
    assert.deepEqual(renderPost(route("json"), json({ a: 1 })), ['{\n  "a": 1\n}']);
    assert.deepEqual(renderPost(route("yaml"), json({ a: 1 })), ["a: 1"]);
    assert.deepEqual(renderPost(route("text"), json({ text: "hi" })), ["hi"]);
  });

  it("prints a bare top-level number as Python does when the body's JSON text came with it", () => {
    const bare = (source: string) => ({ kind: "json", value: JSON.parse(source), source }) as const;
    assert.deepEqual(renderPost(route("json"), bare("1.0")), ["1.0"]);
    assert.deepEqual(renderPost(route("json"), bare("12345678901234567890123")), [
      "12345678901234567890123",
    ]);
    assert.deepEqual(renderPost(route("json"), bare("-0.0")), ["-0.0"]);
  });

  it("sends a text body verbatim, whatever the format, template or preformatted option", () => {
    const template = compileTemplate("T: {{ body }}", "t");
    for (const r of [route("json", { preformatted: true }), route("auto", { template })]) {
      assert.deepEqual(renderPost(r, { kind: "text", text: "as is\n" }), ["as is\n"]);
    }
  });

  it("renders a parsed body with the route's template instead of its format", () => {
    const template = compileTemplate("{{ title }}: {{ message }}\n", "routes[0].template");
    const r = route("json", { template, preformatted: true });
    assert.deepEqual(renderPost(r, json({ title: "Build", message: "passed" })), ["Build: passed"]);
  });

  it("wraps json and yaml in an XEP-0393 preformatted block when asked", () => {
    assert.deepEqual(renderPost(route("json", { preformatted: true }), json({ a: [1] })), [
      '```\n{\n  "a": [\n    1\n  ]\n}\n```',
    ]);
    assert.deepEqual(renderPost(route("yaml", { preformatted: true }), json({ a: "b" })), [
      "```\na: b\n```",
    ]);
    assert.deepEqual(renderPost(route("yaml", { preformatted: false }), json({ a: "b" })), [
      "a: b",
    ]);
  });

  it("leaves text and auto output unwrapped: they are prose for people", () => {
    assert.deepEqual(renderPost(route("text", { preformatted: true }), json({ text: "hi" })), [
      "hi",
    ]);
    assert.deepEqual(renderPost(route("auto", { preformatted: true }), json({ text: "hi" })), [
      "hi",
    ]);
  });
});
