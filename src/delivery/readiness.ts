/**
 * What `/ready` reports of the sessions and rooms, and when their first attempts are over.
 */
import type { LeaseState } from "./leadership.ts";

/** A room as `/ready` shows it. */
export interface RoomReadiness {
  room: string;
  state: "offline" | "joining" | "joined" | "retrying";
  lastError: string | null;
  /** Something an operator should know that does not stop delivery (a room without stanza-ids). */
  note?: string;
}

/** What `/ready` reports. */
export interface Readiness {
  ready: boolean;
  /** With several gateways on one spool: per account, whether this one sends as it (issue 14). */
  leases?: LeaseState[];
  sessions: Array<{
    nick: string;
    online: boolean;
    lastError: string | null;
    rooms: RoomReadiness[];
  }>;
}

/**
 * True when every session's attempt has ended: up with each room joined or refused, or
 * down with a reason. Start-up and `check` wait for it (bounded) before they report.
 */
export function settled(r: Readiness): boolean {
  return r.sessions.every((s) =>
    s.online
      ? s.rooms.every((room) => room.state === "joined" || room.state === "retrying")
      : s.lastError !== null,
  );
}
