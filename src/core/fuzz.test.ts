// Property-based fuzzing of what a caller's body goes through before the spool: the body
// parsers (http/body.ts, where caller input enters, so this test reaches out to it) and
// the renderers. Each must either work or refuse with the gateway's own 4xx error, in
// bounded time; what it produces must hold what it promises (JSON prints as Python's,
// JSON and YAML load back to the value). Splitter and XML safety: fuzz-text.test.ts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { parse as parseYaml } from "yaml";
import { decodeText, parseFormBody, parseJsonBody } from "../http/body.ts";
import { GatewayError } from "./errors.ts";
import { brokenJson, formText, jsonText, only4xx, python, RUNS, text } from "./fuzz-support.ts";
import { renderAlerts } from "./render/alerts.ts";
import { renderAuto } from "./render/auto.ts";
import { parseJsonForRender, renderJson } from "./render/json.ts";
import { compileTemplate } from "./render/template.ts";
import { renderText } from "./render/text.ts";
import { renderYaml } from "./render/yaml.ts";

/** JSON equality as a JSON reader sees it: numbers by value (-0 is 0), key order ignored. */
function sameJson(a: unknown, b: unknown): boolean {
  if (typeof a === "number" || typeof b === "number") return a === b;
  if (Array.isArray(a) || Array.isArray(b)) {
    return (
      Array.isArray(a) &&
      Array.isArray(b) &&
      a.length === b.length &&
      a.every((x, i) => sameJson(x, b[i]))
    );
  }
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return a === b;
  const ka = Object.keys(a);
  return (
    ka.length === Object.keys(b).length &&
    ka.every(
      (k) =>
        Object.hasOwn(b, k) &&
        sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
    )
  );
}

/** Whether a JSON value holds a number JSON cannot write (Python prints `Infinity`). */
function hasNonFinite(v: unknown): boolean {
  if (typeof v === "number") return !Number.isFinite(v);
  if (v === null || typeof v !== "object") return false;
  return Object.values(v).some(hasNonFinite);
}

describe("fuzz: body parsers", () => {
  it("parseJsonBody: a value equal to JSON.parse's, or a 400", () => {
    fc.assert(
      fc.property(fc.oneof(jsonText, brokenJson, text()), (body) => {
        const value = only4xx("parseJsonBody", () => parseJsonBody(body));
        if (!(value instanceof GatewayError)) assert.deepStrictEqual(value, JSON.parse(body));
      }),
      RUNS,
    );
  });

  it("parseFormBody: fields, the JSON it holds, or a 4xx", () => {
    fc.assert(
      fc.property(fc.oneof(formText, jsonText, brokenJson, text()), (body) => {
        only4xx("parseFormBody", () => parseFormBody(body));
      }),
      RUNS,
    );
  });

  it("decodeText: text, or a 400/415, whatever the bytes and charset", () => {
    const charset = fc.constantFrom(
      ...["utf-8", "UTF8", "latin1", "windows-1252", "utf-16le", "utf-16be", "shift_jis"],
      ...["gb18030", "x-user-defined", "replacement", "utf-7", "bogus", "", "utf-8\u0000"],
    );
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc
        .tuple(text(), fc.uint8Array({ maxLength: 3 }))
        .map(([t, b]) => Buffer.concat([Buffer.from(t), b])),
    );
    fc.assert(
      fc.property(bytes, charset, (b, cs) => {
        only4xx("decodeText", () => decodeText(Buffer.from(b), cs));
      }),
      RUNS,
    );
  });

  // An invalid byte at the end of a large body: naming its offset by decoding every prefix
  // in turn was quadratic (90 ms at 40 KB, a minute at 1 MiB, the event loop blocked).
  it("decodeText: time about linear in the body, even with an invalid byte at its end", () => {
    fc.assert(
      fc.property(fc.integer({ min: 150_000, max: 200_000 }), (n) => {
        const body = Buffer.concat([Buffer.alloc(n, 0x61), Buffer.from([0xff])]);
        const started = performance.now();
        only4xx("decodeText", () => decodeText(body));
        const ms = performance.now() - started;
        assert.ok(ms < 200 + n / 1000, `${n + 1} bytes took ${ms.toFixed(0)} ms`);
      }),
      { numRuns: 3, endOnFailure: true },
    );
  });
});

const TEMPLATES = [
  "{{ title }}: {{ message }}",
  "{{ body | pyjson }}",
  "{% for a in alerts %}{{ a.labels.alertname | upcase }} {{ a.annotations | pyjson }}\n{% endfor %}",
  "{{ text | truncate: 10 }} {{ status | default: 'none' }} {{ body.blocks[0].text.text }}",
].map((source, i) => compileTemplate(source, `templates[${i}]`, () => new Date(0)));

const DUMPS = `
import json, sys
for line in sys.stdin:
    print(json.dumps(json.dumps(json.loads(json.loads(line)), indent=2)))
`;

describe("fuzz: renderers", () => {
  it("json prints what Python's json.dumps(json.loads(body), indent=2) prints", (t) => {
    const bodies = fc.sample(jsonText, RUNS.numRuns);
    const expected = python(DUMPS, bodies);
    if (expected === undefined) return t.skip("python3 is not installed");
    for (const [i, body] of bodies.entries()) {
      const got = only4xx("renderJson", () => renderJson(parseJsonForRender(body), body));
      assert.equal(got, expected[i], `body ${JSON.stringify(body)}`);
    }
  });

  it("json, yaml, text, auto and templates render any JSON body; json and yaml load back to it", () => {
    fc.assert(
      fc.property(jsonText, (body) => {
        const value = parseJsonForRender(body);
        const json = only4xx("renderJson", () => renderJson(value, body));
        assert.equal(typeof json, "string", "renderJson refuses nothing");
        if (!hasNonFinite(value))
          assert.ok(sameJson(JSON.parse(json as string), value), json as string);
        const yaml = only4xx("renderYaml", () => renderYaml(value));
        assert.equal(typeof yaml, "string", "renderYaml refuses nothing");
        assert.ok(sameJson(parseYaml(yaml as string), value), `YAML does not load back:\n${yaml}`);
        for (const [name, render] of [
          ["renderText", renderText],
          ["renderAlerts", renderAlerts],
          ["renderAuto", renderAuto],
        ] as const) {
          const out = only4xx(name, () => render(value));
          assert.ok(!(out instanceof GatewayError), `${name} refuses nothing`);
        }
        for (const [i, template] of TEMPLATES.entries())
          only4xx(`templates[${i}]`, () => template(value));
      }),
      RUNS,
    );
  });
});
