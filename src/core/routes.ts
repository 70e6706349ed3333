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
}

/** Where a message goes. Direct messages to user JIDs will join this union. */
export type Target = RoomTarget;

/** One configured route: a name safe to log, its tokens, its targets and its format. */
export interface Route {
  /** Safe to log and to use as a metrics label; never the token. */
  readonly name: string;
  readonly tokens: readonly string[];
  readonly targets: readonly Target[];
  readonly format: Format;
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

/** A target's stable identity, used to tell sessions and rooms apart. */
export function targetKey(target: Target): string {
  return `${target.room}/${target.nick}`;
}
