/**
 * One room of a session (XEP-0045): joining, the dedupe check in the room history,
 * rejoining after kicks, bans, destroyed rooms and silent drop-outs (XEP-0410 self-ping),
 * with backoff instead of tight loops.
 */
import type { Element } from "@xmpp/xml";
import type { Logger } from "pino";
import { DeliveryError, isPermanentStanzaError } from "../core/errors.ts";
import { readArchive } from "./archive.ts";
import type { Connection } from "./connection.ts";
import {
  instantRoomIq,
  joinPresence,
  messageIds,
  mucStatusCodes,
  NS_MUC_USER,
  selfPingIq,
  stanzaError,
} from "./stanzas.ts";

/** Where a room stands: `joined` is the only phase in which messages go out. */
export type RoomPhase = "joining" | "joined" | "retrying" | "offline" | "closed";

/** A room's state as shown by `/ready`. */
export interface RoomState {
  readonly room: string;
  phase: RoomPhase;
  /** Why the room is not joined, in words an operator can act on. */
  lastError: string | undefined;
  /** True when the last refusal will not go away by itself (ban, members-only, …). */
  permanent: boolean;
  /** True after one refusal that looks permanent, until the next attempt confirms it. */
  suspect: boolean;
}

/** The room as its session drives it. */
export interface Room {
  readonly jid: string;
  readonly state: RoomState;
  /** A new stream: join from scratch. */
  rejoin(): void;
  /** The stream resumed (XEP-0198): still joined if we were. */
  resumed(): void;
  /** The stream went down: nothing can be sent until `rejoin` or `resumed`. */
  paused(): void;
  /** We found out we are no longer an occupant. */
  lost(reason: string): void;
  /** While waiting to retry a refused join: try now instead of at the end of the backoff. */
  retryNow(): void;
  onPresence(presence: Element, fromNick: string): void;
  /** Handles history and subject while joining; true when the message was consumed. */
  onGroupchat(message: Element, fromNick: string): boolean;
  /** Resolves when the current join succeeds, rejects when it is refused. */
  joined(): Promise<void>;
  close(): void;
}

/** Longest wait for the room subject, which ends the history (XEP-0045 §7.2.15). */
const SUBJECT_WAIT_MS = 3000;

