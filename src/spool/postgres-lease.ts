/**
 * The lease that makes one gateway the sender of an XMPP account while several share one
 * PostgreSQL spool (issue 14): a row of `leases` (migration 2) with its holder, a fencing
 * token and an expiry. Every time is the database's (`now()`), never a gateway's clock, so
 * replicas whose clocks disagree still agree on who holds it.
 *
 * Fencing: the token changes whenever the lease is taken rather than extended (by another
 * holder, or by the same one after its lease ran out or was given up), and the delivery
 * loop claims its messages with it (`PostgresSpool.claim(…, fence)`). A sender that was
 * paused past its expiry and resumes finds renew() false and its claims empty.
 *
 * Each statement is one autocommit statement on a small pool of the lease client's own:
 * it never waits for the spool's write lock or for a connection a burst of posts holds,
 * so a busy spool cannot delay a renewal past the lease's expiry.
 */
import pg from "pg";
import { GatewayError } from "../core/errors.ts";
import { RETRY_AFTER } from "./postgres-commit.ts";
import { databaseName, describe } from "./postgres-errors.ts";

/** A lease as `acquire` took it: the fencing token, and how long it holds from the statement's start. */
export interface Lease {
  readonly token: number;
  readonly expiresInMs: number;
}

/** Who holds a lease now, by the database's clock (ms since the epoch). */
export interface LeaseHolder {
  readonly holder: string;
  readonly token: number;
  /** When it was taken or last renewed. */
  readonly renewedAt: number;
  readonly expiresAt: number;
  /** now() − renewedAt, both the database's: the lease's age without a replica's clock in it. */
  readonly ageMs: number;
}

/** The lease an account's claims are fenced by: the token `acquire` returned for `account`. */
export interface LeaseFence {
  readonly account: string;
  readonly token: number;
}

/** Takes, keeps and gives up the per-account leases of one gateway process. */
export interface LeaseClient {
  /** Takes the lease of `account` if it is free, expired, or already ours; returns the fencing token, or undefined when another holds it. */
  acquire(account: string): Promise<Lease | undefined>;
  /** Extends our lease if we still hold it with `token`, unexpired; false when lost (expired, taken over, or given up). */
  renew(account: string, token: number): Promise<boolean>;
  /** Gives it up (shutdown), so that a standby takes over at once. A lease no longer ours is left alone. */
  release(account: string, token: number): Promise<void>;
  /** Who holds it now and since when (for /ready); undefined when nobody (never taken, expired, given up). */
  holder(account: string): Promise<LeaseHolder | undefined>;
  /** Ends the client's connections (its leases are left to expire, or to be released first). */
  close(): Promise<void>;
}

/** Options of `createLeaseClient`. */
export interface LeaseClientOptions {
  /** Who we are: unique per gateway process (a restarted process is another holder). */
  readonly holder: string;
  /** How long a lease holds after each acquire or renew. */
  readonly ttlMs: number;
  /** How long connecting or one statement may take before the call fails UNAVAILABLE (default: ttlMs, within 1–5 s). */
  readonly timeoutMs?: number;
  /** Connections at most (default 2). */
  readonly poolSize?: number;
}

// `$n::float8 * interval '1 millisecond'`: a lease of a fraction of a second stays exact.
const TTL = (n: number) => `now() + $${n}::float8 * interval '1 millisecond'`;
const MS = (t: string) => `extract(epoch FROM ${t}) * 1000`;

// The VALUES row draws a fresh token; an existing row takes it only when the lease is taken
// anew. Two gateways racing: the second waits for the first's row lock, then finds the
// lease held (its WHERE is false), and gets no row back.
const ACQUIRE = `
  INSERT INTO leases AS l (account, holder, token, renewed_at, expires_at)
  VALUES ($1, $2, nextval('lease_tokens'), now(), ${TTL(3)})
  ON CONFLICT (account) DO UPDATE SET
    token = CASE WHEN l.holder = excluded.holder AND l.expires_at > now()
                 THEN l.token ELSE excluded.token END,
    holder = excluded.holder,
    renewed_at = excluded.renewed_at,
    expires_at = excluded.expires_at
  WHERE l.holder = excluded.holder OR l.expires_at <= now()
  RETURNING token, ${MS("l.expires_at - now()")} AS expires_in_ms`;

