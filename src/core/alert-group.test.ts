import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  type AlertGroup,
  alertGroupOf,
  alertSource,
  alertTime,
  contentKey,
  threadKey,
} from "./alert-group.ts";
import { jsonText, RUNS } from "./fuzz-support.ts";
import { renderAlerts } from "./render/alerts.ts";

type Json = Record<string, unknown>;

/** A fixture as the body parser hands it over: a fresh copy each time. */
const fixture = (name: string): Json =>
  JSON.parse(readFileSync(new URL(`../../test/fixtures/${name}`, import.meta.url), "utf8"));

/** The same JSON with every object's keys in reverse order. */
function reordered(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reordered);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value)
      .reverse()
      .map(([k, v]) => [k, reordered(v)]),
  );
}

/** The group of a payload that must be one. */
function groupOf(value: unknown): AlertGroup {
  const group = alertGroupOf(value);
  assert.ok(group, `not an alert group: ${JSON.stringify(value)}`);
  return group;
}

/** The content key of a payload on route "ops". */
const key = (value: unknown, route = "ops"): string => contentKey(route, groupOf(value));

/** A payload with its alerts changed by `edit`. */
function withAlerts(payload: Json, edit: (alerts: Json[]) => Json[]): Json {
  return { ...payload, alerts: edit(structuredClone(payload.alerts as Json[])) };
}

describe("alertGroupOf", () => {
  it("reads an Alertmanager notification", () => {
    assert.deepEqual(alertGroupOf(fixture("alertmanager-firing.json")), {
      source: "Alertmanager",
      receiver: "xmpp",
      groupKey: '{}/{severity="critical"}:{alertname="InstanceDown"}',
      status: "firing",
      alerts: [
        {
          fingerprint: "1a30ba71cca2921f",
          status: "firing",
          startsAt: "2024-05-14T07:58:45.828Z",
          endsAt: "0001-01-01T00:00:00Z",
          name: "InstanceDown",
        },
        {
          fingerprint: "2b41cb82ddb3a32a",
          status: "firing",
          startsAt: "2024-05-14T07:59:15.828Z",
          endsAt: "0001-01-01T00:00:00Z",
          name: "InstanceDown",
        },
      ],
    });
  });

  it("reads a Grafana notification, its fingerprints and times as sent", () => {
    const group = groupOf(fixture("grafana-resolved.json"));
    assert.equal(group.source, "Grafana");
    assert.equal(group.receiver, "ops-xmpp");
    assert.equal(group.status, "resolved");
    assert.equal(
      group.groupKey,
      '{}/{team="ops"}:{alertname="HighCPU", grafana_folder="Infrastructure"}',
    );
    assert.deepEqual(group.alerts, [
      {
        fingerprint: "c6eadffa33fcdf37",
        status: "resolved",
        startsAt: "2024-05-14T09:51:03.157076+02:00",
        endsAt: "2024-05-14T10:06:03.157076+02:00",
        name: "HighCPU",
      },
    ]);
    // The Test button's notification has an empty receiver; its groupKey holds the time.
    assert.equal(groupOf(fixture("grafana-test.json")).receiver, "");
  });

  it("is undefined for what is not a notification of a group", () => {
    const alertmanager = fixture("alertmanager-firing.json");
    const cases: unknown[] = [
      null,
      "alert",
      [alertmanager],
      { text: "hello" },
      { ...alertmanager, version: "3" },
      { ...alertmanager, alerts: {} },
      { ...alertmanager, groupKey: undefined },
      { ...alertmanager, groupKey: "" },
      { ...alertmanager, groupKey: 7 },
      { ...alertmanager, status: "pending" },
      { ...alertmanager, status: undefined },
      { version: "1", status: "firing", alerts: [], orgId: 1 },
    ];
    for (const value of cases) assert.equal(alertGroupOf(value), undefined, JSON.stringify(value));
  });

  it("skips alerts that are not objects and reads missing members as empty", () => {
    const group = groupOf({ version: "4", status: "firing", groupKey: "g", alerts: [null, 1, {}] });
    assert.equal(group.receiver, "");
    assert.equal(group.alerts.length, 1);
    assert.deepEqual(
      { ...group.alerts[0], fingerprint: "" },
      {
        fingerprint: "",
        status: "",
        startsAt: "",
        endsAt: "",
        name: "",
      },
    );
    assert.match(group.alerts[0]?.fingerprint ?? "", /^[0-9a-f]{16}$/);
  });

  it("recognises exactly the payloads rendering summarises (one recogniser)", () => {
    const values: unknown[] = [
      fixture("alertmanager-firing.json"),
      fixture("grafana-test.json"),
      { version: "4", status: "firing", alerts: [], receiver: "x" },
      { version: "1", status: "firing", alerts: [], orgId: 1 },
      { version: "1", status: "firing", alerts: [] },
      { version: 4, status: "firing", alerts: [], groupKey: "g" },
      { version: "4", status: 1, alerts: [], groupKey: "g" },
      Object.assign(Object.create({ groupKey: "g" }), { version: "4", status: "x", alerts: [] }),
    ];
    for (const value of values) {
      assert.equal(alertSource(value) !== undefined, renderAlerts(value) !== undefined);
      if (alertGroupOf(value) !== undefined) assert.ok(alertSource(value));
    }
  });
});

