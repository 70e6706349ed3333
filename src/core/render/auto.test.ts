import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { renderAlerts } from "./alerts.ts";
import { renderAuto } from "./auto.ts";
import { parseJsonForRender } from "./json.ts";
import { renderText } from "./text.ts";

const fixture = (name: string): unknown =>
  parseJsonForRender(
    readFileSync(new URL(`../../../test/fixtures/${name}`, import.meta.url), "utf8"),
  );

const ALERT_FIXTURES = [
  "grafana-test.json",
  "grafana-firing.json",
  "grafana-resolved.json",
  "alertmanager-firing.json",
  "alertmanager-resolved.json",
  "alertmanager-truncated.json",
];
const SLACK_FIXTURES = ["slack-text.json", "slack-attachments.json", "slack-blocks.json"];

describe("renderAuto", () => {
  for (const name of ALERT_FIXTURES) {
    it(`summarises ${name} as an alert group`, () => {
      const value = fixture(name);
      const expected = renderAlerts(value);
      assert.ok(expected !== undefined);
      assert.deepEqual(renderAuto(value), expected);
    });
  }

  for (const name of SLACK_FIXTURES) {
    it(`shows the Slack text of ${name}`, () => {
      const value = fixture(name);
      const expected = renderText(value);
      assert.ok(expected !== undefined);
      assert.deepEqual(renderAuto(value), [expected]);
    });
  }

  it("summarises the Alertmanager group exactly", () => {
    assert.deepEqual(renderAuto(fixture("alertmanager-firing.json"))[0]?.split("\n").slice(0, 5), [
      "🔥 FIRING (2) · InstanceDown",
      "",
      "InstanceDown · critical · db-1.example.org:9100",
      "Firing since 2024-05-14 07:58 UTC",
      "Instance db-1.example.org:9100 down",
    ]);
  });

  it("prefers the alert summary to a Slack-style text field on an alert group", () => {
    const value = { ...(fixture("grafana-test.json") as object), text: "slack text" };
    assert.equal(renderAuto(value)[0]?.split("\n")[0], "🔥 FIRING (1) · TestAlert");
  });

  it("shows a Slack-style text field of any other body", () => {
    assert.deepEqual(renderAuto({ text: "Deploy <https://ci.example.org/1|#1> done" }), [
      "Deploy #1 (https://ci.example.org/1) done",
    ]);
  });

  it("falls back to YAML for form fields without text, keeping source key order", () => {
    const form = Object.create(null) as Record<string, unknown>;
    form.title = "Deploy";
    form.tag = ["a", "b"];
    assert.deepEqual(renderAuto(form), ["title: Deploy\ntag:\n  - a\n  - b"]);
    assert.deepEqual(renderAuto(parseJsonForRender('{"b": 1, "2": "two", "text": ""}')), [
      'b: 1\n"2": two\ntext: ""',
    ]);
  });

  it("falls back to YAML for scalars and arrays", () => {
    const cases: [unknown, string][] = [
      [null, "null"],
      [42, "42"],
      ["hi", "hi"],
      [[], "[]"],
      [[{ text: "x" }], "- text: x"],
      [{}, "{}"],
    ];
    for (const [value, text] of cases) assert.deepEqual(renderAuto(value), [text]);
  });

  it("falls back to YAML for an unknown alert payload version", () => {
    const value = { version: "5", status: "firing", alerts: [], groupKey: "k" };
    assert.deepEqual(renderAuto(value), ['version: "5"\nstatus: firing\nalerts: []\ngroupKey: k']);
  });
});
