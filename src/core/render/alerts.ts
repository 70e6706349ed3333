/**
 * Alert groups for people: Grafana unified alerting (webhook `version` "1") and Prometheus
 * Alertmanager (webhook `version` "4") payloads summarised as chat text. One payload is
 * one alert group, so it becomes one message: a header with the firing and resolved
 * counts and the alert name, then one block per alert (firing first) with its name,
 * severity and instance, since when it fires or when it resolved and how long it fired,
 * summary, description and links. Times come from the payload only (no clock), in UTC.
 * References: https://prometheus.io/docs/alerting/latest/configuration/#webhook_config,
 * https://grafana.com/docs/grafana/latest/alerting/configure-notifications/manage-contact-points/integrations/webhook-notifier/
 */
import { type AlertSource, alertSource, alertTime } from "../alert-group.ts";

type Json = Record<string, unknown>;

/** Longest summary or description shown per alert, in UTF-16 code units, ellipsis included. */
const MAX_TEXT = 500;

/** Distinct alert names shown in the header of a group without a common one. */
const MAX_NAMES = 3;

/** Summarises a Grafana or Alertmanager webhook payload as one message per alert group, or undefined for any other value. */
export function renderAlerts(value: unknown): string[] | undefined {
  const source = alertSource(value);
  if (source === undefined || !isRecord(value)) return undefined;
  return [renderGroup(value, source)];
}

function renderGroup(group: Json, source: AlertSource): string {
  const alerts = (own(group, "alerts") as unknown[]).filter(isRecord);
  const resolved = alerts.filter((alert) => own(alert, "status") === "resolved");
  const firing = alerts.filter((alert) => own(alert, "status") !== "resolved");
  const mixed = firing.length > 0 && resolved.length > 0;
  const ordered = [...firing, ...resolved];
  const parts = [header(group, firing.length, resolved.length, ordered)];
  for (const alert of ordered) parts.push(renderAlert(alert, mixed));
  const truncated = own(group, "truncatedAlerts");
  if (typeof truncated === "number" && Number.isInteger(truncated) && truncated > 0) {
    const noun = truncated === 1 ? "alert" : "alerts";
    parts.push(`… and ${truncated} more ${noun} not shown (truncated by ${source})`);
  }
  return parts.join("\n\n");
}

/** `🔥 FIRING (2) · HighCPU`; both counts when the group is mixed; the payload's status when it lists no alert. */
function header(group: Json, firing: number, resolved: number, alerts: readonly Json[]): string {
  const counts: string[] = [];
  if (firing > 0) counts.push(`🔥 FIRING (${firing})`);
  if (resolved > 0) counts.push(`✅ RESOLVED (${resolved})`);
  if (counts.length === 0) {
    counts.push(own(group, "status") === "resolved" ? "✅ RESOLVED" : "🔥 FIRING");
  }
  const name = groupName(group, alerts);
  return name === "" ? counts.join(", ") : `${counts.join(", ")} · ${name}`;
}

/** The group's common alert name, else the distinct names of its alerts. */
function groupName(group: Json, alerts: readonly Json[]): string {
  const common =
    label(own(group, "commonLabels"), "alertname") || label(own(group, "groupLabels"), "alertname");
  if (common !== "") return common;
  const names = [
    ...new Set(alerts.map((alert) => label(own(alert, "labels"), "alertname"))),
  ].filter((name) => name !== "");
  return names.length > MAX_NAMES ? `${names.slice(0, MAX_NAMES).join(", ")}, …` : names.join(", ");
}

/** One alert: `name · severity · instance`, its times, summary, description, then its links, one per line. */
function renderAlert(alert: Json, mixed: boolean): string {
  const labels = own(alert, "labels");
  const annotations = own(alert, "annotations");
  const title = [
    label(labels, "alertname") || "Alert",
    label(labels, "severity"),
    label(labels, "instance"),
  ]
    .filter((part) => part !== "")
    .join(" · ");
  const status = own(alert, "status") === "resolved" ? "✅ " : "🔥 ";
  const lines = [mixed ? `${status}${title}` : title];
  const times = timeLine(alert);
  if (times !== "") lines.push(times);
  const summary = text(label(annotations, "summary"));
  const description = text(label(annotations, "description"));
  if (summary !== "") lines.push(summary);
  if (description !== "" && description !== summary) lines.push(description);
  const links = [
    ["Source", label(alert, "generatorURL")],
    ["Dashboard", label(alert, "dashboardURL")],
    ["Panel", label(alert, "panelURL")],
    ["Image", label(alert, "imageURL")],
    ["Runbook", label(annotations, "runbook_url")],
    ["Silence", label(alert, "silenceURL")],
  ];
  for (const [name, url] of links) {
    // Grafana sends "" for links it has not got, and sometimes a bare "?orgId=1".
    if (/^https?:\/\//i.test(url ?? "")) lines.push(`${name}: ${url}`);
  }
  return lines.join("\n");
}

/**
 * Since when a firing alert fires (`Firing since 2024-05-14 07:58 UTC`), or when a resolved
 * one resolved and how long it fired (`Resolved at 2024-05-14 08:13 UTC, fired for 15 min`);
 * what the payload does not say is left out ("" when it says nothing).
 */
function timeLine(alert: Json): string {
  const starts = alertTime(label(alert, "startsAt"));
  if (own(alert, "status") !== "resolved") {
    return starts === undefined ? "" : `Firing since ${minute(starts)}`;
  }
  const ends = alertTime(label(alert, "endsAt"));
  if (ends === undefined) return starts === undefined ? "" : `Resolved (started ${minute(starts)})`;
  const resolved = `Resolved at ${minute(ends)}`;
  return starts === undefined || ends < starts
    ? resolved
    : `${resolved}, fired for ${duration(ends - starts)}`;
}

/** `2024-05-14 07:58 UTC`: the minute a time falls in. */
function minute(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

/** `42 s`, `15 min`, `1 h 5 min`, `2 d 3 h`: whole units, rounded down, zero units left out. */
function duration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return "less than 1 s";
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  const parts: Array<[number, string]> = [
    [Math.floor(minutes / 1440), "d"],
    [Math.floor((minutes % 1440) / 60), "h"],
    [minutes % 60, "min"],
  ];
  return parts
    .filter(([n]) => n > 0)
    .map(([n, unit]) => `${n} ${unit}`)
    .join(" ");
}

/** Annotation text for a chat line: no blank lines (they separate alerts), capped with an ellipsis. */
function text(value: string): string {
  const compact = value.replace(/\n[ \t]*(?:\r?\n[ \t]*)+/g, "\n");
  if (compact.length <= MAX_TEXT) return compact;
  let cut = compact.slice(0, MAX_TEXT - 1);
  // Never leave half of a surrogate pair before the ellipsis.
  if (/[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut.trimEnd()}…`;
}

/** A trimmed string member of a label set, annotation set or alert; "" when absent or not a string. */
function label(object: unknown, key: string): string {
  if (!isRecord(object)) return "";
  const value = own(object, key);
  return typeof value === "string" ? value.trim() : "";
}

function isRecord(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** An own property only, so that keys like `constructor` never reach the prototype. */
function own(object: Json, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}
