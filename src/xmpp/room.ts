/**
 * One room on one stream (XEP-0045): the join (self-presence, unlocking a new room,
 * the history until the subject, the archive check of what is already there) and what
 * the room says about us afterwards (kicks, bans, self-ping). It reports facts only;
 * when to join again is the delivery loop's decision.
 */
import type { Element } from "@xmpp/xml";
import type { Logger } from "pino";
import type { Clock, Timer } from "../core/clock.ts";
import type { LookFor, RoomFault } from "../delivery/port.ts";
import { type ArchiveStream, findInArchive } from "./archive.ts";
import {
  instantRoomIq,
  joinPresence,
  messageIds,
  mucStatusCodes,
  NS_MUC_USER,
  selfPingIq,
  stanzaError,
} from "./stanzas.ts";
import type { Stream } from "./stream.ts";

/** Longest wait for the room subject, which ends the history (XEP-0045 §7.2.15). */
export const SUBJECT_WAIT_MS = 3000;

/** A join in progress or done, on one stream. */
export interface RoomJoin {
  readonly room: string;
  readonly joined: boolean;
  onPresence(presence: Element, fromNick: string): void;
  /** History and subject while joining; true when the message was consumed. */
  onGroupchat(message: Element, fromNick: string): boolean;
  /** We learned we are not an occupant (an error reply said so). */
  notOccupant(text: string): void;
  /** Stops its timers; reports nothing more. */
  end(): void;
}

/** The archive reader's view of a stream. */
export function archiveStream(stream: Stream): ArchiveStream {
  return {
    request: (iq, ms) => stream.request(iq, ms),
    onStanza(listener) {
      stream.on("stanza", listener);
      return () => {
        stream.off("stanza", listener);
      };
    },
  };
}

/** Starts joining `room` as `nick` on `stream`; `joined` or `left` is reported once each. */
export function joinRoom(deps: {
  room: string;
  nick: string;
  password: string | undefined;
  lookFor: LookFor | undefined;
  stream: Stream;
  clock: Clock;
  log: Logger;
  /** How often a joined room is self-pinged (XEP-0410); 0 turns it off. */
  selfPingMs: number;
  joined(found: readonly string[]): void;
  left(fault: RoomFault): void;
}): RoomJoin {
  const { room, nick, stream, clock, log, lookFor } = deps;
  let phase: "presence" | "history" | "archive" | "joined" | "over" = "presence";
  const found = new Set<string>();
  let subjectTimer: Timer | undefined;
  let pingTimer: Timer | undefined;

  const over = (fault: RoomFault) => {
    if (phase === "over") return;
    phase = "over";
    clock.clearTimeout(subjectTimer);
    clock.clearTimeout(pingTimer);
    deps.left(fault);
  };

  const finish = () => {
    if (phase === "over" || phase === "joined") return;
    phase = "joined";
    deps.joined([...found]);
    schedulePing();
  };

  /** The history is read; a restarted server forgets it but keeps the archive (XEP-0313). */
  const historyDone = () => {
    if (phase !== "history") return;
    clock.clearTimeout(subjectTimer);
    const missing = new Set([...(lookFor?.ids ?? [])].filter((id) => !found.has(id)));
    if (missing.size === 0) {
      finish();
      return;
    }
    phase = "archive";
    findInArchive(archiveStream(stream), room, nick, missing, {
      start: new Date((lookFor?.since ?? clock.now()) - 60_000),
      clock,
    })
      .then((r) => {
        for (const id of r.found) found.add(id);
        const unread = missing.size - r.found.length;
        if (!r.complete && unread > 0) {
          log.warn(
            { room, notFound: unread },
            `the archive check stopped before the end of ${room}'s archive (its time ran out, or a page failed): ${unread} unconfirmed message(s) not found in what was read will be sent again, and may arrive twice`,
          );
        }
      })
      .catch((err) =>
        log.debug({ room, err: String(err) }, "no archive to check; the history had to do"),
      )
      .finally(finish);
  };

  const schedulePing = () => {
    if (deps.selfPingMs <= 0 || phase !== "joined") return;
    pingTimer = clock.setTimeout(() => {
      stream.request(selfPingIq(room, nick), 20_000).then(schedulePing, (err) => {
        const condition = (err as { condition?: string }).condition;
        // XEP-0410 §3.1: these say we are not joined; other errors say we are.
        if (condition === "not-acceptable" || condition === "item-not-found") {
          over({ kind: "not-occupant", text: `self-ping answered ${condition}` });
        } else schedulePing();
      });
    }, deps.selfPingMs);
  };

  // Ask for the history only when some of our messages may already be in it.
  const history =
    lookFor && lookFor.ids.size > 0
      ? {
          since: new Date(lookFor.since - 60_000),
          maxstanzas: Math.min(lookFor.ids.size + 20, 1000),
        }
      : undefined;
  stream.send(joinPresence(room, nick, { history, password: deps.password }));

  return {
    room,
    get joined() {
      return phase === "joined";
    },
    onPresence(p, fromNick) {
      if (fromNick !== nick || phase === "over") return;
      if (p.attrs.type === "error") {
        const e = stanzaError(p);
        over({ kind: "refused", stanza: e, text: `${e.condition}${e.text ? ` (${e.text})` : ""}` });
        return;
      }
      const codes = mucStatusCodes(p);
      if (!codes.includes(110)) return; // 110 marks presence about ourselves
      if (p.attrs.type === "unavailable") {
        const destroyed = p.getChild("x", NS_MUC_USER)?.getChild("destroy") !== undefined;
        // XEP-0045 §15.6: 307 kicked, 301 banned, 321/322 affiliation change, 332 shutdown.
        if (codes.includes(307)) over({ kind: "kicked", text: "kicked" });
        else if (codes.includes(301)) over({ kind: "banned", text: "banned from the room" });
        else if (codes.includes(321) || codes.includes(322))
          over({
            kind: "members-only",
            text: "the room became members-only (registration-required)",
          });
        else if (destroyed) over({ kind: "destroyed", text: "the room was destroyed" });
        else if (codes.includes(332))
          over({ kind: "shutdown", text: "the room service shut down" });
        else over({ kind: "removed", text: "removed from the room" });
        return;
      }
      if (phase !== "presence") return;
      if (codes.includes(201)) {
        // Prosody locks a new room until its owner accepts the configuration (§10.1.2).
        stream
          .request(instantRoomIq(room))
          .catch((err) => log.warn({ room, err: String(err) }, "instant room form refused"));
      }
      // The history (if asked for) and then the subject follow the self-presence.
      phase = "history";
      subjectTimer = clock.setTimeout(historyDone, SUBJECT_WAIT_MS);
    },
    onGroupchat(m, fromNick) {
      if (phase !== "history") return false;
      if (m.getChild("subject") && m.getChild("body") === undefined) {
        historyDone();
        return true;
      }
      if (!m.getChild("delay", "urn:xmpp:delay")) return false; // a live message
      if (fromNick === nick)
        for (const id of messageIds(m)) if (lookFor?.ids.has(id)) found.add(id);
      return true;
    },
    notOccupant(text) {
      over({ kind: "not-occupant", text });
    },
    end() {
      phase = "over";
      clock.clearTimeout(subjectTimer);
      clock.clearTimeout(pingTimer);
    },
  };
}
