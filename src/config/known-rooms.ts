/**
 * `KNOWN_ROOMS="token:room@conference.host:nick …"`: the old gateway's route syntax.
 * The same token may appear several times (one post, several rooms); the same room may
 * appear under several tokens and nicks. Entries are separated by whitespace, so a nick
 * with a space (and any route needing more) goes in CONFIG_FILE.
 */
import type { Format, RoomTarget, Route } from "../core/routes.ts";

/** One problem with the KNOWN_ROOMS value, in words an operator can act on. */
export interface SettingIssue {
  readonly setting: string;
  readonly message: string;
}

const EXAMPLE = "token:room@conference.example.org:nick";
const TWO = "token:room@conference.example.org:nick token2:room2@conference.example.org:nick2";
const BARE_JID = /^[^\s@/"&'<>:]+@[^\s@/]+$/;
/** RFC 7622 §3.4: a resourcepart (a room nick, XEP-0045 §7.2) is at most 1023 bytes. */
const MAX_NICK_BYTES = 1023;

/** Code points RFC 7622 §3.4 (PRECIS OpaqueString, RFC 8264 §4.2) disallows, by kind. */
const FORBIDDEN: ReadonlyArray<readonly [RegExp, string]> = [
  [/\p{Cc}/u, "a control character"],
  [/\p{Cs}/u, "a lone surrogate (not a character)"],
  [/\p{Co}/u, "a private-use character"],
  [/\p{Cn}/u, "a character Unicode does not assign"],
  [/\p{Default_Ignorable_Code_Point}/u, "an invisible (default-ignorable) character"],
];

/**
 * Why XMPP would refuse `nick` as a room nick (RFC 7622 §3.4), naming the first bad
 * character as U+XXXX; undefined when it is acceptable. Emptiness is the caller's check.
 */
export function nickProblem(nick: string): string | undefined {
  for (const ch of nick) {
    const kind = FORBIDDEN.find(([re]) => re.test(ch))?.[1];
    if (kind === undefined) continue;
    const code = (ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0");
    return `holds U+${code}, ${kind}; XMPP does not allow it in a nick (RFC 7622 §3.4)`;
  }
  const bytes = Buffer.byteLength(nick, "utf8");
  if (bytes > MAX_NICK_BYTES)
    return `is ${bytes} bytes long; XMPP allows at most ${MAX_NICK_BYTES} (RFC 7622 §3.4)`;
  return undefined;
}

/** Parses KNOWN_ROOMS into routes (one per distinct token), collecting every problem found. */
export function parseKnownRooms(
  value: string,
  format: Format,
  setting = "KNOWN_ROOMS",
): { routes: Route[]; issues: SettingIssue[] } {
  const issues: SettingIssue[] = [];
  const problem = (message: string) => issues.push({ setting, message });
  const byToken = new Map<string, { name: string; targets: RoomTarget[] }>();
  /** Entry number of each token + room + nick, to name a repeat's first place. */
  const seen = new Map<string, number>();
  /** The last entry with a nick, which words without a colon after it may belong to. */
  let nickOf: { entry: number; nick: string } | undefined;
  const entries = value.split(/\s+/).filter(Boolean);
  entries.forEach((entry, i) => {
    const where = `entry ${i + 1}`;
    // The token never appears in messages: it is a secret. Nor does a word that may be one.
    if (entry.includes(",")) {
      nickOf = undefined;
      problem(`${where} has a comma: separate entries with spaces, not commas (like "${TWO}")`);
      return;
    }
    const first = entry.indexOf(":");
    const second = first < 0 ? -1 : entry.indexOf(":", first + 1);
    if (first < 0) {
      // Entries split on whitespace: `t:room@conf:Alert Bot` leaves a colon-less "Bot".
      problem(
        nickOf === undefined
          ? `${where} has no room or nick; expected ${EXAMPLE}`
          : `${where} has no token or room (no ":"); if it is the rest of the nick ${JSON.stringify(nickOf.nick)} of entry ${nickOf.entry}: a nick cannot contain spaces in KNOWN_ROOMS, which separates entries with spaces; give that route in CONFIG_FILE instead`,
      );
      return;
    }
    nickOf = undefined;
    if (second < 0) {
      problem(`${where} has no nick; expected ${EXAMPLE}`);
      return;
    }
    const token = entry.slice(0, first);
    const room = entry.slice(first + 1, second).toLowerCase();
    const nick = entry.slice(second + 1);
    if (token === "") problem(`${where} has an empty token; expected ${EXAMPLE}`);
    if (!BARE_JID.test(room))
      problem(`${where} has room "${room}", which is not a room JID; expected ${EXAMPLE}`);
    const bad = nick === "" ? undefined : nickProblem(nick);
    if (nick === "") problem(`${where} has an empty nick; expected ${EXAMPLE}`);
    else if (bad !== undefined) problem(`${where} has nick ${JSON.stringify(nick)}, which ${bad}`);
    else nickOf = { entry: i + 1, nick };
    if (token === "" || !BARE_JID.test(room) || nick === "" || bad !== undefined) return;
    const key = JSON.stringify([token, room, nick]);
    const before = seen.get(key);
    if (before !== undefined) {
      problem(
        `${where} repeats entry ${before} (room ${room} as ${nick} with the same token): every post would arrive twice; remove one`,
      );
      return;
    }
    seen.set(key, i + 1);
    const target: RoomTarget = { kind: "room", room, nick };
    const existing = byToken.get(token);
    if (existing) existing.targets.push(target);
    else byToken.set(token, { name: `${room}/${nick}`, targets: [target] });
  });
  if (entries.length === 0) {
    problem(`is empty; expected one or more entries like ${EXAMPLE}`);
  }
  const routes = [...byToken].map(([token, { name, targets }]) => ({
    name,
    tokens: [token],
    targets,
    format,
  }));
  return { routes, issues };
}
