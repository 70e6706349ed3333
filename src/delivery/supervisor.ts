/**
 * Keeps every session connected and every room joined: the one owner of *when* to
 * reconnect or rejoin (jittered backoff on an injected clock) and of *whether* a room's
 * refusal is for good. The carrier only attempts what it is told and reports facts.
 */
import type { Logger } from "pino";
import type { BackoffOptions } from "../core/backoff.ts";
import { backoffDelay } from "../core/backoff.ts";
import type { Clock, Timer } from "../core/clock.ts";
import { DIRECT_NICK } from "../core/routes.ts";
import type { Lane } from "../spool/types.ts";
import { isConflict, isPermanentRoomFault } from "./classify.ts";
import { type Leadership, SOLE_SENDER } from "./leadership.ts";
import type { Carrier, LookFor, RoomFault, SessionInfo, StreamFault, Topology } from "./port.ts";
import type { Readiness, RoomReadiness } from "./readiness.ts";

/** A stream that stayed up this long was healthy: the next drop starts the backoff anew. */
export const STABLE_MS = 10_000;

/**
 * Longest wait for a join's outcome: the room's answer, then its history and the archive
 * check (at most 120 s, xmpp/archive.ts), which `joined` follows.
 */
export const JOIN_TIMEOUT_MS = 180_000;

interface RoomState {
  readonly lane: Lane;
  phase: RoomReadiness["state"];
  attempt: number;
  /** When the last join succeeded: a room left sooner than STABLE_MS after backs off. */
  joinedSince: number;
  timer: Timer | undefined;
  lastError: string | undefined;
  /** The last refusal that looked permanent, to confirm it on the next attempt. */
  suspect: string | undefined;
  /** Refused for good (seen twice): its messages are dead letters. */
  permanent: boolean;
  /** Joins begun: a join whose spool read finished after a newer one began is dropped. */
  joins: number;
}

interface SessionState {
  readonly nick: string;
  readonly rooms: Map<string, RoomState>;
  up: boolean;
  upSince: number;
  attempt: number;
  timer: Timer | undefined;
  lastError: string | undefined;
  info: SessionInfo | undefined;
  /** Waiting for a reload: the server allows fewer sessions than the gateway has nicks. */
  blocked: boolean;
}

/** What the supervisor tells the lanes. */
export interface SupervisorHooks {
  /** The room is joined (or the direct session is up): its lane may send. */
  ready(lane: Lane): void;
  /** The lane cannot send now; what was in flight has an unknown fate. */
  lost(lane: Lane): void;
  /** Already in the room: found by the history and archive check after a (re)join. */
  found(lane: Lane, ids: readonly string[]): void;
  /** The session's stream ended, with the fault (for the poison-message check). */
  down(nick: string, fault: StreamFault): void;
  /** The unconfirmed messages a (re)join must look for (read from the spool). */
  lookFor(lane: Lane): Promise<LookFor | undefined>;
}

/** The supervisor the loop consults. */
export interface Supervisor {
  start(): void;
  /** The lane's session is up and its room joined. */
  canSend(lane: Lane): boolean;
  /** The session is up (a confirmation or refusal is moments away). */
  online(lane: Lane): boolean;
  /** Why the room refuses us for good, if it does. */
  refusal(lane: Lane): string | undefined;
  /** Asks a room that refused us for good again now (an operator may have fixed it). */
  retry(lane: Lane): void;
  /** Follows nicks and rooms added by a reload; blocked sessions try again. */
  extend(topology: Topology): void;
  /** The largest stanza the lane's server advertises (XEP-0478), if known. */
  maxStanzaBytes(): Array<number | undefined>;
  readiness(): Readiness;
  stop(): void;
}

