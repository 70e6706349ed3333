/**
 * Routes: which targets a token posts to, and in which format. Tokens are secrets, so
 * lookup compares hashes in constant time and visits every route whatever matches.
 */
import { createHash, timingSafeEqual } from "node:crypto";

/**
 * Message formats a route can render a body with: `json` (Python's json.dumps, indent 2),
 * `yaml`, `text` (Slack-compatible text and attachments), `auto` (Grafana and
 * Alertmanager alerts summarised, Slack text, else YAML).
 */
export type Format = "json" | "yaml" | "text" | "auto";

/** The formats accepted in configuration, for error messages and validation. */
export const FORMATS: readonly Format[] = ["json", "yaml", "text", "auto"];

/** A multi-user chat room (XEP-0045) the gateway speaks in as `nick`. */
export interface RoomTarget {
  readonly kind: "room";
  /** Bare room JID, e.g. `ops@conference.example.org`. */
  readonly room: string;
  readonly nick: string;
  /** Room password (XEP-0045 §7.2.6), if the room has one. */
  readonly password?: string;
}

/** A user JID that gets direct messages (type `chat`). */
export interface UserTarget {
  readonly kind: "user";
  /** Bare JID, e.g. `alice@example.org`. */
  readonly jid: string;
}

/** Where a message goes. */
export type Target = RoomTarget | UserTarget;

/**
 * The nick of the session that sends direct messages. It is no room nick (no room nick
 * can be empty), so direct messages get a session of their own.
 */
export const DIRECT_NICK = "";

/** The ordering unit of a target: room (or user JID) and the nick it is sent as. */
export function laneOf(target: Target): { room: string; nick: string } {
  return target.kind === "room"
    ? { room: target.room, nick: target.nick }
    : { room: target.jid, nick: DIRECT_NICK };
}

/** A token bucket: `burst` posts at once, refilled at `perMinute`. */
export interface RateLimit {
  readonly perMinute: number;
  readonly burst: number;
}

/** Grafana's webhook signature check (HMAC-SHA256 of the body, or of `timestamp:body`). */
export interface HmacCheck {
  readonly secret: string;
  /** Header carrying the hex signature; `X-Grafana-Alerting-Signature` by default. */
  readonly header: string;
  /** Header carrying the timestamp that was signed with the body, if any. */
  readonly timestampHeader?: string;
  /** Largest accepted difference between that timestamp and now. */
  readonly maxSkewMs: number;
}

/**
 * An XMPP account of its own for a route (CONFIG_FILE `account`), on the same server as
 * JID_FROM_USER: its nicks' sessions count against its own session limit, not JID_FROM_USER's.
 */
export interface XmppAccount {
  /** Bare JID, lower-cased. */
  readonly jid: string;
  readonly password: string;
}

/** One configured route: a name safe to log, its tokens, its targets and its format. */
export interface Route {
  /** Safe to log and to use as a metrics label; never the token. */
  readonly name: string;
  readonly tokens: readonly string[];
  readonly targets: readonly Target[];
  readonly format: Format;
  /** A user template compiled at start-up; when set it replaces `format` for parsed bodies. */
  readonly template?: (value: unknown) => string;
  /** Wrap json/yaml output in an XEP-0393 preformatted block (```). */
  readonly preformatted?: boolean;
  /** False: repeated posts (Idempotency-Key, the same alert notification) are all sent. */
  readonly dedupe?: boolean;
  readonly rateLimit?: RateLimit;
  readonly hmac?: HmacCheck;
  /** The account this route's room targets are sent from; JID_FROM_USER when undefined. */
  readonly account?: XmppAccount;
}

/** Looks routes up by token. */
export interface RouteTable {
  readonly routes: readonly Route[];
  /** The route whose token equals `token`, compared in constant time, or undefined. */
  match(token: string): Route | undefined;
}

const digest = (s: string): Buffer => createHash("sha256").update(s, "utf8").digest();

/** Builds the lookup table; hashing first makes every comparison the same length. */
export function buildRouteTable(routes: readonly Route[]): RouteTable {
  const entries = routes.flatMap((route) => route.tokens.map((t) => ({ hash: digest(t), route })));
  return {
    routes,
    match(token) {
      const probe = digest(token);
      let found: Route | undefined;
      for (const entry of entries) {
        // No early exit: the time taken does not depend on which entry matched.
        if (timingSafeEqual(entry.hash, probe) && found === undefined) found = entry.route;
      }
      return found;
    },
  };
}

/** A route table whose routes a configuration reload can replace while requests run. */
export interface SwappableRouteTable extends RouteTable {
  swap(routes: readonly Route[]): void;
}

/** Creates a route table that `swap` replaces atomically (one reference assignment). */
export function createSwappableRouteTable(routes: readonly Route[]): SwappableRouteTable {
  let current = buildRouteTable(routes);
  return {
    get routes() {
      return current.routes;
    },
    match: (token) => current.match(token),
    swap(next) {
      current = buildRouteTable(next);
    },
  };
}

/** The nicks the routes send as, each with the rooms it speaks in (direct messages: none). */
export function topologyOf(routes: readonly Route[]): Map<string, Set<string>> {
  const byNick = new Map<string, Set<string>>();
  for (const route of routes) {
    for (const t of route.targets) {
      const { room, nick } = laneOf(t);
      const rooms = byNick.get(nick) ?? new Set<string>();
      if (t.kind === "room") rooms.add(room);
      byNick.set(nick, rooms);
    }
  }
  return byNick;
}

/** Room passwords (XEP-0045 §7.2.6) of the routes, by room JID. */
export function roomPasswords(routes: readonly Route[]): Map<string, string> {
  const passwords = new Map<string, string>();
  for (const route of routes) {
    for (const t of route.targets) {
      if (t.kind === "room" && t.password !== undefined) passwords.set(t.room, t.password);
    }
  }
  return passwords;
}

/**
 * The nicks sent from an account of their own, with that account. A nick belongs to one
 * account (the configuration checks it), so the nick alone still names a sender.
 */
export function accountsOf(routes: readonly Route[]): Map<string, XmppAccount> {
  const byNick = new Map<string, XmppAccount>();
  for (const route of routes) {
    if (route.account === undefined) continue;
    for (const t of route.targets) if (t.kind === "room") byNick.set(t.nick, route.account);
  }
  return byNick;
}
