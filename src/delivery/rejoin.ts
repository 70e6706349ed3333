/**
 * The exactly-once check of a (re)join, the lane's side: what to look for in the room's
 * history and archive (the lane's unconfirmed messages), and settling what was found
 * there, so that it is not sent again. The same check runs after a reconnect, after a
 * crash of the gateway, and when a standby takes over the sending (issue 14).
 */
import type { Logger } from "pino";
import type { Lane, Spool, SpooledMessage } from "../spool/types.ts";
import type { LookFor } from "./port.ts";

/** Unconfirmed messages a rejoin looks for, at most, per lane. */
export const LOOK_FOR_LIMIT = 10_000;

export function createRejoinCheck(deps: {
  spool: Spool;
  log: Logger;
  /** Settled already (confirmed or dead), its spool write not yet committed. */
  isSettled(id: string): boolean;
  /** Records a message found in the room as delivered. */
  delivered(m: SpooledMessage): void;
}) {
  const { spool, log } = deps;
  return {
    /**
     * The lane's unconfirmed messages that a sender may have sent (at or below the lane's
     * send mark), for the join to look for; undefined: none. A message above the mark was
     * never handed to a session, so looking for it would only read the archive for nothing
     * (and a backlog's oldest message would make that read long).
     */
    async lookFor(lane: Lane): Promise<LookFor | undefined> {
      const [queued, upto] = await Promise.all([
        spool.pending(lane, LOOK_FOR_LIMIT, 0),
        spool.sentUpTo(lane),
      ]);
      const msgs = queued.filter((m) => m.seq <= upto && !deps.isSettled(m.id));
      const first = msgs[0];
      if (first === undefined) return undefined;
      // None of them went out before it was accepted, nor before the mark first covered
      // the oldest of them (the marks only grow): a backlog's old messages, claimed just
      // now, do not make the join read the archive from when they were accepted.
      const accepted = msgs.reduce((min, m) => Math.min(min, m.createdAt), first.createdAt);
      const covered = await spool.sentSince(lane, first.seq);
      return {
        ids: new Set(msgs.map((m) => m.id)),
        since: Math.max(accepted, covered ?? Number.NEGATIVE_INFINITY),
      };
    },
    /** Settles the lane's messages the room already has (`ids`), after `before`. */
    async found(lane: Lane, ids: readonly string[], before: Promise<void>): Promise<void> {
      const want = new Set(ids);
      await before;
      for (const m of await spool.pending(lane, LOOK_FOR_LIMIT, 0)) {
        if (!want.has(m.id)) continue;
        log.info(
          { id: m.id, room: lane.room },
          "found in the room history after a rejoin: not resent",
        );
        deps.delivered(m);
      }
    },
  };
}
