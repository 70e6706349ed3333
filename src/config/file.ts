/**
 * `CONFIG_FILE`: a YAML file for what environment variables cannot say (per-route formats,
 * templates, user targets, room passwords, rate limits, HMAC). It is read and checked
 * against one schema here; `file-routes.ts` then reads the files it names and builds the
 * routes. Every problem is reported at once, as a CONFIG_FILE issue naming its path in the
 * file (`routes[1].targets[0]: …`) and what would be valid. Secrets are never echoed.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import { FORMATS, type Format } from "../core/routes.ts";
import { DAY_MS, durationMs } from "./duration.ts";
import type { SettingIssue } from "./known-rooms.ts";

/** The setting every CONFIG_FILE issue is reported under. */
export const FILE_SETTING = "CONFIG_FILE";

const NAME = /^[A-Za-z0-9_.-]+$/;
const BARE_JID = /^[^\s@/"&'<>:]+@[^\s@/]+$/;
const HEADER = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Keys whose values are secrets: never echoed in an error. */
const SECRET_KEYS = new Set(["token", "tokens", "password", "secret"]);

/** A string schema whose errors say what is expected, and that it is required when missing. */
const text = (what: string, required = false) =>
  z
    .string({
      error: (iss) =>
        iss.input === undefined && required ? `is required: ${what}` : `expected ${what}`,
    })
    .min(1, { error: `expected ${what}, not empty` });

const whole = (what: string) =>
  z
    .number({ error: `expected a whole number of ${what}, 1 or more` })
    .int({ error: `expected a whole number of ${what}, 1 or more` })
    .min(1, { error: `expected a whole number of ${what}, 1 or more` });

/** A mapping that rejects keys it does not know, naming the ones it does. */
function mapping<T extends z.core.$ZodLooseShape>(shape: T, what: string) {
  const keys = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (iss) =>
      iss.code === "unrecognized_keys"
        ? `unknown key${iss.keys.length > 1 ? "s" : ""} ${iss.keys.map((k) => `"${k}"`).join(", ")}; expected ${keys}`
        : `expected ${what}`,
  });
}

/** Runs a cross-field rule even when some fields are already invalid, so all is reported at once. */
const always = { when: (p: { value: unknown }) => typeof p.value === "object" && p.value !== null };

const given = (...values: unknown[]) => values.filter((v) => v !== undefined).length;

const targetSchema = mapping(
  {
    room: text("a room JID like ops@conference.example.org")
      .regex(BARE_JID, { error: "expected a room JID like ops@conference.example.org" })
      .optional(),
    nick: text("a nickname").optional(),
    password: text("the room password (a string)").optional(),
    password_file: text("a file holding the room password").optional(),
    user: text("a user JID like alice@example.org")
      .regex(BARE_JID, { error: "expected a user JID like alice@example.org" })
      .optional(),
  },
  "a target: room + nick (+ password), or user",
).superRefine((t, ctx) => {
  const room = given(t.room, t.nick) === 2 && t.user === undefined;
  const user = t.user !== undefined && given(t.room, t.nick, t.password, t.password_file) === 0;
  if (!room && !user)
    ctx.addIssue({ code: "custom", message: "expected either room + nick, or user" });
  else if (t.password !== undefined && t.password_file !== undefined) {
    ctx.addIssue({ code: "custom", message: "set password or password_file, not both" });
  }
}, always);

const formatSchema = z.preprocess(
  (v) => (typeof v === "string" ? v.trim().toLowerCase() : v),
  z.enum(FORMATS as [Format, ...Format[]], { error: `expected one of ${FORMATS.join(", ")}` }),
);

const headerName = (what: string) =>
  text(what).regex(HEADER, { error: `expected ${what}: letters, digits and -` });

const hmacSchema = mapping(
  {
    secret: text("the HMAC secret (a string)").optional(),
    secret_file: text("a file holding the HMAC secret").optional(),
    header: headerName("an HTTP header name").default("X-Grafana-Alerting-Signature"),
    timestamp_header: headerName("an HTTP header name").optional(),
    max_skew: durationMs({ ms: DAY_MS, text: "24h" }).default(5 * 60_000),
  },
  "a mapping with secret or secret_file, header, timestamp_header, max_skew",
).superRefine((h, ctx) => {
  if (given(h.secret, h.secret_file) !== 1) {
    ctx.addIssue({ code: "custom", message: "expected exactly one of secret or secret_file" });
  }
}, always);

const accountSchema = mapping(
  {
    jid: text("an XMPP account JID like alerts@example.org", true).regex(BARE_JID, {
      error: "expected an XMPP account JID like alerts@example.org",
    }),
    password: text("the account's password (a string)").optional(),
    password_file: text("a file holding the account's password").optional(),
  },
  "an account: a mapping with jid and password or password_file",
).superRefine((a, ctx) => {
  if (given(a.password, a.password_file) !== 1) {
    ctx.addIssue({ code: "custom", message: "expected exactly one of password or password_file" });
  }
}, always);

const TOKEN = "a token (a string; quote it if YAML reads it as a number)";
const TARGETS = "a list of targets (room + nick, or user)";

