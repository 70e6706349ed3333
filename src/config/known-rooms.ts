/**
 * `KNOWN_ROOMS="token:room@conference.host:nick …"`: the old gateway's route syntax.
 * The same token may appear several times (one post, several rooms); the same room may
 * appear under several tokens and nicks.
 */
import type { Format, RoomTarget, Route } from "../core/routes.ts";

/** One problem with the KNOWN_ROOMS value, in words an operator can act on. */
export interface SettingIssue {
  readonly setting: string;
  readonly message: string;
}

const EXAMPLE = "token:room@conference.example.org:nick";
const BARE_JID = /^[^\s@/"&'<>:]+@[^\s@/]+$/;

/** Parses KNOWN_ROOMS into routes (one per distinct token), collecting every problem found. */
export function parseKnownRooms(
  value: string,
  format: Format,
  setting = "KNOWN_ROOMS",
): { routes: Route[]; issues: SettingIssue[] } {
  const issues: SettingIssue[] = [];
  const byToken = new Map<string, { name: string; targets: RoomTarget[] }>();
  const entries = value.split(/\s+/).filter(Boolean);
  entries.forEach((entry, i) => {
    const where = `entry ${i + 1}`;
    // The token never appears in messages: it is a secret.
    const first = entry.indexOf(":");
    const second = first < 0 ? -1 : entry.indexOf(":", first + 1);
    if (first < 0 || second < 0) {
      issues.push({ setting, message: `${where} has no nick; expected ${EXAMPLE}` });
      return;
    }
    const token = entry.slice(0, first);
    const room = entry.slice(first + 1, second).toLowerCase();
    const nick = entry.slice(second + 1);
    if (token === "")
      issues.push({ setting, message: `${where} has an empty token; expected ${EXAMPLE}` });
    if (!BARE_JID.test(room)) {
      issues.push({
        setting,
        message: `${where} has room "${room}", which is not a room JID; expected ${EXAMPLE}`,
      });
    }
    if (nick === "")
      issues.push({ setting, message: `${where} has an empty nick; expected ${EXAMPLE}` });
    if (token === "" || !BARE_JID.test(room) || nick === "") return;
    const target: RoomTarget = { kind: "room", room, nick };
    const existing = byToken.get(token);
    if (existing) existing.targets.push(target);
    else byToken.set(token, { name: `${room}/${nick}`, targets: [target] });
  });
  if (entries.length === 0) {
    issues.push({ setting, message: `is empty; expected one or more entries like ${EXAMPLE}` });
  }
  const routes = [...byToken].map(([token, { name, targets }]) => ({
    name,
    tokens: [token],
    targets,
    format,
  }));
  return { routes, issues };
}
