/**
 * Configuration: the only code that reads the environment. It is parsed, defaulted,
 * validated and frozen once, at the edge; every problem is reported by setting name
 * with what would be valid, all at once.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { GatewayError } from "../core/errors.ts";
import { FORMATS, type Format, type RateLimit, type Route } from "../core/routes.ts";
import type { SpoolLimits } from "../spool/types.ts";
import { DAY_MS, durationMs } from "./duration.ts";
import type { Env } from "./env-file.ts";
import { collectRoutes } from "./file-routes.ts";
import { type WithConfigFile, withConfigFile } from "./file-settings.ts";
import type { SettingIssue } from "./known-rooms.ts";
import { trustProxySchema } from "./trust-proxy.ts";

/** pino's level names; Python's WARNING and CRITICAL are accepted for the old gateway's users. */
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";

/** How the XMPP client connection is secured. */
export type TlsMode = "starttls" | "direct";

/** The XMPP account and how to reach its server; shared by `serve`, `send` and `watch`. */
export interface XmppSettings {
  /** Bare JID the gateway logs in as. */
  readonly jid: string;
  readonly password: string;
  /** The JID's domain: the name the server certificate must match. */
  readonly domain: string;
  /** `XMPP_HOST` override; DNS SRV of the domain when undefined. */
  readonly host: string | undefined;
  /** `XMPP_PORT` override. */
  readonly port: number | undefined;
  readonly tls: TlsMode;
  /** PEM file the certificate may chain to, in addition to the system store. */
  readonly caFile: string | undefined;
  readonly logLevel: LogLevel;
}

/** Everything `serve` needs, frozen. */
export interface Config {
  readonly xmpp: XmppSettings;
  readonly http: {
    readonly host: string;
    readonly port: number;
    /** `TRUST_PROXY`: proxies whose X-Forwarded-For is believed (Fastify's `trustProxy`); empty: none. */
    readonly trustProxy: readonly string[];
  };
  readonly routes: readonly Route[];
  readonly format: Format;
  readonly logLevel: LogLevel;
  readonly dataDir: string;
  /** `SPOOL_URL`: a PostgreSQL spool; undefined: SQLite in `dataDir`. */
  readonly spoolUrl: string | undefined;
  /** How long a request waits for the room to confirm before replying 202. */
  readonly deliveryWaitMs: number;
  /** Capacity of the spool (`SPOOL_MAX_MESSAGES`, `SPOOL_MAX_BYTES`). */
  readonly spool: SpoolLimits;
  /** How long a message may wait for delivery before it is dead-lettered (`MESSAGE_TTL`). */
  readonly messageTtlMs: number;
  /** How long a post's dedupe key is remembered (`DEDUPE_WINDOW`); 0: no de-duplication. */
  readonly dedupeWindowMs: number;
  /** With a PostgreSQL spool: how long a sender's lease lasts unrenewed (`LEASE_TTL`). */
  readonly leaseTtlMs: number;
  /** How long SIGTERM waits for in-flight confirmations before closing the streams. */
  readonly shutdownGraceMs: number;
  /** Size limits: `MAX_MESSAGE_BYTES`, `MAX_MESSAGE_PARTS`, `MAX_BODY_BYTES`. */
  readonly limits: MessageLimits;
  /** One bucket over every post (`GLOBAL_RATE_LIMIT_*`); undefined when off. */
  readonly globalRateLimit: RateLimit | undefined;
}

/** How big a request and the messages made from it may be. */
export interface MessageLimits {
  /**
   * Escaped UTF-8 bytes of one message body; lowered at run time to what the server
   * advertises (XEP-0478). Longer texts are split into numbered parts.
   */
  readonly maxMessageBytes: number;
  /** At most this many parts per message; a text needing more is refused with 413. */
  readonly maxMessageParts: number;
  /** Largest HTTP request body accepted; larger ones get 413. */
  readonly maxBodyBytes: number;
}

/** What the `spool` command needs: where the spool is and its limits. */
export interface SpoolSettings {
  readonly dataDir: string;
  /** `SPOOL_URL`: a PostgreSQL spool; undefined: SQLite in `dataDir`. */
  readonly spoolUrl: string | undefined;
  readonly spool: SpoolLimits;
}

/** A configuration that cannot work; `issues` names each bad setting. */
export class ConfigError extends GatewayError {
  readonly issues: readonly SettingIssue[];
  constructor(issues: readonly SettingIssue[]) {
    const lines = issues.map((i) => `  ${i.setting}: ${i.message}`);
    super("CONFIG_INVALID", `invalid configuration:\n${lines.join("\n")}`);
    this.name = "ConfigError";
    this.issues = issues;
  }
}

/** Settings that hold secrets: each may instead be read from the file named by `<NAME>_FILE`. */
export const SECRET_SETTINGS = ["JID_FROM_PASS", "KNOWN_ROOMS", "SPOOL_URL"] as const;

