/**
 * How long the spool keeps what it remembers beside the queue (issue 13): dedupe claims
 * until their own `expiresAt`, thread anchors by the rules below. Both spools use these,
 * so they forget at the same moment.
 */

const DAY = 24 * 60 * 60 * 1000;

/** A resolved group's anchor is forgotten this long after it resolved: a late reply still finds it. */
export const ANCHOR_RESOLVED_TTL_MS = 7 * DAY;

/** Any anchor is forgotten this long after it was last recorded or resolved: a group gone quiet. */
export const ANCHOR_IDLE_TTL_MS = 30 * DAY;

/**
 * A send mark's logged raise is forgotten this long after it (or once the lane's queued
 * messages are all above it): the log stays small even while one message sits unconfirmed
 * and the lane goes on, and a rejoin without it reads from when its messages were accepted.
 */
export const MARK_RAISE_TTL_MS = 60 * 60 * 1000;

/** Expired claims and anchors are deleted inside a commit at most this often (they are ignored at once). */
export const SWEEP_INTERVAL_MS = 60 * 1000;

/** Whether an anchor last touched at `touchedAt` (and resolved at `resolvedAt`) is still kept at `now`. */
export function anchorLive(
  touchedAt: number,
  resolvedAt: number | undefined,
  now: number,
): boolean {
  return (
    touchedAt > now - ANCHOR_IDLE_TTL_MS &&
    (resolvedAt === undefined || resolvedAt > now - ANCHOR_RESOLVED_TTL_MS)
  );
}

/** Whether a dedupe claim that expires at `expiresAt` still holds at `now`. */
export function claimLive(expiresAt: number, now: number): boolean {
  return expiresAt > now;
}
