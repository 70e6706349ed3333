/**
 * What the fuzz tests (`fuzz*.test.ts`) share: fast-check arbitraries (text with the
 * characters that break things: controls, lone surrogates, non-characters, markup, emoji
 * sequences; JSON text with the numbers and keys JSON.parse loses or mishandles; payloads
 * shaped like Alertmanager's, Grafana's and Slack's, with any field now and then of the
 * wrong type, and alert times, fingerprints and group keys as their senders write them),
 * the "works, or a 4xx, in bounded time" check, and a way to ask Python.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fc from "fast-check";
import { toReply } from "../http/errors.ts";
import { GatewayError } from "./errors.ts";

/** Runs per property; `FUZZ_RUNS=5000 node --test src/core/fuzz*.test.ts` hunts longer. */
export const RUNS = { numRuns: Number(process.env.FUZZ_RUNS) || 300 };

/** Per call, generously: inputs here are small, and the machine may be busy. */
const CALL_MS = 1000;

/** Runs `fn`; it may throw only a GatewayError that is a 4xx reply. Returns its value, or the error. */
export function only4xx<T>(what: string, fn: () => T): T | GatewayError {
  const started = performance.now();
  try {
    return fn();
  } catch (err) {
    assert.ok(err instanceof GatewayError, `${what} threw ${String(err)}`);
    const { status } = toReply(err);
    assert.ok(status >= 400 && status < 500, `${what} gave ${status}: ${err.message}`);
    return err;
  } finally {
    const ms = performance.now() - started;
    assert.ok(ms < CALL_MS, `${what} took ${ms.toFixed(0)} ms`);
  }
}

/** Runs a Python script over one JSON-encoded input per line; its JSON lines back, or undefined without python3. */
export function python(script: string, inputs: readonly string[]): unknown[] | undefined {
  const run = spawnSync("python3", ["-c", script], {
    input: inputs.map((d) => JSON.stringify(d)).join("\n"),
    encoding: "utf8",
    env: { ...process.env, PYTHONUTF8: "1", PYTHONIOENCODING: "utf-8" },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (run.error !== undefined) return undefined;
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as unknown);
  assert.equal(lines.length, inputs.length);
  return lines;
}

const SPECIALS = [
  ...["\u0000", "\u0001", "\u0008", "\u000b", "\u000c", "\u001b", "\u001f", "\u007f", "\u0085"],
  ...["\t", "\n", "\r", "\r\n", " ", "\u00a0", "\u2028", "\u2029", "\ufeff", "\ufffd"],
  ...["\ufffe", "\uffff", "\ud800", "\udbff", "\udc00", "\udfff", "\ud83d", "\u{10ffff}"],
  ...["&", "&amp;", "&#0;", "<", ">", "]]>", '"', "'", "\\", "\\u0000", "%", "%zz", "%00"],
  ...["=", "+", "&", "{", "}", "[", "]", ",", ":", "*", "_", "~", "`", "```", "<@U1>"],
  ...["é", "e\u0301", "👍", "👍🏽", "👨‍👩‍👧", "🇫🇷", "ﷺ", "𝕏", "中", "\u0301", "\u200d"],
  ...["(1/2) ", "__proto__", "constructor", "Infinity", "NaN", "1e400", "0x1F"],
];

/** One unit of text: mostly characters chosen to hurt, some random code points and UTF-16 units. */
const unit = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...SPECIALS) },
  { weight: 3, arbitrary: fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 1 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
  },
);

/** Text of up to `maxLength` units. */
export const text = (maxLength = 200) => fc.string({ unit, maxLength });

/** Number literals, including those whose exact text only Python keeps. */
const numberText = fc.oneof(
  fc.integer().map(String),
  fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }).map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
  fc.constantFrom("1.0", "-0.0", "-0", "0e0", "1e3", "1E+2", "0.1e-5", "1e400", "-1e400"),
  fc.constantFrom("123456789012345678901234567890", "9007199254740993", "2.50", "5e-324"),
);

const KEYS = [
  ...["text", "attachments", "blocks", "type", "elements", "fields", "title", "value"],
  ...["pretext", "fallback", "title_link", "url", "name", "unicode", "range", "style"],
  ...["status", "alerts", "labels", "annotations", "version", "groupLabels", "startsAt"],
  ...["commonLabels", "commonAnnotations", "truncatedAlerts", "endsAt", "generatorURL"],
  ...["fingerprint", "groupKey", "receiver", "imageURL", "orgId"],
  ...["alertname", "severity", "summary", "description", "instance", "message", "values"],
  ...["__proto__", "constructor", "toString", "hasOwnProperty", "", "0", "1", "2", "-1", "01"],
];
const key = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...KEYS) }, text(12));

const WORDS = [
  ...["firing", "resolved", "4", "section", "header", "context", "divider", "rich_text"],
  ...["rich_text_section", "rich_text_list", "rich_text_preformatted", "rich_text_quote"],
  ...["mrkdwn", "plain_text", "link", "emoji", "user", "channel", "usergroup", "broadcast"],
  ...["date", "color", "here", "1f600", "1f1eb-1f1f7", "110000", "d800", "zz", "-1"],
];
const str = fc.oneof(fc.constantFrom(...WORDS), text(40)).map((s) => JSON.stringify(s));

