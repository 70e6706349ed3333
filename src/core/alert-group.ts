/**
 * Alert groups as de-duplication and threads see them (issue 13). One Alertmanager (webhook
 * `version` "4") or Grafana unified alerting (`version` "1") payload is one notification of
 * one alert group; its `groupKey` names the group across notifications, and its content
 * (receiver, status and the alerts' fingerprints and times) tells a repeated notification,
 * from a second cluster member or a retry, from a new one.
 * References: https://prometheus.io/docs/alerting/latest/configuration/#webhook_config,
 * https://grafana.com/docs/grafana/latest/alerting/configure-notifications/manage-contact-points/integrations/webhook-notifier/
 */
import { createHash } from "node:crypto";

type Json = Record<string, unknown>;

/** Who sent an alert group payload. */
export type AlertSource = "Grafana" | "Alertmanager";

/** One alert of a group, as the content key reads it. */
export interface GroupAlert {
  /** The sender's fingerprint of the alert's labels; derived from the labels when it sent none. */
  readonly fingerprint: string;
  /** The alert's own status, as sent ("" when absent). */
  readonly status: string;
  /** RFC 3339 times as sent; a firing alert's `endsAt` is Go's zero time, "0001-01-01T00:00:00Z". */
  readonly startsAt: string;
  readonly endsAt: string;
  /** Its `alertname` label, "" when absent. */
  readonly name: string;
}

/** An Alertmanager or Grafana notification: one state of one alert group. */
export interface AlertGroup {
  readonly source: AlertSource;
  readonly receiver: string;
  /** The sender's key of the group, the same in every notification of it; never "". */
  readonly groupKey: string;
  /** "resolved" once every alert of the group resolved. */
  readonly status: "firing" | "resolved";
  readonly alerts: readonly GroupAlert[];
}

/**
 * Which sender's payload `value` is, or undefined when it is not an alert group: both send
 * `version`, `status` and `alerts[]`; Alertmanager (version "4") has `groupKey` or
 * `receiver`, Grafana (version "1") also `orgId`. The one recogniser of alert payloads.
 */
export function alertSource(value: unknown): AlertSource | undefined {
  if (!isRecord(value) || !Array.isArray(own(value, "alerts"))) return undefined;
  if (typeof own(value, "status") !== "string") return undefined;
  const marked = (...keys: string[]): boolean => keys.some((key) => Object.hasOwn(value, key));
  switch (own(value, "version")) {
    case "1":
      return marked("orgId", "receiver", "groupKey") ? "Grafana" : undefined;
    case "4":
      return marked("groupKey", "receiver") ? "Alertmanager" : undefined;
    default:
      return undefined;
  }
}

/**
 * The alert group `value` is a notification of, or undefined when it is not one, has no
 * `groupKey` (nothing ties it to other notifications) or a status other than firing/resolved.
 */
export function alertGroupOf(value: unknown): AlertGroup | undefined {
  const source = alertSource(value);
  if (source === undefined || !isRecord(value)) return undefined;
  const groupKey = string(value, "groupKey");
  const status = own(value, "status");
  if (groupKey === "" || (status !== "firing" && status !== "resolved")) return undefined;
  const alerts = (own(value, "alerts") as unknown[]).filter(isRecord).map(groupAlert);
  return { source, receiver: string(value, "receiver"), groupKey, status, alerts };
}

/** One alert's identity and times; entries that are not objects were skipped, as rendering does. */
function groupAlert(alert: Json): GroupAlert {
  const labels = own(alert, "labels");
  return {
    fingerprint: string(alert, "fingerprint") || labelFingerprint(labels),
    status: string(alert, "status"),
    startsAt: string(alert, "startsAt"),
    endsAt: string(alert, "endsAt"),
    name: isRecord(labels) ? string(labels, "alertname") : "",
  };
}

/**
 * The de-duplication key of a notification on `route`: sha256 (hex) of the route, receiver,
 * groupKey, status and the sorted (fingerprint, startsAt, endsAt) of its alerts. What differs
 * between cluster members for the same notification (`externalURL`, `truncatedAlerts`, key
 * order, a time's offset) is left out; times count by the instant they name.
 */
export function contentKey(route: string, g: AlertGroup): string {
  const alerts = g.alerts
    .map((a) => [a.fingerprint, canonicalTime(a.startsAt), canonicalTime(a.endsAt)])
    .sort(compareTuples);
  // JSON of an array: unambiguous, whatever the strings hold.
  return sha256(JSON.stringify(["content", route, g.receiver, g.groupKey, g.status, alerts]));
}

/** The thread of an alert group on `route`: 32 hex digits of sha256, the same for each notification; also its XMPP `<thread>` id. */
export function threadKey(route: string, groupKey: string): string {
  return sha256(JSON.stringify(["thread", route, groupKey])).slice(0, 32);
}

/**
 * An alert time (RFC 3339, as Go writes it) in ms since the epoch, or undefined when it is
 * unset (Go's zero time "0001-01-01T00:00:00Z", anything up to the epoch) or not a time.
 */
export function alertTime(text: string): number | undefined {
  const time = instant(text);
  return time === undefined || time.ms <= 0 ? undefined : time.ms;
}

// RFC 3339 §5.6 date-time, as Go's time.Time marshals (up to 9 fraction digits).
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:Z|([+-])(\d{2}):(\d{2}))$/;

type Six = [number, number, number, number, number, number];

/** A parsed RFC 3339 time: ms since the epoch, and the instant written in UTC with 9 fraction digits. */
function instant(text: string): { ms: number; canonical: string } | undefined {
  const m = RFC3339.exec(text);
  if (m === null) return undefined;
  const field = (i: number): number => Number(m[i] ?? 0);
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map(field) as Six;
  const [offsetHours, offsetMinutes] = [field(9), field(10)];
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) {
    return undefined;
  }
  if (offsetHours > 23 || offsetMinutes > 59) return undefined;
  const offset = (m[8] === "-" ? -1 : 1) * (offsetHours * 60 + offsetMinutes);
  const date = new Date(Date.UTC(2000, month - 1, day, hour, minute, second));
  date.setUTCFullYear(year); // Date.UTC reads the years 0–99 as 1900–1999
  if (date.getUTCDate() !== day) return undefined; // 31 April, 29 February of a common year
  const whole = date.getTime() - offset * 60_000;
  const fraction = (m[7] ?? "").padEnd(9, "0");
  return {
    ms: whole + Number(fraction.slice(0, 3)),
    canonical: `${new Date(whole).toISOString().slice(0, -5)}.${fraction}Z`,
  };
}

/** A time as the content key compares it: the instant when it is one, else the text as sent. */
function canonicalTime(text: string): string {
  // A canonical form is itself a time that reads back unchanged, so it never equals the raw
  // text of another value.
  return instant(text)?.canonical ?? text;
}

/** A stand-in fingerprint for an alert sent without one: a hash of its sorted string labels. */
function labelFingerprint(labels: unknown): string {
  const pairs = isRecord(labels)
    ? Object.keys(labels)
        .filter((key) => typeof own(labels, key) === "string")
        .sort()
        .map((key) => [key, own(labels, key)])
    : [];
  return sha256(JSON.stringify(["labels", pairs])).slice(0, 16);
}

function compareTuples(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i] as string;
    const y = b[i] as string;
    if (x !== y) return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

function sha256(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** A string member, "" when absent or not a string. */
function string(object: Json, key: string): string {
  const value = own(object, key);
  return typeof value === "string" ? value : "";
}

function isRecord(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** An own property only, so that keys like `constructor` never reach the prototype. */
function own(object: Json, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}