describe("contentKey", () => {
  const firing = fixture("alertmanager-firing.json");

  it("is 64 hex digits", () => {
    assert.match(key(firing), /^[0-9a-f]{64}$/);
  });

  it("is one key for the same notification from two Alertmanagers", () => {
    // Each instance posts its own copy: identical JSON, or with keys in another order, the
    // alerts listed in another order, its own externalURL and its own truncatedAlerts.
    const first = key(fixture("alertmanager-firing.json"));
    const copies: unknown[] = [
      fixture("alertmanager-firing.json"),
      reordered(firing),
      withAlerts(firing, (alerts) => alerts.reverse()),
      { ...firing, externalURL: "http://alertmanager-2.example.org:9093" },
      { ...firing, truncatedAlerts: 3 },
      { ...firing, commonAnnotations: { summary: "another template" } },
    ];
    for (const copy of copies) assert.equal(key(copy), first, JSON.stringify(copy));
    const grafana = fixture("grafana-firing.json");
    assert.equal(key(reordered(grafana)), key(grafana));
  });

  it("counts times by the instant they name, not how they are written", () => {
    const grafana = fixture("grafana-resolved.json");
    const utc = withAlerts(grafana, (alerts) =>
      alerts.map((a) => ({
        ...a,
        startsAt: "2024-05-14T07:51:03.157076Z",
        endsAt: "2024-05-14T08:06:03.157076000Z",
      })),
    );
    assert.equal(key(utc), key(grafana));
    const later = withAlerts(grafana, (alerts) =>
      alerts.map((a) => ({ ...a, endsAt: "2024-05-14T08:06:03.157077Z" })),
    );
    assert.notEqual(key(later), key(grafana));
  });

  it("is a new key when the alert set, the status or a time changes", () => {
    const first = key(firing);
    const changed: Array<[string, unknown]> = [
      ["an alert less", withAlerts(firing, (alerts) => alerts.slice(1))],
      ["no alerts", withAlerts(firing, () => [])],
      [
        "an alert more",
        withAlerts(firing, (alerts) => [
          ...alerts,
          { ...alerts[0], fingerprint: "3c52dc93eec4b43b" },
        ]),
      ],
      ["the same alert twice", withAlerts(firing, (alerts) => [...alerts, alerts[0] as Json])],
      [
        "another fingerprint",
        withAlerts(firing, (alerts) => [{ ...alerts[0], fingerprint: "ff" }, alerts[1] as Json]),
      ],
      ["status", { ...firing, status: "resolved" }],
      [
        "endsAt",
        withAlerts(firing, (alerts) => [
          { ...alerts[0], endsAt: "2024-05-14T08:13:45.828Z" },
          alerts[1] as Json,
        ]),
      ],
      [
        "startsAt (fired again)",
        withAlerts(firing, (alerts) => [
          { ...alerts[0], startsAt: "2024-05-14T09:00:00Z" },
          alerts[1] as Json,
        ]),
      ],
      ["receiver", { ...firing, receiver: "pager" }],
      ["groupKey", { ...firing, groupKey: "{}:{}" }],
    ];
    const keys = new Set([first]);
    for (const [what, value] of changed) {
      assert.notEqual(key(value), first, what);
      keys.add(key(value));
    }
    assert.equal(keys.size, changed.length + 1, "every change gives its own key");
    assert.notEqual(key(fixture("alertmanager-resolved.json")), first);
  });

  it("has the route in the key", () => {
    assert.notEqual(key(firing, "ops"), key(firing, "dev"));
    assert.equal(key(firing, "dev"), key(fixture("alertmanager-firing.json"), "dev"));
  });

  it("encodes its parts unambiguously", () => {
    const a = { ...firing, receiver: "b:c" };
    const b = { ...firing, receiver: "c" };
    assert.notEqual(key(a, "a"), key(b, "a:b"));
    const split = groupOf(firing);
    const moved: AlertGroup = {
      ...split,
      alerts: [
        { ...(split.alerts[0] as AlertGroup["alerts"][number]), fingerprint: "x", startsAt: "y" },
      ],
    };
    const joined: AlertGroup = {
      ...split,
      alerts: [
        { ...(split.alerts[0] as AlertGroup["alerts"][number]), fingerprint: "xy", startsAt: "" },
      ],
    };
    assert.notEqual(contentKey("ops", moved), contentKey("ops", joined));
  });

  it("tells alerts without fingerprints apart by their labels, in any key order", () => {
    const alert = (labels: Json) => ({
      status: "firing",
      labels,
      startsAt: "2026-12-01T12:00:00Z",
    });
    const payload = (alerts: unknown[]) => ({
      version: "4",
      status: "firing",
      groupKey: "g",
      alerts,
    });
    const one = payload([alert({ alertname: "A", instance: "x" })]);
    assert.equal(key(one), key(payload([alert({ instance: "x", alertname: "A" })])));
    assert.notEqual(key(one), key(payload([alert({ alertname: "A", instance: "y" })])));
  });
});

