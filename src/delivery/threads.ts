/**
 * Alert threads (issue 13): what a message of an alert group carries when it is sent, and
 * what its confirmation teaches. The first firing message of a group that a room confirms
 * with its XEP-0359 stanza-id becomes the group's anchor; later notifications of the group
 * are replies to it (XEP-0461, with a quoted fallback), all share one `<thread>`, and a
 * resolved group also reacts ✅ (XEP-0444) to the anchor. The anchors live in the spool.
 */
import type { Logger } from "pino";
import type { Spool, SpooledMessage } from "../spool/types.ts";
import type { SendExtras } from "./port.ts";
import type { Readiness } from "./readiness.ts";

/** What `/ready` says of a room that gives no stanza-ids. */
export const NO_STANZA_ID =
  "the room gives its messages no stanza-id (XEP-0359; usually its archive is off): alert notifications go out without replies and reactions";

/** The send-time decisions and confirmation bookkeeping of alert threads. */
export interface Threads {
  /** What `m` carries besides its body; "skip" for a reaction with nothing to react to. */
  extrasFor(m: SpooledMessage): Promise<SendExtras | "skip" | undefined>;
  /** The room confirmed `m` (its reflection), with the stanza-id it gave, if any. */
  confirmed(m: SpooledMessage, stanzaId: string | undefined): void;
  /** `/ready` with a note on each room that gives no stanza-ids. */
  annotate(r: Readiness): Readiness;
}

/** The first line of a body: what a reply quotes. */
function firstLine(body: string): string {
  const end = body.indexOf("\n");
  return end < 0 ? body : body.slice(0, end);
}

export function createThreads(deps: { spool: Spool; log: Logger; now: () => number }): Threads {
  const { spool, log } = deps;
  /** Rooms whose reflections came without a stanza-id (said once in the log). */
  const withoutIds = new Set<string>();

  const anchorOf = async (m: SpooledMessage) => {
    if (!m.thread) return undefined;
    try {
      return await spool.anchor(m.room, m.thread.group);
    } catch (err) {
      // A spool that cannot be read now: the message still goes out, plain.
      log.warn({ err, room: m.room }, "threads: the anchor could not be read");
      return undefined;
    }
  };

  return {
    async extrasFor(m) {
      if (!m.thread) return undefined;
      const thread = m.thread.group;
      const anchor = await anchorOf(m);
      if (m.kind === "reaction") {
        if (anchor) return { thread, reactTo: anchor.stanzaId };
        log.info(
          { id: m.id, room: m.room },
          "reaction not sent: the group has no first message on record",
        );
        return "skip";
      }
      // A group that resolved and fires again starts over: this message is its new anchor.
      if (!anchor || (anchor.resolvedAt !== undefined && m.thread.status === "firing")) {
        return { thread };
      }
      return { thread, reply: { to: anchor.occupant, id: anchor.stanzaId, quote: anchor.quote } };
    },
    confirmed(m, stanzaId) {
      if (!m.thread || m.kind === "reaction") return;
      const { group, status } = m.thread;
      const failed = (err: unknown) => log.warn({ err, room: m.room }, "threads: not recorded");
      if (status === "resolved") {
        spool.resolveAnchor(m.room, group, deps.now()).catch(failed);
        return;
      }
      if (stanzaId === undefined) {
        if (!withoutIds.has(m.room)) {
          withoutIds.add(m.room);
          log.warn({ room: m.room }, `${m.room}: ${NO_STANZA_ID}`);
        }
        return;
      }
      withoutIds.delete(m.room);
      const quote = firstLine(m.body);
      spool
        .recordAnchor(m.room, group, { stanzaId, occupant: `${m.room}/${m.nick}`, quote })
        .catch(failed);
    },
    annotate: (r) => ({
      ...r,
      sessions: r.sessions.map((session) => ({
        ...session,
        rooms: session.rooms.map((room) =>
          withoutIds.has(room.room) ? { ...room, note: NO_STANZA_ID } : room,
        ),
      })),
    }),
  };
}