/** Creates the room driver. */
export function createRoom(deps: {
  room: string;
  nick: string;
  password?: string;
  conn: Connection;
  log: Logger;
  selfPingMs: number;
  retryDelay: (attempt: number) => number;
  unconfirmed: () => { ids: ReadonlySet<string>; since: number } | undefined;
  isStopping: () => boolean;
  onReady: () => void;
  onDown: (err: DeliveryError) => void;
  onConfirmed: (id: string) => void;
}): Room {
  const { room, nick, conn, log } = deps;
  const state: RoomState = {
    room,
    phase: "offline",
    lastError: undefined,
    permanent: false,
    suspect: false,
  };
  let attempt = 0;
  let refusedBefore: string | undefined;
  let wasJoined = false;
  let inHistory = false;
  let historyIds: ReadonlySet<string> = new Set();
  let historySince = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  let subjectTimer: NodeJS.Timeout | undefined;
  let pingTimer: NodeJS.Timeout | undefined;
  let waiters: Array<{ resolve(): void; reject(e: Error): void }> = [];

  const archiveStream = {
    request: (iq: Element, ms?: number) => conn.request(iq, ms),
    onStanza(listener: (stanza: Element) => void) {
      conn.on("stanza", listener);
      return () => {
        conn.off("stanza", listener);
      };
    },
  };

  const clearTimers = () => {
    clearTimeout(retryTimer);
    clearTimeout(subjectTimer);
    clearTimeout(pingTimer);
  };

  function join(): void {
    clearTimers();
    state.phase = "joining";
    const un = deps.unconfirmed();
    historyIds = un?.ids ?? new Set();
    historySince = un?.since ?? 0;
    inHistory = false;
    // Ask for the history only when some of our messages may already be in it.
    const history =
      historyIds.size > 0 && un
        ? { since: new Date(un.since - 60_000), maxstanzas: Math.min(historyIds.size + 20, 1000) }
        : undefined;
    conn
      .send(joinPresence(room, nick, { history, password: deps.password }))
      .catch((err) => fail(`join not sent: ${err.message}`, false, "connection-lost"));
  }

  /**
   * The history has been read. A restarted server forgets the history but keeps the
   * archive (XEP-0313): ask it too about what is still unconfirmed, then go.
   */
  function historyDone(): void {
    clearTimeout(subjectTimer);
    inHistory = false;
    const ids = historyIds;
    if (ids.size === 0) {
      finishJoin();
      return;
    }
    readArchive(archiveStream, room, {
      start: new Date(historySince - 60_000),
      maxPages: 10,
      timeoutMs: 5000,
    })
      .then((list) => {
        for (const a of list)
          if (a.nick === nick && a.id !== undefined && ids.has(a.id)) deps.onConfirmed(a.id);
      })
      .catch((err) =>
        log.debug({ room, err: String(err) }, "no archive to check; the history had to do"),
      )
      .finally(() => {
        if (state.phase === "joining") finishJoin();
      });
  }

  function finishJoin(): void {
    clearTimeout(subjectTimer);
    inHistory = false;
    state.phase = "joined";
    state.lastError = undefined;
    state.permanent = false;
    state.suspect = false;
    refusedBefore = undefined;
    attempt = 0;
    log.info({ room, nick }, `joined ${room} as ${nick}`);
    for (const w of waiters) w.resolve();
    waiters = [];
    schedulePing();
    deps.onReady();
  }

  function fail(reason: string, permanent: boolean, condition: string, delayMs?: number): void {
    clearTimers();
    state.phase = "retrying";
    state.lastError = reason;
    // A refusal counts as permanent only when the next attempt gets it again: a server
    // shutting down answers item-not-found for a moment, which must not dead-letter anything.
    state.permanent = permanent && refusedBefore === condition;
    refusedBefore = permanent ? condition : undefined;
    state.suspect = permanent && !state.permanent;
    const err = new DeliveryError(`${room} as ${nick}: ${reason}`, {
      permanent: state.permanent,
      condition,
    });
    for (const w of waiters) w.reject(err);
    waiters = [];
    deps.onDown(err);
    if (deps.isStopping()) return;
    const delay = delayMs ?? deps.retryDelay(attempt++);
    (permanent ? log.error : log.warn).call(
      log,
      { room, nick, condition, retryInMs: delay },
      `not in ${room} as ${nick}: ${reason}; retrying in ${delay} ms`,
    );
    retryTimer = setTimeout(() => {
      if (conn.ready) join();
    }, delay);
  }

  function schedulePing(): void {
    if (deps.selfPingMs <= 0) return;
    clearTimeout(pingTimer);
    pingTimer = setTimeout(async () => {
      if (state.phase !== "joined" || !conn.ready) return;
      try {
        await conn.request(selfPingIq(room, nick), 20_000);
      } catch (err) {
        const condition = (err as { condition?: string }).condition;
        // XEP-0410 §3.1: these say we are not joined; other errors say we are.
        if (condition === "not-acceptable" || condition === "item-not-found") {
          lost(`self-ping answered ${condition}`);
          return;
        }
      }
      schedulePing();
    }, deps.selfPingMs);
  }

  function lost(reason: string): void {
    if (state.phase !== "joined") return;
    fail(reason, false, "not-acceptable", 0);
  }

  function onPresence(p: Element, fromNick: string): void {
    if (fromNick !== nick) return;
    if (p.attrs.type === "error") {
      const e = stanzaError(p);
      // A nick conflict is usually our own ghost from before a restart: it goes away.
      const permanent = e.condition !== "conflict" && isPermanentStanzaError(e.type, e.condition);
      fail(`${e.condition}${e.text ? ` (${e.text})` : ""}`, permanent, e.condition);
      return;
    }
    const codes = mucStatusCodes(p);
    if (!codes.includes(110)) return; // 110 marks presence about ourselves
    if (p.attrs.type === "unavailable") {
      if (deps.isStopping() || state.phase === "closed") return;
      const destroyed = p.getChild("x", NS_MUC_USER)?.getChild("destroy") !== undefined;
      // XEP-0045 §15.6: 307 kicked, 301 banned, 321/322 affiliation change, 332 shutdown.
      if (codes.includes(307)) fail("kicked", false, "kicked", attempt === 0 ? 0 : undefined);
      else if (codes.includes(301)) fail("banned from the room", true, "forbidden");
      else if (codes.includes(322))
        fail("the room became members-only", true, "registration-required");
      else if (destroyed) fail("the room was destroyed", false, "gone");
      else
        fail(
          codes.includes(332) ? "the room service shut down" : "removed from the room",
          false,
          "not-joined",
        );
      return;
    }
    if (state.phase !== "joining") return;
    if (codes.includes(201)) {
      // Prosody locks a new room until its owner accepts the configuration (§10.1.2).
      conn
        .request(instantRoomIq(room))
        .catch((err) => log.warn({ room, err: String(err) }, "instant room form refused"));
    }
    // History (if asked for) and then the subject follow the self-presence.
    inHistory = true;
    subjectTimer = setTimeout(historyDone, SUBJECT_WAIT_MS);
  }

  function onGroupchat(m: Element, fromNick: string): boolean {
    if (!inHistory) return false;
    if (m.getChild("subject") && m.getChild("body") === undefined) {
      historyDone();
      return true;
    }
    if (!m.getChild("delay", "urn:xmpp:delay")) return false; // a live message
    if (fromNick === nick) {
      for (const id of messageIds(m)) if (historyIds.has(id)) deps.onConfirmed(id);
    }
    return true;
  }

  return {
    jid: room,
    state,
    rejoin() {
      attempt = 0;
      join();
    },
    resumed() {
      if (wasJoined) {
        state.phase = "joined";
        schedulePing();
        deps.onReady();
      } else join();
    },
    paused() {
      clearTimers();
      wasJoined = state.phase === "joined";
      if (state.phase !== "closed") state.phase = "offline";
      state.permanent = false; // nothing is known while the stream is down
      state.suspect = false;
      refusedBefore = undefined;
    },
    lost,
    retryNow() {
      if (state.phase === "retrying" && conn.ready && !deps.isStopping()) join();
    },
    onPresence,
    onGroupchat,
    joined() {
      if (state.phase === "joined") return Promise.resolve();
      return new Promise((resolve, reject) => waiters.push({ resolve, reject }));
    },
    close() {
      clearTimers();
      state.phase = "closed";
    },
  };
}
