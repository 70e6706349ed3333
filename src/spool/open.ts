/**
 * Opens the configured spool: PostgreSQL when `SPOOL_URL` is set, else SQLite in
 * `DATA_DIR`. The PostgreSQL driver is loaded only then.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { SpoolSettings } from "../config/index.ts";
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
