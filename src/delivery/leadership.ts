/**
 * One sender per XMPP account (issue 14): several gateways may share a PostgreSQL spool,
 * and all of them accept posts, but only the holder of an account's lease connects and
 * sends as it. The lease lives in the database with a fencing token; this file keeps it:
 * it takes free leases, renews held ones every third of their time, and says at once
 * when one is lost. A process that was paused (SIGSTOP) finds its lease expired by its own
 * monotonic clock before it could send again, and a renewal after a takeover fails.
 * With an embedded spool (SQLite, memory) there is one gateway: it always leads.
 */
import type { Logger } from "pino";
import type { Clock, Timer } from "../core/clock.ts";
import type { Readiness } from "./readiness.ts";

/** What the database says of a lease; implemented by the PostgreSQL spool's lease client. */
export interface LeaseStore {
  acquire(account: string): Promise<{ token: number; expiresInMs: number } | undefined>;
  renew(account: string, token: number): Promise<boolean>;
  release(account: string, token: number): Promise<void>;
  holder(
    account: string,
  ): Promise<{ holder: string; token: number; renewedAt: number; expiresAt: number } | undefined>;
}

/** An account as `/ready` shows it. */
export interface LeaseState {
  readonly account: string;
  readonly role: "leader" | "standby";
  /** The fencing token while leading. */
  readonly token?: number;
  /** Since the last successful renewal (or acquisition), while leading. */
  readonly leaseAgeMs?: number;
  /** Why not leading, when a lease call failed. */
  readonly lastError?: string;
}

/** Whether this gateway may send as an account, and the changes. */
export interface Leadership {
  holds(account: string): boolean;
  /** The fencing token of a held lease (claims are checked against it). */
  token(account: string): number | undefined;
  on(event: "acquired" | "lost", listener: (account: string) => void): void;
  state(): LeaseState[];
  start(): void;
  /** Resolves once the first round after start has asked for every account's lease. */
  firstRound(): Promise<void>;
  /** Stops renewing and gives the held leases up, so that a standby takes over at once. */
  stop(): Promise<void>;
}

/**
 * `/ready` with several gateways: a standby's sessions are closed on purpose, so it is
 * ready when the accounts it sends as are; the leases say who sends as what.
 */
export function withLeases(
  r: Readiness,
  leadership: Leadership | undefined,
  accountOf: (nick: string) => string,
): Readiness {
  const leases = leadership?.state() ?? [];
  if (!leadership || leases.length === 0) return r;
  const sending = r.sessions.filter((s) => leadership.holds(accountOf(s.nick)));
  const ready = sending.every((s) => s.online && s.rooms.every((room) => room.state === "joined"));
  return { ...r, ready, leases };
}

/** The embedded spools' leadership: one gateway, always the sender. */
export const SOLE_SENDER: Leadership = {
  holds: () => true,
  token: () => undefined,
  on: () => {},
  state: () => [],
  start: () => {},
  firstRound: async () => {},
  stop: async () => {},
};

interface Held {
  token: number;
  /** Monotonic ms until which the lease is ours for sure (its expiry, less a margin). */
  until: number;
  renewedAt: number;
}

/**
 * Keeps the leases of `accounts` in `store`. `ttlMs` is the lease time the store grants;
 * a lease is taken as lost a fifth of it before its expiry, to allow for the clocks.
 */
export function createLeadership(deps: {
  store: LeaseStore;
  accounts: readonly string[];
  ttlMs: number;
  clock: Clock;
  /** Monotonic ms (performance.now): wall-clock jumps must not extend a lease. */
  monotonic?: () => number;
  log: Logger;
}): Leadership {
  const { store, clock, log } = deps;
  const mono = deps.monotonic ?? (() => performance.now());
  const held = new Map<string, Held>();
  const errors = new Map<string, string>();
  const listeners = {
    acquired: [] as Array<(a: string) => void>,
    lost: [] as Array<(a: string) => void>,
  };
  let timer: Timer | undefined;
  let stopped = false;
  let firstDone: () => void = () => {};
  const first = new Promise<void>((resolve) => {
    firstDone = resolve;
  });
  const margin = deps.ttlMs / 5;

  const emit = (event: "acquired" | "lost", account: string) => {
    for (const l of listeners[event]) {
      try {
        l(account);
      } catch (err) {
        log.error({ err, account }, `leadership: a ${event} listener threw`);
      }
    }
  };

  function lose(account: string, why: string): void {
    if (!held.delete(account)) return;
    log.warn({ account }, `lost the lease of ${account}: ${why}; sending as it stops`);
    emit("lost", account);
  }

  async function tend(account: string): Promise<void> {
    const mine = held.get(account);
    try {
      if (mine) {
        if (mono() > mine.until) return lose(account, "it expired before it could be renewed");
        const before = mono();
        if (await store.renew(account, mine.token)) {
          mine.until = before + deps.ttlMs - margin;
          mine.renewedAt = clock.now();
          errors.delete(account);
        } else lose(account, "another gateway holds it now");
        return;
      }
      const before = mono();
      const got = await store.acquire(account);
      errors.delete(account);
      if (!got || stopped) return;
      held.set(account, {
        token: got.token,
        until: before + got.expiresInMs - margin,
        renewedAt: clock.now(),
      });
      log.info({ account, fencingToken: got.token }, `took the lease of ${account}: sending as it`);
      emit("acquired", account);
    } catch (err) {
      errors.set(account, (err as Error).message);
      // Unreachable database: a held lease lasts until its own expiry, not a moment longer.
      if (mine && mono() > mine.until)
        lose(account, `the spool is unreachable (${(err as Error).message})`);
    }
  }

  function round(): void {
    timer = undefined;
    if (stopped) return;
    Promise.allSettled(deps.accounts.map(tend)).finally(() => {
      firstDone();
      if (!stopped) timer = clock.setTimeout(round, deps.ttlMs / 3);
    });
  }

  return {
    holds(account) {
      const h = held.get(account);
      if (!h) return false;
      // Checked at every send: a process that was paused must not send on an old lease.
      if (mono() <= h.until) return true;
      lose(account, "it expired (was the process paused?)");
      return false;
    },
    token: (account) => held.get(account)?.token,
    on(event, listener) {
      listeners[event].push(listener);
    },
    state: () =>
      deps.accounts.map((account): LeaseState => {
        const h = held.get(account);
        const lastError = errors.get(account);
        const why = lastError === undefined ? {} : { lastError };
        if (!h) return { account, role: "standby", ...why };
        const leaseAgeMs = clock.now() - h.renewedAt;
        return { account, role: "leader", token: h.token, leaseAgeMs, ...why };
      }),
    start() {
      if (timer === undefined && !stopped) round();
    },
    firstRound: () => first,
    async stop() {
      stopped = true;
      clock.clearTimeout(timer);
      const mine = [...held.entries()];
      held.clear();
      await Promise.allSettled(mine.map(([account, h]) => store.release(account, h.token)));
    },
  };
}
