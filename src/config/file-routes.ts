/**
 * Builds the routes of a checked CONFIG_FILE: reads the token, password and secret files
 * it names (relative to the file's directory), compiles every template (a bad one stops
 * start-up), and makes sure each token selects exactly one route, across KNOWN_ROOMS too.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { compileTemplate } from "../core/render/template.ts";
import type { Format, HmacCheck, Route, Target, XmppAccount } from "../core/routes.ts";
import { type ConfigFile, type FileRoute, fileIssue } from "./file.ts";
import { nickProblem, parseKnownRooms, type SettingIssue } from "./known-rooms.ts";

/** Where routes come from: the KNOWN_ROOMS value and the checked CONFIG_FILE, if any. */
export interface RouteSources {
  readonly knownRooms: string | undefined;
  readonly file: ConfigFile | undefined;
  /** True when CONFIG_FILE is set, even if the file could not be used. */
  readonly fileGiven: boolean;
  /** The default format (MESSAGE_FORMAT). */
  readonly format: Format;
}

/**
 * Routes from KNOWN_ROOMS, then from the file. A token selects one route across both, and
 * at least one route must exist; every problem is collected.
 */
export function collectRoutes(src: RouteSources): { routes: Route[]; issues: SettingIssue[] } {
  const known =
    src.knownRooms === undefined
      ? { routes: [], issues: [] }
      : parseKnownRooms(src.knownRooms, src.format);
  const knownTokens = new Set(known.routes.flatMap((r) => r.tokens));
  const built =
    src.file === undefined
      ? { routes: [], issues: [] }
      : buildFileRoutes(src.file, src.format, knownTokens);
  const issues = [...known.issues, ...built.issues, ...accountIssues(known.routes, built.routes)];
  if (src.knownRooms === undefined && (src.file?.routes.length ?? 0) === 0) {
    if (!src.fileGiven) {
      issues.push({
        setting: "KNOWN_ROOMS",
        message:
          "is required, unless CONFIG_FILE defines routes: routes like token:room@conference.example.org:nick, space-separated",
      });
    } else if (src.file !== undefined) {
      issues.push(
        fileIssue(
          "",
          `${src.file.path} defines no routes and KNOWN_ROOMS is not set; at least one route is needed: add routes to the file or set KNOWN_ROOMS`,
        ),
      );
    }
  }
  return { routes: [...known.routes, ...built.routes], issues };
}

interface Context {
  readonly dir: string;
  readonly knownTokens: ReadonlySet<string>;
  readonly issues: SettingIssue[];
  /** Where each token was first seen, to name both places when one is used twice. */
  readonly seen: Map<string, string>;
}

/** Builds every route of `file`, collecting every problem instead of stopping at the first. */
function buildFileRoutes(
  file: ConfigFile,
  format: Format,
  knownTokens: ReadonlySet<string>,
): { routes: Route[]; issues: SettingIssue[] } {
  const ctx: Context = { dir: file.dir, knownTokens, issues: [], seen: new Map() };
  const routes = file.routes.map((r, i) => buildRoute(r, `routes[${i}]`, format, ctx));
  return { routes, issues: ctx.issues };
}

function buildRoute(r: FileRoute, at: string, format: Format, ctx: Context): Route {
  const template = templateOf(r, at, ctx);
  return {
    name: r.name,
    tokens: tokensOf(r, at, ctx),
    targets: targetsOf(r, at, ctx),
    format: r.format ?? format,
    ...(template && { template }),
    preformatted: r.preformatted,
    ...(!r.dedupe && { dedupe: false }),
    ...(r.rate_limit && {
      rateLimit: {
        perMinute: r.rate_limit.per_minute,
        burst: r.rate_limit.burst ?? r.rate_limit.per_minute,
      },
    }),
    ...(r.hmac && { hmac: hmacOf(r.hmac, `${at}.hmac`, ctx) }),
    ...(r.account && { account: accountOf(r.account, `${at}.account`, ctx) }),
  };
}

function accountOf(a: NonNullable<FileRoute["account"]>, at: string, ctx: Context): XmppAccount {
  const password =
    a.password_file !== undefined
      ? readSecret(a.password_file, `${at}.password_file`, ctx)
      : a.password;
  return { jid: a.jid.toLowerCase(), password: password ?? "" };
}

/**
 * A nick is sent from one account (a session is one nick of one account), an account has
 * one password, and direct messages come from JID_FROM_USER's own session.
 */
function accountIssues(known: readonly Route[], file: readonly Route[]): SettingIssue[] {
  const issues: SettingIssue[] = [];
  const nicks = new Map<string, { jid: string | undefined; where: string }>();
  for (const r of known)
    for (const t of r.targets)
      if (t.kind === "room") nicks.set(t.nick, { jid: undefined, where: "KNOWN_ROOMS" });
  const passwords = new Map<string, { password: string; where: string }>();
  file.forEach((r, i) => {
    const jid = r.account?.jid;
    if (r.account) {
      const first = passwords.get(r.account.jid);
      if (first === undefined)
        passwords.set(r.account.jid, {
          password: r.account.password,
          where: `routes[${i}].account`,
        });
      else if (first.password !== r.account.password)
        issues.push(
          fileIssue(
            `routes[${i}].account`,
            `${r.account.jid} has another password in ${first.where}; one account has one password`,
          ),
        );
    }
    r.targets.forEach((t, j) => {
      const where = `routes[${i}].targets[${j}]`;
      if (t.kind === "user") {
        if (jid !== undefined)
          issues.push(
            fileIssue(
              where,
              `direct messages are sent from JID_FROM_USER, not from the route's account ${jid}: move this user target to a route without account`,
            ),
          );
        return;
      }
      const first = nicks.get(t.nick);
      if (first === undefined) nicks.set(t.nick, { jid, where });
      else if (first.jid !== jid) {
        const from = (j: string | undefined) => j ?? "JID_FROM_USER";
        issues.push(
          fileIssue(
            where,
            `nick "${t.nick}" is sent from ${from(jid)} here and from ${from(first.jid)} in ${first.where}; a nick is sent from one account: use another nick`,
          ),
        );
      }
    });
  });
  return issues;
}

