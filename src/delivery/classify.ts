/**
 * What the facts a carrier reports mean: permanent or not, "slow down", a stream closed
 * because of what we sent. Pure functions; the loop and the supervisor act on them.
 */
import type { RoomFault, StanzaFault, StreamFault } from "./port.ts";

/** Text of a server asking us to send less, or less often. */
const SLOW_DOWN = /\brate|limit|slow|too many|flood|throttl|traffic/i;
/** Text of a server refusing something as too large. */
const TOO_BIG = /too (big|large|long)|size|max[-_ ]?(stanza|bytes)/i;

/**
 * RFC 6120 §8.3.2: `wait` means try again later; `cancel`, `auth` and `modify` mean this
 * stanza will not succeed as it is. Exceptions: a room's `not-acceptable` says we are no
 * longer an occupant (XEP-0410 §3), which a rejoin fixes; `remote-server-timeout` and
 * "slow down" refusals pass by themselves.
 */
export function isPermanentRefusal(f: StanzaFault): boolean {
  if (f.condition === "not-acceptable" || f.condition === "remote-server-timeout") return false;
  if (isSlowDown(f)) return false;
  return f.type === "cancel" || f.type === "auth" || f.type === "modify";
}

/**
 * A server asking us to slow down: `resource-constraint`, or `policy-violation` with
 * rate-limit words (Prosody's mod_muc_limits, ejabberd's shapers): back off, never
 * dead-letter.
 */
export function isSlowDown(f: StanzaFault): boolean {
  if (f.condition === "resource-constraint") return true;
  return f.condition === "policy-violation" && SLOW_DOWN.test(f.text ?? "");
}

/** Stream error conditions a server sends when it cannot take what we sent (RFC 6120 §4.9.3). */
const CHOKED = new Set([
  "policy-violation",
  "not-well-formed",
  "bad-format",
  "invalid-xml",
  "restricted-xml",
  "unsupported-encoding",
  "unsupported-stanza-type",
]);

/**
 * True when the server closed the stream because of something we sent: the oldest
 * unconfirmed message is the suspect (ejabberd closes with `policy-violation`, "XML
 * stanza is too big", and does not advertise its limit). Rate-limit words are excluded.
 */
export function isChokedClose(f: StreamFault): boolean {
  if (f.kind !== "stream-error" || f.condition === undefined || !CHOKED.has(f.condition)) {
    return false;
  }
  return !(f.condition === "policy-violation" && SLOW_DOWN.test(f.text) && !TOO_BIG.test(f.text));
}

/** True when the server's words say the stanza was too large. */
export function isSizeComplaint(f: StreamFault): boolean {
  return TOO_BIG.test(f.text) || f.condition === "policy-violation";
}

/** RFC 6120 §4.9.3.3: another stream of the same account replaced this one. */
export function isConflict(f: StreamFault): boolean {
  return f.kind === "stream-error" && f.condition === "conflict";
}

/**
 * Room refusals that will not go away by themselves (unless an operator acts): banned,
 * members-only, a password or a room that does not exist for us. A nick conflict is
 * usually our own ghost from before a restart, and passes.
 */
export function isPermanentRoomFault(f: RoomFault): boolean {
  if (f.kind === "banned" || f.kind === "members-only") return true;
  if (f.kind !== "refused" || !f.stanza) return false;
  if (f.stanza.condition === "conflict") return false;
  return isPermanentRefusal(f.stanza);
}
