import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { isCode } from "../errors.ts";
import { parseJsonForRender } from "./json.ts";
import { compileTemplate } from "./template.ts";

const grafanaFiring = parseJsonForRender(
  readFileSync(new URL("../../../test/fixtures/grafana-firing.json", import.meta.url), "utf8"),
);

const render = (source: string, value: unknown): string =>
  compileTemplate(source, "test.liquid")(value);

describe("compileTemplate", () => {
  it("renders a Grafana alert group, looping over its alerts", () => {
    const source = [
      "{{ status | upcase }}: {{ commonLabels.alertname }} ({{ alerts | size }})",
      "{% for alert in alerts %}",
      "- {{ alert.labels.instance }} [{{ alert.labels.severity }}] since " +
        '{{ alert.startsAt | date: "%H:%M", "UTC" }}: {{ alert.annotations.summary }}',
      "{% endfor %}",
    ].join("\n");
    assert.equal(
      render(source, grafanaFiring),
      [
        "FIRING: HighCPU (2)",
        "",
        "- web-1:9100 [critical] since 07:51: High CPU usage on web-1",
        "",
        "- web-2:9100 [critical] since 07:52: High CPU usage on web-2",
      ].join("\n"),
    );
  });

  it("offers the body both as the root scope and as `body`, and `now`", () => {
    assert.equal(render("{{ title }}|{{ body.title }}", { title: "t" }), "t|t");
    assert.equal(render("{{ body[1] }} {{ body | size }}", ["a", "b"]), "b 2");
    assert.equal(render("{{ body }}", "plain"), "plain");
    // `body` is always the whole body, even when the body has a field of that name.
    assert.equal(render("{{ body.body }}/{{ body.x }}", { body: "inner", x: 1 }), "inner/1");
    const at = () => new Date("2024-05-14T07:51:03Z");
    const stamp = compileTemplate('{{ now | date: "%Y-%m-%d %H:%M", "UTC" }}', "t", at);
    assert.equal(stamp({}), "2024-05-14 07:51");
  });

  it("formats ISO 8601 dates with Liquid's date filter, in a given time zone", () => {
    const at = { at: "2024-05-14T09:51:03.157076+02:00" };
    assert.equal(
      render('{{ at | date: "%Y-%m-%d %H:%M:%S %z", "UTC" }}', at),
      "2024-05-14 07:51:03 +0000",
    );
    assert.equal(render('{{ at | date: "%H:%M %z", "Europe/Berlin" }}', at), "09:51 +0200");
    assert.equal(render('{{ at | date: "%s" }}', at), "1715673063");
  });

  it("joins lists and prints JSON and YAML", () => {
    const value = { tags: ["a", "b", "c"], data: { name: "é", n: [1, 2] } };
    assert.equal(render('{{ tags | join: ", " }}', value), "a, b, c");
    assert.equal(render("{{ data | json }}", value), '{"name":"é","n":[1,2]}');
    assert.equal(
      render("{{ data | pyjson }}", value),
      '{\n  "name": "\\u00e9",\n  "n": [\n    1,\n    2\n  ]\n}',
    );
    assert.equal(render("{{ data | yaml }}", value), "name: é\nn:\n  - 1\n  - 2");
    assert.equal(render('{{ missing | default: "none" }}', value), "none");
  });

  it("renders a missing field empty and trims trailing newlines", () => {
    assert.equal(render("a{{ no.such.field }}b\n\n", {}), "ab");
    assert.equal(render("{{ x }}\n  \n", { x: "v" }), "v");
  });

  it("reports a syntax error with its origin, line and column", () => {
    assert.throws(
      () => compileTemplate("ok\n{% if x %}\nunclosed", "routes[2].template"),
      (err: Error) => {
        assert.equal(
          err.message,
          "routes[2].template: line 2, column 1: tag {% if x %} not closed",
        );
        return true;
      },
    );
    assert.throws(
      () => compileTemplate("a\nb {{ x ", "/etc/gw/ci.liquid"),
      /^Error: \/etc\/gw\/ci\.liquid: line 2, column 3: output "\{\{ x " not closed/,
    );
  });

  it("rejects an unknown filter at compile time", () => {
    assert.throws(() => compileTemplate("{{ title }}\n  {{ title | upcas }}", "ci.liquid"), {
      message: "ci.liquid: line 2, column 3: undefined filter: upcas",
    });
  });

  it("cannot read files: include, render and layout are unknown tags", () => {
    for (const tag of ["include", "render", "layout"]) {
      assert.throws(
        () => compileTemplate(`{% ${tag} "package.json" %}`, "t"),
        new RegExp(`^Error: t: line 1, column 1: tag "${tag}" not found`),
      );
    }
  });

  it("turns a render failure into a 400-class error, not a crash", () => {
    // A body is JSON data, so a filter failing is rare; a value that is not JSON shows it.
    const template = compileTemplate("{{ x | pyjson }}", "t");
    assert.throws(
      () => template({ x: new Map() }),
      (err: Error) => isCode(err, "BAD_REQUEST") && /template failed: .*Map/.test(err.message),
    );
  });

  it("keeps prototype properties out of reach", () => {
    const value = JSON.parse('{"__proto__": {"polluted": "yes"}, "a": {}}');
    assert.equal(render("[{{ polluted }}{{ a.constructor }}{{ constructor }}]", value), "[]");
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});