const ws = fc.constantFrom("", "", " ", "\n", "\t", "\r\n  ");

const { json } = fc.letrec<{ json: string }>((tie) => ({
  json: fc.oneof(
    { depthSize: "small" },
    numberText,
    fc.constantFrom("true", "false", "null"),
    str,
    fc.array(tie("json"), { maxLength: 5 }).map((xs) => `[${xs.join(",")}]`),
    fc
      .array(fc.tuple(key, ws, tie("json")), { maxLength: 5 })
      .map((kv) => `{${kv.map(([k, w, v]) => `${JSON.stringify(k)}${w}:${w}${v}`).join(",")}}`),
  ),
}));

/** `thing`, or now and then any JSON value in its place. */
const or = (thing: fc.Arbitrary<string>) =>
  fc.oneof({ weight: 6, arbitrary: thing }, { weight: 1, arbitrary: json });
/** The members of an object, JSON text each, in order. */
type Members = Array<[string, string]>;
const join = (ms: Members) => `{${ms.map(([k, v]) => `${JSON.stringify(k)}: ${v}`)}}`;
/** Some of `fields` (each now and then of another type); `required` always. */
const members = (fields: Record<string, fc.Arbitrary<string>>, required: string[] = []) =>
  fc
    .record(
      Object.fromEntries(
        Object.entries(fields).map(([k, v]) => [k, required.includes(k) ? v : or(v)]),
      ),
      { requiredKeys: required },
    )
    .map((o): Members => Object.entries(o));
/** An object with some of `fields` (each now and then of another type); `required` always. */
const object = (fields: Record<string, fc.Arbitrary<string>>, required: string[] = []) =>
  members(fields, required).map(join);
/** `given`, each member now and then left out or of another type: for members that depend on each other. */
const spoiled = (given: Members): fc.Arbitrary<Members> =>
  fc
    .tuple(
      ...given.map(([k, v]) =>
        fc.oneof(
          { weight: 8, arbitrary: fc.constant<[string, string] | undefined>([k, v]) },
          { weight: 1, arbitrary: json.map((j): [string, string] => [k, j]) },
          { weight: 1, arbitrary: fc.constant(undefined) },
        ),
      ),
    )
    .map((ms) => ms.filter((m) => m !== undefined));
const list = (item: fc.Arbitrary<string>) =>
  fc.array(item, { maxLength: 4 }).map((xs) => `[${xs.join(", ")}]`);

const labels = fc
  .array(fc.tuple(key, str), { maxLength: 4 })
  .map((kv) => `{${kv.map(([k, v]) => `${JSON.stringify(k)}: ${v}`)}}`);
const url = fc.oneof(
  str,
  text(20).map((t) => JSON.stringify(`https://example.org/${t}`)),
);

/** Go's zero time.Time, as Alertmanager and Grafana send a firing alert's `endsAt`. */
const GO_ZERO_TIME = "0001-01-01T00:00:00Z";

/** An instant: ms since the epoch (2000–2100), the nanoseconds below them, the offset it is written in. */
interface Instant {
  readonly ms: number;
  readonly nanos: number;
  readonly offsetMinutes: number;
}
const instant: fc.Arbitrary<Instant> = fc.record({
  ms: fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2100, 0, 1) }),
  nanos: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 999_999 })),
  // Alertmanager writes UTC; Grafana the server's zone (the fixtures: +02:00).
  offsetMinutes: fc.constantFrom(0, 0, 0, 120, -30, 330, -720, 840),
});

/** An instant as Go's time.Time marshals to JSON (RFC3339Nano: trailing fraction zeros cut, "Z" for UTC). */
function goTime({ ms, nanos, offsetMinutes }: Instant): string {
  const local = new Date(ms + offsetMinutes * 60_000).toISOString().slice(0, 19);
  const digits = `${String(ms % 1000).padStart(3, "0")}${String(nanos).padStart(6, "0")}`;
  const fraction = digits.replace(/0+$/, "");
  const two = (n: number) => String(n).padStart(2, "0");
  const abs = Math.abs(offsetMinutes);
  const sign = offsetMinutes < 0 ? "-" : "+";
  const zone = offsetMinutes === 0 ? "Z" : `${sign}${two(Math.floor(abs / 60))}:${two(abs % 60)}`;
  return `${local}${fraction === "" ? "" : `.${fraction}`}${zone}`;
}

/**
 * An alert's status and times as its sender writes them: a firing alert's `endsAt` is Go's
 * zero time, a resolved one's a time after `startsAt` (a second to days later); now and then
 * a member is missing or of another type.
 */