const routeSchema = mapping(
  {
    name: text("a route name of letters, digits, _ . and - (it labels metrics)", true).regex(NAME, {
      error: "expected a route name of letters, digits, _ . and - (it labels metrics)",
    }),
    token: text(TOKEN).optional(),
    tokens: z
      .array(text(TOKEN), { error: "expected a list of tokens" })
      .min(1, { error: "expected a list of one or more tokens" })
      .optional(),
    token_file: text("a file holding tokens, one per line").optional(),
    format: formatSchema.optional(),
    template: text("a Liquid template").optional(),
    template_file: text("a file holding a Liquid template").optional(),
    preformatted: z.boolean({ error: "expected true or false" }).default(false),
    dedupe: z.boolean({ error: "expected true or false" }).default(true),
    rate_limit: mapping(
      { per_minute: whole("posts per minute"), burst: whole("posts").optional() },
      "a mapping with per_minute and burst",
    ).optional(),
    hmac: hmacSchema.optional(),
    account: accountSchema.optional(),
    targets: z
      .array(targetSchema, {
        error: (iss) => `${iss.input === undefined ? "is required:" : "expected"} ${TARGETS}`,
      })
      .min(1, { error: `expected ${TARGETS}, not empty` }),
  },
  "a route: a mapping with name, token, targets, …",
).superRefine((r, ctx) => {
  if (given(r.token, r.tokens, r.token_file) !== 1) {
    ctx.addIssue({
      code: "custom",
      message: "expected exactly one of token, tokens or token_file",
    });
  }
  if (r.template !== undefined && r.template_file !== undefined) {
    ctx.addIssue({ code: "custom", message: "set template or template_file, not both" });
  }
}, always);

/** A route as written in the file, checked but not yet built (files unread, templates uncompiled). */
export type FileRoute = z.output<typeof routeSchema>;

const settingValue = z
  .union([z.string(), z.number(), z.boolean(), z.null()], {
    error: "expected a string, number or boolean",
  })
  .transform((v) => (v === null ? undefined : String(v)));

function fileSchema(settingNames: readonly string[]) {
  const known = new Set(settingNames);
  return mapping(
    {
      settings: z
        .record(z.string(), settingValue, {
          error: "expected a mapping of setting names to values",
        })
        .superRefine((settings, ctx) => {
          for (const name of Object.keys(settings)) {
            if (known.has(name)) continue;
            ctx.addIssue({
              code: "custom",
              path: [name],
              message: `unknown setting; expected one of ${settingNames.join(", ")}`,
            });
          }
        }, always)
        .optional(),
      routes: z.array(routeSchema, { error: "expected a list of routes" }).optional(),
    },
    "a mapping with settings and/or routes",
  ).superRefine((file, ctx) => {
    const seen = new Map<string, number>();
    (Array.isArray(file.routes) ? file.routes : []).forEach((route: unknown, i) => {
      const name = (route as { name?: unknown } | null)?.name;
      if (typeof name !== "string") return;
      const first = seen.get(name);
      if (first === undefined) seen.set(name, i);
      else {
        ctx.addIssue({
          code: "custom",
          path: ["routes", i, "name"],
          message: `"${name}" is already the name of routes[${first}]; route names must be unique`,
        });
      }
    });
  }, always);
}

/** The checked CONFIG_FILE: where it is, the settings it gives and the routes it defines. */
export interface ConfigFile {
  readonly path: string;
  /** Directory that relative `*_file` paths in routes are resolved against. */
  readonly dir: string;
  readonly settings: Readonly<Record<string, string>>;
  readonly routes: readonly FileRoute[];
}

/** `routes[1].targets[0]` for a schema path. */
function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join("");
}

/** An issue with the file, reported under CONFIG_FILE. */
export function fileIssue(path: string, message: string): SettingIssue {
  return { setting: FILE_SETTING, message: path === "" ? message : `${path}: ${message}` };
}

function schemaIssue(issue: z.core.$ZodIssue): SettingIssue {
  const secret = issue.path.some((p) => typeof p === "string" && SECRET_KEYS.has(p));
  const input: unknown = issue.input;
  const scalar = ["string", "number", "boolean"].includes(typeof input);
  // Echo what was given, so the operator sees the typo; never for secrets.
  const echo =
    scalar && !secret && issue.code !== "custom" ? ` (got ${JSON.stringify(input)})` : "";
  return fileIssue(formatPath(issue.path), `${issue.message}${echo}`);
}

/**
 * Reads and checks the file at `path` (settings may only use `settingNames`); returns the
 * file, or undefined with the reasons it cannot be used.
 */
export function readConfigFile(
  path: string,
  settingNames: readonly string[],
): { file: ConfigFile | undefined; issues: SettingIssue[] } {
  let source: string;
  try {
    source = readFileSync(path, "utf8");
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? String(err);
    return { file: undefined, issues: [fileIssue("", `cannot read ${path} (${reason})`)] };
  }
  const lineCounter = new LineCounter();
  // Not prettyErrors: those quote the source line, which may hold a secret.
  const doc = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const issues = doc.errors.map((e) => {
      const { line, col } = lineCounter.linePos(e.pos[0]);
      return fileIssue("", `${path}: line ${line}, column ${col}: ${e.message}`);
    });
    return { file: undefined, issues };
  }
  let data: unknown;
  try {
    data = doc.toJS() ?? {};
  } catch (err) {
    // e.g. too many aliases: the yaml package's guard against exponential expansion.
    return { file: undefined, issues: [fileIssue("", `${path}: ${(err as Error).message}`)] };
  }
  const parsed = fileSchema(settingNames).safeParse(data, { reportInput: true });
  if (!parsed.success) return { file: undefined, issues: parsed.error.issues.map(schemaIssue) };
  const settings: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed.data.settings ?? {}))
    if (v !== undefined) settings[k] = v;
  const absolute = resolve(path);
  return {
    file: { path, dir: dirname(absolute), settings, routes: parsed.data.routes ?? [] },
    issues: [],
  };
}