const LEVELS: Record<string, LogLevel> = {
  trace: "trace",
  debug: "debug",
  info: "info",
  warn: "warn",
  warning: "warn",
  error: "error",
  fatal: "fatal",
  critical: "fatal",
  silent: "silent",
};

const BARE_JID = /^[^\s@/"&'<>:]+@[^\s@/]+$/;

const logLevel = (fallback: LogLevel) =>
  z
    .string()
    .transform((s) => s.trim().toLowerCase())
    .refine((s) => s in LEVELS, {
      error: `expected one of ${Object.keys(LEVELS).join(", ")} (any case)`,
    })
    .transform((s) => LEVELS[s] as LogLevel)
    .default(fallback);

const PORT_ERROR = { error: "expected a port number from 1 to 65535" };
const port = () =>
  z.coerce.number(PORT_ERROR).int(PORT_ERROR).min(1, PORT_ERROR).max(65535, PORT_ERROR);

const xmppSchema = z.object({
  JID_FROM_USER: z
    .string({ error: "is required: the account the gateway logs in as, e.g. bot@example.org" })
    .trim()
    .regex(BARE_JID, { error: "expected a bare JID like bot@example.org" }),
  JID_FROM_PASS: z.string({
    error: "is required: the password of JID_FROM_USER (or give JID_FROM_PASS_FILE)",
  }),
  XMPP_HOST: z.string().trim().optional(),
  XMPP_PORT: port().optional(),
  XMPP_TLS: z
    .string()
    .transform((s) => s.trim().toLowerCase())
    .pipe(z.enum(["starttls", "direct"], { error: "expected starttls (default) or direct" }))
    .default("starttls"),
  XMPP_CA_FILE: z.string().optional(),
  XMPP_LOG_LEVEL: logLevel("warn"),
});

const count = (what: string, fallback: number, example: string) => {
  const error = { error: `expected a whole number of ${what}, 1 or more, e.g. ${example}` };
  return z.coerce
    .number(error)
    .int(error)
    .min(1, error)
    .max(Number.MAX_SAFE_INTEGER, error)
    .default(fallback);
};

const MAX_TTL = { ms: 365 * DAY_MS, text: "365d" };

/** What a SPOOL_URL must look like, for its error message. */
const SPOOL_URL_FORM =
  "expected a PostgreSQL URL like postgres://user:password@db.example.org:5432/xmpp_msg_gw";

const spoolSchema = z.object({
  DATA_DIR: z.string().default("./data"),
  // A PostgreSQL spool instead of SQLite in DATA_DIR (issue 14); a secret (SPOOL_URL_FILE).
  SPOOL_URL: z
    .string()
    .trim()
    .regex(/^postgres(?:ql)?:\/\/[^/\s]+/i, { error: SPOOL_URL_FORM })
    .optional(),
  SPOOL_MAX_MESSAGES: count("messages", 100_000, "100000"),
  SPOOL_MAX_BYTES: count("bytes", 256 * 1024 * 1024, "268435456 (256 MiB)"),
});

/**
 * Message and request size limits. MAX_MESSAGE_BYTES defaults to 240000: Prosody's
 * default `c2s_stanza_size_limit` is 256 KiB (262144 bytes) for the whole stanza, and the
 * ~22 KiB left covers the stanza around the body (JIDs of up to 3071 bytes each, RFC 7622
 * §3.1; ids; namespaces) with room to spare. RFC 6120 §13.12 lets servers go as low as
 * 10000 bytes, so 1024 is the floor here; a server advertising its limit (XEP-0478)
 * lowers the effective value by itself.
 */
const limitsSchema = z.object({
  MAX_MESSAGE_BYTES: z.coerce
    .number({ error: "expected a whole number of bytes, 1024 or more, e.g. 240000" })
    .int({ error: "expected a whole number of bytes, 1024 or more, e.g. 240000" })
    .min(1024, { error: "expected a whole number of bytes, 1024 or more, e.g. 240000" })
    .max(Number.MAX_SAFE_INTEGER, { error: "expected a whole number of bytes, e.g. 240000" })
    .default(240_000),
  MAX_MESSAGE_PARTS: count("parts", 5, "5"),
  MAX_BODY_BYTES: count("bytes", 1024 * 1024, "1048576 (1 MiB)"),
});

const perMinute = (fallback: number) => {
  const error = { error: "expected posts per minute: a whole number, 0 for no limit" };
  return z.coerce
    .number(error)
    .int(error)
    .min(0, error)
    .max(1_000_000_000, error)
    .default(fallback);
};

const rateSchema = z.object({
  RATE_LIMIT_PER_MINUTE: perMinute(600),
  RATE_LIMIT_BURST: perMinute(0),
  GLOBAL_RATE_LIMIT_PER_MINUTE: perMinute(0),
  GLOBAL_RATE_LIMIT_BURST: perMinute(0),
});

/** A limit from settings: undefined when off (0); the burst defaults to a minute's worth. */
function rateLimit(perMinute: number, burst: number): RateLimit | undefined {
  return perMinute > 0 ? { perMinute, burst: burst > 0 ? burst : perMinute } : undefined;
}

const serveSchema = xmppSchema.extend(spoolSchema.shape).extend({
  ...limitsSchema.shape,
  ...rateSchema.shape,
  KNOWN_ROOMS: z.string().optional(),
  MESSAGE_FORMAT: z
    .string()
    .transform((s) => s.trim().toLowerCase())
    .pipe(
      z.enum(FORMATS as [Format, ...Format[]], { error: `expected one of ${FORMATS.join(", ")}` }),
    )
    .default("json"),
  LOG_LEVEL: logLevel("info"),
  HTTP_HOST: z.string().trim().default("0.0.0.0"),
  HTTP_PORT: z.coerce
    .number({ error: "expected a port number from 0 (any free port) to 65535" })
    .int({ error: "expected a port number from 0 (any free port) to 65535" })
    .min(0, { error: "expected a port number from 0 (any free port) to 65535" })
    .max(65535, { error: "expected a port number from 0 (any free port) to 65535" })
    .default(10080),
  TRUST_PROXY: trustProxySchema,
  MESSAGE_TTL: durationMs(MAX_TTL).default(DAY_MS),
  DEDUPE_WINDOW: durationMs(MAX_TTL, "no de-duplication").default(DAY_MS),
  // With SPOOL_URL: how long an account's sender lease lasts unrenewed (renewed every third).
  LEASE_TTL: durationMs({ ms: 600_000, text: "10m" }).default(10_000),
  SHUTDOWN_GRACE_MS: z.coerce
    .number({ error: "expected milliseconds, 0 or more" })
    .int({ error: "expected whole milliseconds" })
    .min(0, { error: "expected milliseconds, 0 or more" })
    .max(600_000, { error: "expected at most 600000 (ten minutes)" })
    .default(10_000),
  DELIVERY_WAIT_MS: z.coerce
    .number({ error: "expected milliseconds, 0 or more" })
    .int({ error: "expected whole milliseconds" })
    .min(0, { error: "expected milliseconds, 0 or more" })
    .max(60_000, { error: "expected at most 60000 (one minute)" })
    .default(3000),
  CONFIG_FILE: z.string().optional(),
});

/** Drops empty values (compose files often set `X=`) and resolves `<NAME>_FILE` secrets. */
export function resolveSecrets(
  env: Env,
  readFile: (path: string) => string = (p) => readFileSync(p, "utf8"),
): { env: Record<string, string>; issues: SettingIssue[] } {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== "") out[k] = v;
  const issues: SettingIssue[] = [];
  for (const name of SECRET_SETTINGS) {
    const file = out[`${name}_FILE`];
    if (file === undefined) continue;
    if (out[name] !== undefined) {
      issues.push({
        setting: `${name}_FILE`,
        message: `is set together with ${name}; set only one`,
      });
      continue;
    }
    try {
      out[name] = readFile(file).replace(/\r?\n$/, "");
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? String(err);
      issues.push({ setting: `${name}_FILE`, message: `cannot read ${file} (${reason})` });
    }
  }
  return { env: out, issues };
}

