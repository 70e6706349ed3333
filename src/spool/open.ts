/**
 * Opens the configured spool: PostgreSQL when `SPOOL_URL` is set, else SQLite in
 * `DATA_DIR`. The PostgreSQL driver is loaded only then.
 */
import type { SpoolSettings } from "../config/index.ts";
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