const alertTimes = fc
  .record({
    status: fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom("firing", "resolved") },
      { weight: 1, arbitrary: fc.constantFrom(...WORDS) },
    ),
    starts: instant,
    firedMs: fc.oneof(
      fc.integer({ min: 1, max: 59_999 }),
      fc.integer({ min: 60_000, max: 3 * 86_400_000 }),
    ),
    ends: instant,
  })
  .chain(({ status, starts, firedMs, ends }) => {
    const endsAt =
      status === "resolved" ? goTime({ ...ends, ms: starts.ms + firedMs }) : GO_ZERO_TIME;
    return spoiled([
      ["status", JSON.stringify(status)],
      ["startsAt", JSON.stringify(goTime(starts))],
      ["endsAt", JSON.stringify(endsAt)],
    ]);
  });

/** 16 hex digits, as both senders write a fingerprint: a few fixed ones (alerts of a group share one now and then), any, or other text. */
const fingerprint = fc.oneof(
  fc.constantFrom('"1a30ba71cca2921f"', '"2b41cb82ddb3a32a"', '"c6eadffa33fcdf37"'),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((n) => `"${n.toString(16).padStart(16, "0")}"`),
  str,
);

/** A `groupKey` as Alertmanager (route matchers, then group labels) or Grafana writes it, or any text. */
const groupKey = fc.oneof(
  fc
    .tuple(
      fc.constantFrom(
        "{}",
        '{}/{severity="critical"}',
        '{}/{__grafana_autogenerated__="true"}/{__grafana_receiver__="xmpp"}',
      ),
      fc.array(fc.tuple(fc.constantFrom("alertname", "instance", "job"), text(8)), {
        maxLength: 2,
      }),
    )
    .map(([route, pairs]) => {
      const group = pairs.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ");
      return JSON.stringify(`${route}:{${group}}`);
    }),
  str,
);

/** One alert: its status and times, then labels, fingerprint and links (Grafana's `imageURL` among them). */
const alert = fc
  .tuple(
    alertTimes,
    members({
      labels,
      annotations: labels,
      fingerprint,
      generatorURL: url,
      dashboardURL: url,
      panelURL: url,
      imageURL: url,
      silenceURL: url,
    }),
  )
  .map(([times, rest]) => join([...times, ...rest]));

/** An Alertmanager (version "4") or Grafana unified alerting (version "1") webhook body. */
const alertGroup = object(
  {
    version: fc.constantFrom('"1"', '"4"'),
    status: fc.oneof(fc.constantFrom('"firing"', '"resolved"'), str),
    alerts: list(alert),
    receiver: str,
    groupKey,
    orgId: numberText,
    groupLabels: labels,
    commonLabels: labels,
    commonAnnotations: labels,
    truncatedAlerts: numberText,
  },
  ["version", "status", "alerts"],
);

const { element } = fc.letrec<{ element: string }>((tie) => ({
  element: object({
    type: str,
    text: str,
    url: str,
    name: str,
    unicode: str,
    range: str,
    style: object({ bold: fc.constantFrom("true", "false") }),
    elements: fc.oneof({ depthSize: "small" }, fc.constant("[]"), list(tie("element"))),
  }),
}));
const textObject = object({ type: str, text: str });
const blocks = list(
  object({ type: str, text: textObject, fields: list(textObject), elements: list(element) }),
);

/** A Slack incoming-webhook body: text, attachments, blocks. */
const slack = object({
  text: str,
  blocks,
  attachments: list(
    object({
      pretext: str,
      title: str,
      title_link: str,
      text: str,
      fallback: str,
      fields: list(object({ title: str, value: str })),
      blocks,
    }),
  ),
});

/** JSON text: any value, an alert group or a Slack body, with whitespace around. */
export const jsonText = fc
  .tuple(ws, fc.oneof(json, alertGroup, slack), ws)
  .map(([a, j, b]) => `${a}${j}${b}`);

/** Text that is almost JSON: a JSON text with a few units inserted, removed or replaced. */
export const brokenJson = fc
  .tuple(jsonText, fc.array(fc.tuple(fc.nat(), fc.nat(3), text(3)), { minLength: 1, maxLength: 3 }))
  .map(([j, edits]) =>
    edits.reduce((s, [at, cut, add]) => {
      const i = at % (s.length + 1);
      return s.slice(0, i) + add + s.slice(i + cut);
    }, j),
  );

/** A form body: pairs of percent-encoded or raw text, repeated keys, stray `&` and `=`. */
export const formText = fc
  .array(
    fc.tuple(fc.oneof(key, text(8)), fc.constantFrom("=", "", "=="), fc.oneof(str, text(20))),
    { maxLength: 12 },
  )
  .chain((pairs) =>
    fc
      .array(fc.boolean(), { minLength: pairs.length, maxLength: pairs.length })
      .map((enc) =>
        pairs
          .map(([k, eq, v], i) => (enc[i] ? `${encode(k)}${eq}${encode(v)}` : `${k}${eq}${v}`))
          .join("&"),
      ),
  );

function encode(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return s; // a lone surrogate cannot be percent-encoded as UTF-8: sent raw
  }
}
