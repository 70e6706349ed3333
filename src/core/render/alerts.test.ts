import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { renderAlerts } from "./alerts.ts";

const fixture = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(new URL(`../../../test/fixtures/${name}`, import.meta.url), "utf8"));

const GRAFANA_SOURCE =
  "Source: https://grafana.example.org/alerting/grafana/b8f3a1c2-7e4d-4f0a-9c1e-2d5b6a7c8d9e/view?orgId=1";
const GRAFANA_LINKS = [
  "Dashboard: https://grafana.example.org/d/node-exporter?orgId=1",
  "Panel: https://grafana.example.org/d/node-exporter?orgId=1&viewPanel=3",
  "Runbook: https://runbooks.example.org/high-cpu",
];
const SILENCE =
  "Silence: https://grafana.example.org/alerting/silence/new?alertmanager=grafana&matcher=alertname%3DHighCPU";
const UP_SOURCE = "Source: http://prometheus.example.org:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1";
const DISK_SOURCE =
  "Source: http://prometheus.example.org:9090/graph?g0.expr=node_filesystem_avail_bytes+%2F+node_filesystem_size_bytes+%3C+0.05&g0.tab=1";

/** A minimal Alertmanager group around `alerts`, for the edge cases. */
const group = (
  alerts: unknown[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> => ({
  receiver: "xmpp",
  status: "firing",
  alerts,
  groupLabels: {},
  commonLabels: {},
  commonAnnotations: {},
  externalURL: "http://alertmanager.example.org:9093",
  version: "4",
  groupKey: "{}:{}",
  truncatedAlerts: 0,
  ...extra,
});

describe("renderAlerts fixtures", () => {
  it("renders grafana-test.json (receiver empty, values null) as one readable alert", () => {
    assert.deepEqual(renderAlerts(fixture("grafana-test.json")), [
      [
        "🔥 FIRING (1) · TestAlert",
        "",
        "TestAlert · Grafana",
        "Firing since 2024-05-14 09:21 UTC",
        "Notification test",
        "Silence: https://grafana.example.org/alerting/silence/new?alertmanager=grafana&matcher=alertname%3DTestAlert&matcher=instance%3DGrafana",
      ].join("\n"),
    ]);
  });

  it("renders grafana-firing.json: count, name, one block per alert with every link", () => {
    assert.deepEqual(renderAlerts(fixture("grafana-firing.json")), [
      [
        "🔥 FIRING (2) · HighCPU",
        "",
        "HighCPU · critical · web-1:9100",
        "Firing since 2024-05-14 07:51 UTC",
        "High CPU usage on web-1",
        "CPU usage on web-1:9100 has been above 90% for 5 minutes (current value: 97%).",
        GRAFANA_SOURCE,
        ...GRAFANA_LINKS,
        `${SILENCE}&matcher=instance%3Dweb-1%3A9100&orgId=1`,
        "",
        "HighCPU · critical · web-2:9100",
        "Firing since 2024-05-14 07:52 UTC",
        "High CPU usage on web-2",
        "CPU usage on web-2:9100 has been above 90% for 5 minutes (current value: 93%).",
        GRAFANA_SOURCE,
        ...GRAFANA_LINKS,
        `${SILENCE}&matcher=instance%3Dweb-2%3A9100&orgId=1`,
      ].join("\n"),
    ]);
  });

  it("renders grafana-resolved.json", () => {
    assert.deepEqual(renderAlerts(fixture("grafana-resolved.json")), [
      [
        "✅ RESOLVED (1) · HighCPU",
        "",
        "HighCPU · critical · web-1:9100",
        "Resolved at 2024-05-14 08:06 UTC, fired for 15 min",
        "High CPU usage on web-1",
        "CPU usage on web-1:9100 has been above 90% for 5 minutes (current value: 41%).",
        GRAFANA_SOURCE,
        ...GRAFANA_LINKS,
        `${SILENCE}&matcher=instance%3Dweb-1%3A9100&orgId=1`,
      ].join("\n"),
    ]);
  });

  it("renders alertmanager-firing.json", () => {
    assert.deepEqual(renderAlerts(fixture("alertmanager-firing.json")), [
      [
        "🔥 FIRING (2) · InstanceDown",
        "",
        "InstanceDown · critical · db-1.example.org:9100",
        "Firing since 2024-05-14 07:58 UTC",
        "Instance db-1.example.org:9100 down",
        "db-1.example.org:9100 of job node has been down for more than 5 minutes.",
        UP_SOURCE,
        "",
        "InstanceDown · critical · db-2.example.org:9100",
        "Firing since 2024-05-14 07:59 UTC",
        "Instance db-2.example.org:9100 down",
        "db-2.example.org:9100 of job node has been down for more than 5 minutes.",
        UP_SOURCE,
      ].join("\n"),
    ]);
  });

  it("renders alertmanager-resolved.json: when each alert resolved and how long it fired", () => {
    assert.deepEqual(renderAlerts(fixture("alertmanager-resolved.json")), [
      [
        "✅ RESOLVED (2) · InstanceDown",
        "",
        "InstanceDown · critical · db-1.example.org:9100",
        "Resolved at 2024-05-14 08:13 UTC, fired for 15 min",
        "Instance db-1.example.org:9100 down",
        "db-1.example.org:9100 of job node has been down for more than 5 minutes.",
        UP_SOURCE,
        "",
        "InstanceDown · critical · db-2.example.org:9100",
        "Resolved at 2024-05-14 08:14 UTC, fired for 15 min",
        "Instance db-2.example.org:9100 down",
        "db-2.example.org:9100 of job node has been down for more than 5 minutes.",
        UP_SOURCE,
      ].join("\n"),
    ]);
  });

  it("renders alertmanager-truncated.json: mixed counts, which fire and which resolved, the truncation note", () => {
    assert.deepEqual(renderAlerts(fixture("alertmanager-truncated.json")), [
      [
        "🔥 FIRING (1), ✅ RESOLVED (1) · DiskFull",
        "",
        "🔥 DiskFull · warning · app-1.example.org:9100",
        "Firing since 2024-05-14 06:00 UTC",
        "Disk almost full on app-1",
        "Filesystem /dev/sda1 on app-1.example.org:9100 has 3% space left.",
        DISK_SOURCE,
        "Runbook: https://runbooks.example.org/disk-full",
        "",
        "✅ DiskFull · warning · app-2.example.org:9100",
        "Resolved at 2024-05-14 06:10 UTC, fired for 40 min",
        "Disk almost full on app-2",
        "Filesystem /dev/sda1 on app-2.example.org:9100 has 4% space left.",
        DISK_SOURCE,
        "Runbook: https://runbooks.example.org/disk-full",
        "",
        "… and 3 more alerts not shown (truncated by Alertmanager)",
      ].join("\n"),
    ]);
  });
});

describe("renderAlerts", () => {
  it("returns undefined for values that are not alert groups", () => {
    const grafana = fixture("grafana-firing.json");
    const alertmanager = fixture("alertmanager-firing.json");
    const cases: unknown[] = [
      null,
      undefined,
      "alert",
      42,
      [],
      [alertmanager],
      {},
      { text: "hello" },
      { alerts: [] },
      { ...alertmanager, version: undefined },
      { ...alertmanager, version: 4 },
      { ...alertmanager, version: "3" },
      { ...alertmanager, alerts: {} },
      { ...alertmanager, status: undefined },
      { version: "4", status: "firing", alerts: [] },
      { version: "1", status: "firing", alerts: [] },
      { ...grafana, version: "2" },
    ];
    for (const value of cases) assert.equal(renderAlerts(value), undefined, JSON.stringify(value));
  });

  it("recognises minimal groups by their version and one marker key", () => {
    assert.deepEqual(renderAlerts({ version: "4", status: "firing", alerts: [], groupKey: "" }), [
      "🔥 FIRING",
    ]);
    assert.deepEqual(renderAlerts({ version: "1", status: "resolved", alerts: [], orgId: 1 }), [
      "✅ RESOLVED",
    ]);
  });

  it("renders alerts without labels or annotations, skipping entries that are not objects", () => {
    assert.deepEqual(renderAlerts(group([{ status: "firing" }, null, "x", { labels: "x" }])), [
      "🔥 FIRING (2)\n\nAlert\n\nAlert",
    ]);
  });

  it("names a group without a common alertname by its distinct alert names", () => {
    const alert = (alertname: string) => ({ status: "firing", labels: { alertname } });
    assert.equal(
      renderAlerts(group([alert("A"), alert("B"), alert("A")]))?.[0]?.split("\n")[0],
      "🔥 FIRING (3) · A, B",
    );
    assert.equal(
      renderAlerts(group(["A", "B", "C", "D"].map(alert)))?.[0]?.split("\n")[0],
      "🔥 FIRING (4) · A, B, C, …",
    );
    assert.equal(
      renderAlerts(group([alert("A")], { groupLabels: { alertname: "G" } }))?.[0]?.split("\n")[0],
      "🔥 FIRING (1) · G",
    );
  });

  it("lists firing alerts before resolved ones", () => {
    const alerts = [
      { status: "resolved", labels: { alertname: "Old" } },
      { status: "firing", labels: { alertname: "New" } },
    ];
    assert.deepEqual(renderAlerts(group(alerts)), [
      "🔥 FIRING (1), ✅ RESOLVED (1) · New, Old\n\n🔥 New\n\n✅ Old",
    ]);
  });

  it("trims values, drops blank lines inside a description, and shows a repeated summary once", () => {
    const alert = {
      status: "firing",
      labels: { alertname: "  Trim  ", severity: " ", instance: "\thost\n" },
      annotations: { summary: " same ", description: "same" },
    };
    const other = {
      status: "firing",
      labels: { alertname: "Lines" },
      annotations: { description: "one\n\n  \r\ntwo\n   three" },
    };
    assert.deepEqual(renderAlerts(group([alert, other])), [
      "🔥 FIRING (2) · Trim, Lines\n\nTrim · host\nsame\n\nLines\none\ntwo\n   three",
    ]);
  });

  it("caps a long description at 500 characters with an ellipsis", () => {
    const description = "x".repeat(600);
    const out = renderAlerts(group([{ status: "firing", annotations: { description } }]));
    assert.deepEqual(out, [`🔥 FIRING (1)\n\nAlert\n${"x".repeat(499)}…`]);
    const exact = "y".repeat(500);
    const kept = renderAlerts(group([{ status: "firing", annotations: { summary: exact } }]));
    assert.deepEqual(kept, [`🔥 FIRING (1)\n\nAlert\n${exact}`]);
  });

  it("never cuts a surrogate pair in half", () => {
    const description = `${"x".repeat(498)}😀${"z".repeat(10)}`;
    const out = renderAlerts(group([{ status: "firing", annotations: { description } }]));
    assert.deepEqual(out, [`🔥 FIRING (1)\n\nAlert\n${"x".repeat(498)}…`]);
  });

  it("shows only absolute http(s) links", () => {
    const alert = {
      status: "firing",
      labels: { alertname: "L" },
      generatorURL: "?orgId=1",
      silenceURL: "javascript:alert(1)",
      dashboardURL: "",
      panelURL: 42,
      annotations: { runbook_url: "HTTPS://RUNBOOK.example.org" },
    };
    assert.deepEqual(renderAlerts(group([alert])), [
      "🔥 FIRING (1) · L\n\nL\nRunbook: HTTPS://RUNBOOK.example.org",
    ]);
  });

  it("shows Grafana's image as a link, after the panel", () => {
    const alert = {
      status: "firing",
      labels: { alertname: "I" },
      panelURL: "https://grafana.example.org/d/x?viewPanel=3",
      imageURL: "https://grafana.example.org/public/img/attachments/abc.png",
      annotations: { runbook_url: "https://runbooks.example.org/i" },
    };
    assert.deepEqual(
      renderAlerts(group([alert]))?.[0]
        ?.split("\n")
        .slice(3),
      [
        "Panel: https://grafana.example.org/d/x?viewPanel=3",
        "Image: https://grafana.example.org/public/img/attachments/abc.png",
        "Runbook: https://runbooks.example.org/i",
      ],
    );
  });

  it("says how many alerts were truncated, and by whom", () => {
    const grafana = { ...fixture("grafana-test.json"), truncatedAlerts: 1 };
    assert.equal(
      renderAlerts(grafana)?.[0]?.split("\n").at(-1),
      "… and 1 more alert not shown (truncated by Grafana)",
    );
    for (const truncatedAlerts of [0, -1, 1.5, "3", null]) {
      const out = renderAlerts(group([], { truncatedAlerts }));
      assert.deepEqual(out, ["🔥 FIRING"], String(truncatedAlerts));
    }
  });

  it("reads objects without a prototype and never inherited keys", () => {
    const labels = Object.create({ severity: "inherited" }) as Record<string, unknown>;
    labels.alertname = "Proto";
    assert.deepEqual(renderAlerts(group([{ status: "firing", labels }])), [
      "🔥 FIRING (1) · Proto\n\nProto",
    ]);
    const bare = Object.assign(Object.create(null) as object, group([]));
    assert.deepEqual(renderAlerts(bare), ["🔥 FIRING"]);
  });
});

describe("renderAlerts times", () => {
  /** What is under the title of one alert with these members (and nothing else to show). */
  const timeLine = (alert: Record<string, unknown>): string | undefined =>
    renderAlerts(group([{ labels: { alertname: "T" }, ...alert }]))?.[0]
      ?.split("\n")
      .slice(3)
      .join("\n");
  const ZERO = "0001-01-01T00:00:00Z";

  it("says since when a firing alert fires, in UTC to the minute", () => {
    const cases: Array<[string, string]> = [
      ["2026-12-01T12:00:00Z", "Firing since 2026-12-01 12:00 UTC"],
      ["2026-12-01T12:00:59.999999999Z", "Firing since 2026-12-01 12:00 UTC"],
      ["2024-05-14T09:51:03.157076+02:00", "Firing since 2024-05-14 07:51 UTC"],
      ["2024-12-31T23:30:00-01:30", "Firing since 2025-01-01 01:00 UTC"],
      ["2024-02-29T00:00:00Z", "Firing since 2024-02-29 00:00 UTC"],
    ];
    for (const [startsAt, line] of cases) {
      assert.equal(timeLine({ status: "firing", startsAt, endsAt: ZERO }), line, startsAt);
    }
  });

  it("says when a resolved alert resolved and how long it fired, rounded down", () => {
    const startsAt = "2026-12-01T12:00:00Z";
    const cases: Array<[string, string]> = [
      ["2026-12-01T12:00:00.5Z", "less than 1 s"],
      ["2026-12-01T12:00:01Z", "1 s"],
      ["2026-12-01T12:00:59.9Z", "59 s"],
      ["2026-12-01T12:01:00Z", "1 min"],
      ["2026-12-01T12:59:59Z", "59 min"],
      ["2026-12-01T13:00:00Z", "1 h"],
      ["2026-12-01T13:05:30Z", "1 h 5 min"],
      ["2026-12-03T15:00:00Z", "2 d 3 h"],
      ["2026-12-03T12:07:00Z", "2 d 7 min"],
    ];
    for (const [endsAt, fired] of cases) {
      const at = `${endsAt.slice(0, 10)} ${endsAt.slice(11, 16)} UTC`;
      assert.equal(
        timeLine({ status: "resolved", startsAt, endsAt }),
        `Resolved at ${at}, fired for ${fired}`,
        endsAt,
      );
    }
  });

  it("leaves out what the payload does not say: zero, missing or broken times", () => {
    const broken = [
      undefined,
      42,
      "",
      ZERO,
      "1970-01-01T00:00:00Z",
      "yesterday",
      "2026-12-01 12:00:00Z",
      "2026-12-01T12:00:00",
      "2026-13-01T12:00:00Z",
      "2026-02-29T12:00:00Z",
      "2026-04-31T12:00:00Z",
      "2026-12-01T24:00:00Z",
      "2026-12-01T12:60:00Z",
      "2026-12-01T12:00:60Z",
      "2026-12-01T12:00:00+24:00",
      "2026-12-01T12:00:00.1234567890Z",
    ];
    const good = "2026-12-01T12:00:00Z";
    for (const bad of broken) {
      const what = String(bad);
      assert.equal(timeLine({ status: "firing", startsAt: bad }), "", what);
      assert.equal(timeLine({ status: "resolved", startsAt: bad, endsAt: bad }), "", what);
      assert.equal(
        timeLine({ status: "resolved", startsAt: bad, endsAt: good }),
        "Resolved at 2026-12-01 12:00 UTC",
        what,
      );
      assert.equal(
        timeLine({ status: "resolved", startsAt: good, endsAt: bad }),
        "Resolved (started 2026-12-01 12:00 UTC)",
        what,
      );
    }
  });

  it("gives no duration when the end comes before the start", () => {
    assert.equal(
      timeLine({
        status: "resolved",
        startsAt: "2026-12-01T12:00:00Z",
        endsAt: "2026-12-01T11:00:00Z",
      }),
      "Resolved at 2026-12-01 11:00 UTC",
    );
  });
});