/** Creates the supervisor of `topology` over `carrier`. */
export function createSupervisor(deps: {
  carrier: Carrier;
  topology: Topology;
  hooks: SupervisorHooks;
  clock: Clock;
  random: () => number;
  backoff: BackoffOptions;
  log: Logger;
  /** The account a nick logs in as: a session limit counts per account. */
  accountOf: (nick: string) => string;
  /** Whether this gateway sends as an account now (issue 14); always, with one gateway. */
  leadership?: Leadership;
}): Supervisor {
  const { carrier, clock, log, hooks } = deps;
  const leadership = deps.leadership ?? SOLE_SENDER;
  const leads = (nick: string) => leadership.holds(deps.accountOf(nick));
  const sessions = new Map<string, SessionState>();
  let stopped = false;
  const delay = (attempt: number) => backoffDelay(attempt, deps.random, deps.backoff);

  /** Adds what is new in `topology`; returns the new sessions. */
  const add = (topology: Topology): SessionState[] => {
    const added: SessionState[] = [];
    for (const [nick, rooms] of topology) {
      let s = sessions.get(nick);
      if (!s) {
        s = {
          nick,
          rooms: new Map(),
          up: false,
          upSince: 0,
          attempt: 0,
          timer: undefined,
          lastError: undefined,
          info: undefined,
          blocked: false,
        };
        sessions.set(nick, s);
        added.push(s);
      }
      for (const room of rooms) {
        if (s.rooms.has(room)) continue;
        const r: RoomState = {
          lane: { room, nick },
          phase: "offline",
          attempt: 0,
          joinedSince: 0,
          timer: undefined,
          lastError: undefined,
          suspect: undefined,
          permanent: false,
          joins: 0,
        };
        s.rooms.set(room, r);
        if (s.up) join(r);
      }
    }
    return added;
  };
  add(deps.topology);

  const roomOf = (lane: Lane) => sessions.get(lane.nick)?.rooms.get(lane.room);

  function connect(s: SessionState): void {
    clock.clearTimeout(s.timer);
    s.timer = undefined;
    if (stopped || s.blocked || !leads(s.nick)) return;
    carrier.connect(s.nick);
  }

  function join(r: RoomState): void {
    clock.clearTimeout(r.timer);
    r.timer = undefined;
    if (stopped || !sessions.get(r.lane.nick)?.up) return;
    r.phase = "joining";
    const joining = ++r.joins;
    // What to look for in the room's history comes from the spool: join once it is read,
    // unless the room or its session changed meanwhile (a newer join then runs its own).
    hooks.lookFor(r.lane).then(
      (lookFor) => {
        if (joining !== r.joins || r.phase !== "joining" || stopped) return;
        if (!sessions.get(r.lane.nick)?.up) return;
        carrier.join(r.lane, lookFor);
      },
      (err: unknown) => {
        // Without the list the join cannot tell what already arrived: no join, and the
        // time-out below retries it with backoff.
        log.error({ err, room: r.lane.room }, "the spool could not be read before a join");
      },
    );
    // A room (or MUC service) that never answers must not hold the lane for ever.
    r.timer = clock.setTimeout(() => {
      r.timer = undefined;
      onLeft(r.lane, {
        kind: "no-answer",
        text: `no answer to the join within ${JOIN_TIMEOUT_MS / 1000} s`,
      });
    }, JOIN_TIMEOUT_MS);
  }

  const sessionsOf = (account: string) =>
    [...sessions.values()].filter((s) => deps.accountOf(s.nick) === account);
  leadership.on("acquired", (account) => {
    for (const s of sessionsOf(account)) {
      s.blocked = false;
      s.attempt = 0;
      connect(s); // then join, and the rejoin's history check, as after a crash
    }
  });
  leadership.on("lost", (account) => {
    // Another gateway sends as this account now: stop at once, and leave its rooms to it.
    for (const s of sessionsOf(account)) {
      clock.clearTimeout(s.timer);
      s.timer = undefined;
      if (s.up) carrier.disconnect(s.nick);
      s.lastError = "standby: another gateway holds this account's lease";
    }
  });

  carrier.on("up", (nick, info) => {
    const s = sessions.get(nick);
    if (!s || stopped) return;
    s.up = true;
    s.upSince = clock.now();
    s.info = info;
    s.lastError = undefined;
    if (nick === DIRECT_NICK) {
      for (const lane of directLanes.values()) hooks.ready(lane);
    }
    for (const r of s.rooms.values()) {
      r.attempt = 0;
      join(r);
    }
  });

  /** Lanes of direct messages seen so far (any user JID), readied when the session is up. */
  const directLanes = new Map<string, Lane>();

  carrier.on("down", (nick, fault) => {
    const s = sessions.get(nick);
    if (!s) return;
    const wasUp = s.up;
    s.up = false;
    if (wasUp && clock.now() - s.upSince >= STABLE_MS) s.attempt = 0;
    hooks.down(nick, fault); // before `lost` forgets what was in flight
    for (const r of s.rooms.values()) {
      clock.clearTimeout(r.timer);
      r.timer = undefined;
      r.phase = "offline";
      r.suspect = undefined; // nothing is known of a room while the stream is down
      r.permanent = false;
      hooks.lost(r.lane);
    }
    if (nick === DIRECT_NICK) for (const lane of directLanes.values()) hooks.lost(lane);
    if (stopped) return;
    s.lastError = fault.text;
    const account = deps.accountOf(nick);
    const siblings = [...sessions.values()].filter((o) => deps.accountOf(o.nick) === account);
    const others = siblings.filter((o) => o !== s && o.up).length;
    // A standby's session replaced by the new sender's is no session limit: it waits.
    if (!leads(nick)) return;
    if (isConflict(fault) && others > 0) {
      // ejabberd's max_user_sessions (10 by default): our own next session replaced this
      // one. Reconnecting would replace another in turn, for ever; wait for a reload.
      s.blocked = true;
      s.lastError = `the XMPP server replaced this session with another of the gateway's own: ${account} needs ${siblings.length} sessions (one per nick) and the server allows ${others}. Raise the server's limit (ejabberd: max_user_sessions) to at least ${siblings.length}, or use fewer nicks, or give some routes their own XMPP account (CONFIG_FILE: account); then reload (SIGHUP) or restart`;
      log.error({ nick, fault }, s.lastError);
      return;
    }
    const wait = delay(s.attempt++);
    log.warn(
      { nick, fault, retryInMs: wait },
      `XMPP session for ${nick === DIRECT_NICK ? "direct messages" : nick} is down: ${fault.text}; reconnecting in ${wait} ms`,
    );
    s.timer = clock.setTimeout(() => connect(s), wait);
  });

  carrier.on("joined", (lane, found) => {
    const r = roomOf(lane);
    if (r?.phase !== "joining") return;
    if (found.length > 0) hooks.found(lane, found);
    clock.clearTimeout(r.timer);
    r.timer = undefined;
    r.phase = "joined";
    r.joinedSince = clock.now();
    r.lastError = undefined;
    r.suspect = undefined;
    r.permanent = false;
    log.info(lane, `joined ${lane.room} as ${lane.nick}`);
    hooks.ready(lane);
  });

  carrier.on("left", (lane, fault) => onLeft(lane, fault));

  function onLeft(lane: Lane, fault: RoomFault): void {
    const r = roomOf(lane);
    // Offline or retrying: no join is under way, so this is a repeat of the last report.
    if (!r || r.phase === "offline" || r.phase === "retrying") return;
    const wasJoined = r.phase === "joined";
    if (wasJoined && clock.now() - r.joinedSince >= STABLE_MS) r.attempt = 0;
    const looksPermanent = isPermanentRoomFault(fault);
    const key = `${fault.kind}:${fault.stanza?.condition ?? ""}`;
    // Permanent only when the next attempt says it again: a server shutting down answers
    // item-not-found for a moment, which must not dead-letter anything.
    r.permanent = looksPermanent && r.suspect === key;
    r.suspect = looksPermanent ? key : undefined;
    r.lastError = fault.text;
    r.phase = "retrying";
    if (wasJoined || r.permanent) hooks.lost(lane);
    if (stopped) return;
    // A kick is answered with a rejoin at once; anything after it waits its turn.
    const wait = fault.kind === "kicked" && r.attempt === 0 ? 0 : delay(r.attempt);
    r.attempt++;
    (looksPermanent ? log.error : log.warn).call(
      log,
      { ...lane, fault, retryInMs: wait },
      `not in ${lane.room} as ${lane.nick}: ${fault.text}; retrying in ${wait} ms`,
    );
    clock.clearTimeout(r.timer);
    r.timer = clock.setTimeout(() => join(r), wait);
  }

  return {
    start() {
      for (const s of sessions.values()) connect(s);
    },
    canSend(lane) {
      const s = sessions.get(lane.nick);
      // Known before the session is up, so that `up` readies it.
      if (s && lane.nick === DIRECT_NICK) directLanes.set(lane.room, lane);
      if (!s?.up || !leads(lane.nick)) return false;
      if (lane.nick === DIRECT_NICK) return true;
      return s.rooms.get(lane.room)?.phase === "joined";
    },
    online: (lane) =>
      sessions.get(lane.nick)?.up === true &&
      (lane.nick === DIRECT_NICK || roomOf(lane) !== undefined),
    refusal(lane) {
      const r = roomOf(lane);
      return r?.permanent && r.phase === "retrying"
        ? `${lane.room} refused ${lane.nick}: ${r.lastError}`
        : undefined;
    },
    retry(lane) {
      const r = roomOf(lane);
      if (r?.phase === "retrying") join(r);
    },
    extend(topology) {
      const added = add(topology);
      for (const s of sessions.values()) {
        if (!s.blocked && !added.includes(s)) continue;
        s.blocked = false;
        s.attempt = 0;
        connect(s);
      }
    },
    maxStanzaBytes: () => [...sessions.values()].map((s) => s.info?.maxStanzaBytes),
    readiness() {
      const list = [...sessions.values()].map((s) => ({
        nick: s.nick,
        online: s.up,
        lastError:
          s.lastError ?? (leads(s.nick) ? null : "standby: another gateway sends as this account"),
        rooms: [...s.rooms.values()].map((r) => ({
          room: r.lane.room,
          state: r.phase,
          lastError: r.lastError ?? null,
        })),
      }));
      const ready = list.every((s) => s.online && s.rooms.every((r) => r.state === "joined"));
      return { ready, sessions: list };
    },
    stop() {
      stopped = true;
      for (const s of sessions.values()) {
        clock.clearTimeout(s.timer);
        for (const r of s.rooms.values()) clock.clearTimeout(r.timer);
      }
    },
  };
}
