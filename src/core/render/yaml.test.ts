import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { parseJsonForRender } from "./json.ts";
import { renderYaml } from "./yaml.ts";

const ALERT = String.raw`{"status": "firing", "2": "integer-like key", "labels": {"alertname": "DiskFull", "instance": "db-1:9100", "severity": "critical"}, "annotations": {"summary": "Disque presque plein: é 日本 😀", "description": "line one\nline two\n  indented\n"}, "values": [1, -2, 0.5, 1e-7, 1e21, true, null], "empty": {"obj": {}, "arr": []}, "tricky": ["yes", "1", "", "#hash", "a: b", " lead", "tab\there", "bell\u0007"], "nested": [[1, [2]], {"k": "v"}], "long": "${"word ".repeat(30).trim()}", "last": "ends with newline\n"}`;

const ALERT_YAML = [
  "status: firing",
  '"2": integer-like key',
  "labels:",
  "  alertname: DiskFull",
  "  instance: db-1:9100",
  "  severity: critical",
  "annotations:",
  '  summary: "Disque presque plein: é 日本 😀"',
  "  description: |",
  "    line one",
  "    line two",
  "      indented",
  "values:",
  "  - 1",
  "  - -2",
  "  - 0.5",
  "  - 1e-7",
  "  - 1e+21",
  "  - true",
  "  - null",
  "empty:",
  "  obj: {}",
  "  arr: []",
  "tricky:",
  "  - yes",
  '  - "1"',
  '  - ""',
  '  - "#hash"',
  '  - "a: b"',
  '  - " lead"',
  "  - tab\there",
  '  - "bell\\a"',
  "nested:",
  "  - - 1",
  "    - - 2",
  "  - k: v",
  `long: ${"word ".repeat(30).trim()}`,
  'last: "ends with newline\\n"',
].join("\n");

/** Bodies whose YAML must load back to the same value. */
const ROUND_TRIPS: readonly unknown[] = [
  parseJsonForRender(ALERT),
  { fr: "é", ja: "日本", emoji: "😀", lone: "\ud800x", bom: "\ufeffstart" },
  { "\ufeffkey": 1 },
  { ctl: "nl\n cr\r tab\t nul\u0000 esc\u001b del\u007f nel\u0085 ls\u2028" },
  { a: { b: { c: [[], {}, [[]], [{}]] } } },
  { n: [0, -0, 1, -1, 0.1, 1e-7, 1e21, 1.7976931348623157e308, 5e-324] },
  {
    s: [
      "true",
      "null",
      "~",
      "0x1",
      "1e3",
      ".inf",
      "-",
      "? x",
      "*a",
      "&a",
      "!t",
      "%",
      "@",
      "`",
      "|",
      ">",
    ],
  },
  // Strings the package writes as block scalars in the risky cases.
  { a: "x\n\n", b: 1 },
  { a: "x\n\n" },
  ["x\n", "y\n\n"],
  "x\n\n",
  "  \n",
  { a: "  \n", b: 1 },
  " \n  x",
  "\n\n lead",
  { code: "  at foo()\n  at bar()\n" },
  "a\n \nb",
  { "multi\nline key": "v" },
  { long: "x".repeat(5000), longKey: { ["k".repeat(2000)]: 1 } },
  null,
  true,
  false,
  0,
  1.5,
  "",
  "hi",
  [],
  {},
];

describe("renderYaml", () => {
  it("prints the representative alert exactly", () => {
    assert.equal(renderYaml(parseJsonForRender(ALERT)), ALERT_YAML);
  });

  it("loads back to the same value, without a trailing newline", () => {
    for (const value of ROUND_TRIPS) {
      const text = renderYaml(value);
      assert.deepStrictEqual(parse(text), value, text);
      assert.ok(!text.endsWith("\n"), JSON.stringify(text));
    }
  });

  it("prints top-level scalars and empty containers on one line", () => {
    const cases: [unknown, string][] = [
      [null, "null"],
      [true, "true"],
      [42, "42"],
      [-1.5, "-1.5"],
      ["hi", "hi"],
      ["", '""'],
      ["1", '"1"'],
      [[], "[]"],
      [{}, "{}"],
    ];
    for (const [value, text] of cases) assert.equal(renderYaml(value), text);
  });

  it("keeps Unicode unescaped", () => {
    assert.equal(renderYaml({ s: "é 日本 😀" }), "s: é 日本 😀");
  });

  it("keeps source key order, integer-like keys included", () => {
    const value = parseJsonForRender('{"b": 1, "2": 2, "a": 3, "1": 4}');
    assert.equal(renderYaml(value), 'b: 1\n"2": 2\na: 3\n"1": 4');
  });

  it("writes multi-line strings as block literals and never folds long lines", () => {
    assert.equal(renderYaml({ m: "one\ntwo" }), "m: |-\n  one\n  two");
    const long = "word ".repeat(100).trim();
    assert.equal(renderYaml({ long }), `long: ${long}`);
  });

  it("writes a final string ending in newlines double-quoted so dropping the last newline is safe", () => {
    assert.equal(renderYaml({ a: "x\n\n" }), 'a: "x\\n\\n"');
    assert.equal(renderYaml({ a: "x\n\n", b: 1 }), "a: |+\n  x\n\nb: 1");
  });

  it("writes a value shared twice in full, without anchors", () => {
    const shared = { a: 1 };
    assert.equal(renderYaml([shared, shared]), "- a: 1\n- a: 1");
  });

  it("refuses values that are not JSON data", () => {
    for (const value of [undefined, () => 1, Symbol("s"), new Date(0), [undefined]]) {
      assert.throws(() => renderYaml(value), TypeError);
    }
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    assert.throws(() => renderYaml(loop), { name: "TypeError", message: /circular/ });
  });
});