/** The text of `file` (relative to the config file), or undefined after an issue at `where`. */
function read(file: string, where: string, ctx: Context): string | undefined {
  const path = resolve(ctx.dir, file);
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? String(err);
    ctx.issues.push(fileIssue(where, `cannot read ${path} (${reason})`));
    return undefined;
  }
}

/** A password or secret from a file: its content without the final newline, never empty. */
function readSecret(file: string, where: string, ctx: Context): string {
  const text = read(file, where, ctx)?.replace(/\r?\n$/, "");
  if (text === "") ctx.issues.push(fileIssue(where, `${resolve(ctx.dir, file)} is empty`));
  return text ?? "";
}

function tokensOf(r: FileRoute, at: string, ctx: Context): string[] {
  const found: Array<{ token: string; where: string }> = [];
  if (r.token !== undefined) found.push({ token: r.token, where: `${at}.token` });
  r.tokens?.forEach((token, i) => {
    found.push({ token, where: `${at}.tokens[${i}]` });
  });
  if (r.token_file !== undefined) {
    const where = `${at}.token_file`;
    const text = read(r.token_file, where, ctx);
    text?.split(/\r?\n/).forEach((line, i) => {
      const token = line.trim();
      if (token !== "" && !token.startsWith("#"))
        found.push({ token, where: `${where} line ${i + 1}` });
    });
    if (text !== undefined && found.length === 0) {
      const path = resolve(ctx.dir, r.token_file);
      ctx.issues.push(
        fileIssue(where, `${path} holds no token; expected one per line (# starts a comment)`),
      );
    }
  }
  for (const { token, where } of found) checkToken(token, where, ctx);
  return found.map((f) => f.token);
}

/** A token selects exactly one route. The token is a secret: say where it is, never what. */
function checkToken(token: string, where: string, ctx: Context): void {
  if (/\s/.test(token)) {
    ctx.issues.push(fileIssue(where, "expected a token without spaces"));
    return;
  }
  if (ctx.knownTokens.has(token)) {
    ctx.issues.push(fileIssue(where, "is also a token in KNOWN_ROOMS; a token selects one route"));
    return;
  }
  const first = ctx.seen.get(token);
  if (first === undefined) ctx.seen.set(token, where);
  else
    ctx.issues.push(fileIssue(where, `is the same token as ${first}; a token selects one route`));
}

function templateOf(r: FileRoute, at: string, ctx: Context): Route["template"] {
  let source = r.template;
  let origin = `${at}.template`;
  if (r.template_file !== undefined) {
    source = read(r.template_file, `${at}.template_file`, ctx);
    origin = resolve(ctx.dir, r.template_file);
  }
  if (source === undefined) return undefined;
  try {
    return compileTemplate(source, origin);
  } catch (err) {
    // The message already starts with the template's origin: the file, or routes[i].template.
    const where = r.template_file === undefined ? "" : `${at}.template_file`;
    ctx.issues.push(fileIssue(where, (err as Error).message));
    return undefined;
  }
}

/** The route's targets; a nick XMPP refuses, or a target listed twice, is an issue. */
function targetsOf(r: FileRoute, at: string, ctx: Context): Target[] {
  const first = new Map<string, number>();
  return r.targets.map((t, i) => {
    const where = `${at}.targets[${i}]`;
    const problem = t.nick === undefined ? undefined : nickProblem(t.nick);
    if (problem) ctx.issues.push(fileIssue(`${where}.nick`, `the nick ${problem}`));
    const key = JSON.stringify([t.room?.toLowerCase(), t.nick, t.user?.toLowerCase()]);
    const seen = first.get(key);
    if (seen === undefined) first.set(key, i);
    else
      ctx.issues.push(
        fileIssue(
          where,
          `repeats ${at}.targets[${seen}]: every post would arrive twice; remove one`,
        ),
      );
    return targetOf(t, where, ctx);
  });
}

function targetOf(t: FileRoute["targets"][number], at: string, ctx: Context): Target {
  if (t.user !== undefined) return { kind: "user", jid: t.user.toLowerCase() };
  const password =
    t.password_file !== undefined
      ? readSecret(t.password_file, `${at}.password_file`, ctx)
      : t.password;
  return {
    kind: "room",
    room: (t.room ?? "").toLowerCase(),
    nick: t.nick ?? "",
    ...(password !== undefined && { password }),
  };
}

function hmacOf(h: NonNullable<FileRoute["hmac"]>, at: string, ctx: Context): HmacCheck {
  const secret =
    h.secret_file !== undefined ? readSecret(h.secret_file, `${at}.secret_file`, ctx) : h.secret;
  return {
    secret: secret ?? "",
    header: h.header,
    ...(h.timestamp_header !== undefined && { timestampHeader: h.timestamp_header }),
    maxSkewMs: h.max_skew,
  };
}