const RENEW = `
  UPDATE leases SET renewed_at = now(), expires_at = ${TTL(4)}
  WHERE account = $1 AND holder = $2 AND token = $3 AND expires_at > now()`;

// -infinity, not now(): a renew whose statement started a moment earlier (its now() is
// older) and waited for this row must still find the lease given up.
const RELEASE = `
  UPDATE leases SET expires_at = '-infinity'
  WHERE account = $1 AND holder = $2 AND token = $3`;

const HOLDER = `
  SELECT holder, token, ${MS("renewed_at")} AS renewed_at, ${MS("expires_at")} AS expires_at,
         ${MS("now() - renewed_at")} AS age_ms
  FROM leases WHERE account = $1 AND expires_at > now()`;

/**
 * A lease client on the spool database at `url` (migrated by `openPostgresSpool`, which
 * creates `leases`), with a pool of its own. Every call rejects GatewayError UNAVAILABLE
 * (with a Retry-After, and the database named without its password) when the database
 * cannot answer; the next call tries again.
 */
export function createLeaseClient(url: string, opts: LeaseClientOptions): LeaseClient {
  const { holder, ttlMs } = opts;
  if (typeof holder !== "string" || holder === "") {
    throw new RangeError("a lease holder must be a non-empty string");
  }
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new RangeError(`a lease ttl must be a positive number of ms, not ${ttlMs}`);
  }
  const where = databaseName(url);
  const timeout = opts.timeoutMs ?? Math.min(Math.max(ttlMs, 1000), 5000);
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.poolSize ?? 2,
    connectionTimeoutMillis: timeout,
    statement_timeout: timeout,
    query_timeout: timeout + 1000,
    keepAlive: true,
    application_name: "xmpp-msg-gw lease",
  });
  // As the spool's pool: an idle connection's error drops it; the next call reconnects.
  pool.on("error", () => {});
  pool.on("connect", (client) => client.on("error", () => {}));
  let closing: Promise<void> | undefined;

  async function run(what: string, account: string, name: string, text: string, values: unknown[]) {
    if (closing !== undefined) {
      throw new GatewayError("UNAVAILABLE", `the lease client of ${where} is closed`, {
        retryAfter: RETRY_AFTER,
      });
    }
    try {
      return await pool.query({ name: `gw_lease_${name}`, text, values });
    } catch (err) {
      throw new GatewayError(
        "UNAVAILABLE",
        `the lease of ${account} in ${where} could not be ${what}: ${describe(err)}`,
        { retryAfter: RETRY_AFTER, cause: err },
      );
    }
  }

  return {
    async acquire(account) {
      const { rows } = await run("taken", account, "acquire", ACQUIRE, [account, holder, ttlMs]);
      const row = rows[0];
      if (row === undefined) return undefined;
      return { token: Number(row.token), expiresInMs: Number(row.expires_in_ms) };
    },
    async renew(account, token) {
      const r = await run("renewed", account, "renew", RENEW, [account, holder, token, ttlMs]);
      return r.rowCount === 1;
    },
    async release(account, token) {
      await run("given up", account, "release", RELEASE, [account, holder, token]);
    },
    async holder(account) {
      const { rows } = await run("read", account, "holder", HOLDER, [account]);
      const row = rows[0];
      if (row === undefined) return undefined;
      return {
        holder: String(row.holder),
        token: Number(row.token),
        // The database keeps microseconds; ms since the epoch, as Date.now().
        renewedAt: Math.round(Number(row.renewed_at)),
        expiresAt: Math.round(Number(row.expires_at)),
        ageMs: Math.max(0, Number(row.age_ms)),
      };
    },
    close() {
      closing ??= pool.end();
      return closing;
    },
  };
}