function zodIssues(error: z.ZodError, env: Record<string, string>): SettingIssue[] {
  return error.issues.map((i) => {
    const setting = String(i.path[0] ?? "?");
    const given = env[setting];
    // Echo what was given, so the operator sees the typo; never for secrets.
    const secret = (SECRET_SETTINGS as readonly string[]).includes(setting);
    const echo = given !== undefined && !secret ? ` (got "${given}")` : "";
    return { setting, message: `${i.message}${echo}` };
  });
}

function toXmpp(s: z.infer<typeof xmppSchema>): XmppSettings {
  return {
    jid: s.JID_FROM_USER.toLowerCase(),
    password: s.JID_FROM_PASS,
    domain: (s.JID_FROM_USER.split("@")[1] ?? "").toLowerCase(),
    host: s.XMPP_HOST,
    port: s.XMPP_PORT,
    tls: s.XMPP_TLS,
    caFile: s.XMPP_CA_FILE,
    logLevel: s.XMPP_LOG_LEVEL,
  };
}

/** Every setting CONFIG_FILE's `settings:` may give: those of the environment but CONFIG_FILE. */
function fileSettingNames(): string[] {
  const names = Object.keys(serveSchema.shape).filter((n) => n !== "CONFIG_FILE");
  return [...names, ...SECRET_SETTINGS.map((n) => `${n}_FILE`)];
}