describe("fuzz: alert groups", () => {
  it("any JSON body: no throw, the one recogniser, a key independent of key order", () => {
    fc.assert(
      fc.property(jsonText, (body) => {
        const value: unknown = JSON.parse(body);
        assert.equal(alertSource(value) !== undefined, renderAlerts(value) !== undefined);
        const group = alertGroupOf(value);
        if (group === undefined) return;
        assert.match(contentKey("r", group), /^[0-9a-f]{64}$/);
        assert.equal(contentKey("r", groupOf(reordered(value))), contentKey("r", group));
      }),
      RUNS,
    );
  });
});

describe("threadKey", () => {
  it("is 32 hex digits, one per (route, groupKey), the same for every notification of the group", () => {
    const firing = groupOf(fixture("alertmanager-firing.json"));
    const resolved = groupOf(fixture("alertmanager-resolved.json"));
    const thread = threadKey("ops", firing.groupKey);
    assert.match(thread, /^[0-9a-f]{32}$/);
    assert.equal(threadKey("ops", resolved.groupKey), thread);
    assert.notEqual(threadKey("dev", firing.groupKey), thread);
    assert.notEqual(threadKey("ops", "{}:{}"), thread);
    assert.notEqual(threadKey("o", `ps${firing.groupKey}`), thread);
    assert.ok(!contentKey("ops", firing).startsWith(thread));
  });
});

describe("alertTime", () => {
  it("reads RFC 3339 times to the millisecond; Go's zero time is no time", () => {
    assert.equal(alertTime("2024-05-14T07:58:45.828Z"), Date.UTC(2024, 4, 14, 7, 58, 45, 828));
    assert.equal(
      alertTime("2024-05-14T09:51:03.157076+02:00"),
      Date.UTC(2024, 4, 14, 7, 51, 3, 157),
    );
    assert.equal(alertTime("2024-05-14T07:51:03-00:30"), Date.UTC(2024, 4, 14, 8, 21, 3));
    for (const none of ["0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "", "now", "2024-05-14"]) {
      assert.equal(alertTime(none), undefined, none);
    }
  });
});
