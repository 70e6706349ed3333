/**
 * Opens the configured spool: PostgreSQL when `SPOOL_URL` is set, else SQLite in
 * `DATA_DIR`. The PostgreSQL driver is loaded only then.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "pino";
import type { SpoolSettings } from "../config/index.ts";
import type { Clock } from "../core/clock.ts";
import { isCode } from "../core/errors.ts";
import type { LeaseStore } from "../delivery/leadership.ts";
import type { CommitInfo } from "./sqlite-open.ts";
import type { Spool } from "./types.ts";

/** Where the spool is, in words for logs (a URL without its password). */
export function spoolPlace(settings: SpoolSettings): string {
  if (settings.spoolUrl === undefined) return `${settings.dataDir} (SQLite)`;
  try {
    const url = new URL(settings.spoolUrl);
    url.password = "";
    return `${url.toString().replace(/:@/, "@")} (PostgreSQL)`;
  } catch {
    return "SPOOL_URL (PostgreSQL)";
  }
}

/**
 * The lease store of a PostgreSQL spool (several gateways, one sender per account), or
 * undefined for an embedded spool (one gateway). Open it after the spool: the spool's
 * migrations create its table.
 */
export async function openLeases(
  settings: SpoolSettings,
  opts: { ttlMs: number },
): Promise<(LeaseStore & { close(): Promise<void> }) | undefined> {
  if (settings.spoolUrl === undefined) return undefined;
  const { createLeaseClient } = await import("./postgres-lease.ts");
  // Unique per process: a restarted gateway is another holder, and waits or takes over.
  const holder = `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
  return createLeaseClient(settings.spoolUrl, { holder, ttlMs: opts.ttlMs });
}

/** Opens (creating and migrating when needed) the spool `settings` name. */
export async function openSpool(
  settings: SpoolSettings,
  opts: { onCommit?: (info: CommitInfo) => void } = {},
): Promise<Spool> {
  if (settings.spoolUrl !== undefined) {
    const { openPostgresSpool } = await import("./postgres.ts");
    return openPostgresSpool({ url: settings.spoolUrl, limits: settings.spool, ...opts });
  }
  const { openSqliteSpool, spoolPath } = await import("./sqlite.ts");
  return openSqliteSpool({ path: spoolPath(settings.dataDir), limits: settings.spool, ...opts });
}

/**
 * As `openSpool`, for `serve`: a PostgreSQL spool that cannot be reached yet (refused,
 * timed out, starting up) does not stop the start. The gateway answers 503 with a
 * Retry-After until the database is back (`deferred.ts`). A refused login, a missing
 * database or a newer schema still stop it: waiting would not mend those.
 */
export async function openSpoolForServe(
  settings: SpoolSettings,
  opts: { onCommit?: (info: CommitInfo) => void; log: Logger; clock: Clock },
): Promise<Spool> {
  const open = () => openSpool(settings, { onCommit: opts.onCommit });
  if (settings.spoolUrl === undefined) return open();
  const [{ describe, isConnectionError }, { RETRY_AFTER }, { deferredSpool }] = await Promise.all([
    import("./postgres-errors.ts"),
    import("./postgres-commit.ts"),
    import("./deferred.ts"),
  ]);
  const causeOf = (err: unknown) => (err instanceof Error && err.cause) || err;
  try {
    return await open();
  } catch (err) {
    // Only a failure of the connection itself (its cause): not the spool's own refusals.
    const cause = err instanceof Error ? err.cause : undefined;
    if (!isCode(err, "UNAVAILABLE") || cause === undefined || !isConnectionError(cause)) throw err;
    return deferredSpool({
      open,
      firstError: err,
      where: spoolPlace(settings),
      log: opts.log,
      clock: opts.clock,
      retryAfter: RETRY_AFTER,
      reasonOf: (e) => describe(causeOf(e)),
    });
  }
}