/** The environment over CONFIG_FILE's settings, when CONFIG_FILE is set. */
function withFile(env: Env): WithConfigFile {
  return withConfigFile(env, fileSettingNames(), SECRET_SETTINGS);
}

/** Issues about the file first, then the rest, those from the file's settings named so. */
function allIssues(file: WithConfigFile, issues: readonly SettingIssue[]): SettingIssue[] {
  return [...file.issues, ...issues.map(file.relabel)];
}

/** Parses the XMPP settings alone (for `send` and `watch`); throws ConfigError. */
export function loadXmppSettings(env: Env): XmppSettings {
  const file = withFile(env);
  const { env: flat, issues: found } = resolveSecrets(file.env);
  const parsed = xmppSchema.safeParse(flat);
  if (!parsed.success) found.push(...zodIssues(parsed.error, flat));
  const issues = allIssues(file, found);
  if (issues.length > 0 || !parsed.success) throw new ConfigError(issues);
  return Object.freeze(toXmpp(parsed.data));
}

/** Parses, defaults, validates and freezes the whole `serve` configuration; throws ConfigError. */
export function loadConfig(env: Env): Config {
  const file = withFile(env);
  const { env: flat, issues: found } = resolveSecrets(file.env);
  const parsed = serveSchema.safeParse(flat);
  if (!parsed.success) found.push(...zodIssues(parsed.error, flat));
  const { routes, issues: routeIssues } = collectRoutes({
    knownRooms: flat.KNOWN_ROOMS,
    file: file.file,
    fileGiven: flat.CONFIG_FILE !== undefined,
    format: parsed.success ? parsed.data.MESSAGE_FORMAT : "json",
  });
  const issues = allIssues(file, [...found, ...routeIssues]);
  if (issues.length > 0 || !parsed.success) throw new ConfigError(issues);
  const s = parsed.data;
  // Routes without a rate limit of their own get the default one.
  const routeDefault = rateLimit(s.RATE_LIMIT_PER_MINUTE, s.RATE_LIMIT_BURST);
  return deepFreeze({
    xmpp: toXmpp(s),
    http: { host: s.HTTP_HOST, port: s.HTTP_PORT, trustProxy: s.TRUST_PROXY },
    routes: routes.map((r) =>
      r.rateLimit || !routeDefault ? r : { ...r, rateLimit: routeDefault },
    ),
    format: s.MESSAGE_FORMAT,
    logLevel: s.LOG_LEVEL,
    dataDir: s.DATA_DIR,
    spoolUrl: s.SPOOL_URL,
    deliveryWaitMs: s.DELIVERY_WAIT_MS,
    spool: { maxMessages: s.SPOOL_MAX_MESSAGES, maxBytes: s.SPOOL_MAX_BYTES },
    messageTtlMs: s.MESSAGE_TTL,
    dedupeWindowMs: s.DEDUPE_WINDOW,
    leaseTtlMs: s.LEASE_TTL,
    shutdownGraceMs: s.SHUTDOWN_GRACE_MS,
    limits: toLimits(s),
    globalRateLimit: rateLimit(s.GLOBAL_RATE_LIMIT_PER_MINUTE, s.GLOBAL_RATE_LIMIT_BURST),
  });
}

function toLimits(s: z.infer<typeof limitsSchema>): MessageLimits {
  return {
    maxMessageBytes: s.MAX_MESSAGE_BYTES,
    maxMessageParts: s.MAX_MESSAGE_PARTS,
    maxBodyBytes: s.MAX_BODY_BYTES,
  };
}

/** Parses the size limits alone (for `send`); throws ConfigError. */
export function loadMessageLimits(env: Env): MessageLimits {
  const file = withFile(env);
  const { env: flat } = resolveSecrets(file.env);
  const parsed = limitsSchema.safeParse(flat);
  const issues = allIssues(file, parsed.success ? [] : zodIssues(parsed.error, flat));
  if (issues.length > 0 || !parsed.success) throw new ConfigError(issues);
  return Object.freeze(toLimits(parsed.data));
}

/** Parses the spool settings alone (for the `spool` command); throws ConfigError. */
export function loadSpoolSettings(env: Env): SpoolSettings {
  const file = withFile(env);
  const { env: flat } = resolveSecrets(file.env);
  const parsed = spoolSchema.safeParse(flat);
  const issues = allIssues(file, parsed.success ? [] : zodIssues(parsed.error, flat));
  if (issues.length > 0 || !parsed.success) throw new ConfigError(issues);
  const s = parsed.data;
  return deepFreeze({
    dataDir: s.DATA_DIR,
    spoolUrl: s.SPOOL_URL,
    spool: { maxMessages: s.SPOOL_MAX_MESSAGES, maxBytes: s.SPOOL_MAX_BYTES },
  });
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
