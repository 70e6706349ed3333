/**
 * How the PostgreSQL spool words the errors of node-postgres and of the network, and how
 * it names its database without leaking the password in the URL (STYLE rule 8).
 */

/** The SQLSTATE of a server error (https://www.postgresql.org/docs/15/errcodes-appendix.html), if it is one. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * Whether `err` says the database cannot be reached or used now, rather than that a
 * statement was wrong: no SQLSTATE at all (a refused or dropped connection, a timeout), or
 * class 08 (connection exception), 53 (insufficient resources: too many connections, a
 * full disk), 57P (the server shutting down, starting up, or in recovery).
 */
export function isConnectionError(err: unknown): boolean {
  const state = sqlState(err);
  if (state === undefined) return true;
  return state.startsWith("08") || state.startsWith("53") || state.startsWith("57P");
}

/** One line for an error: the server's words with its SQLSTATE, or the network's. */
export function describe(err: unknown): string {
  // Connecting to a name with several addresses fails with an AggregateError, whose own
  // message is empty: the reasons are its errors'.
  if (err instanceof AggregateError && err.errors.length > 0) {
    return [...new Set(err.errors.map(describe))].join("; ");
  }
  const e = err as { message?: unknown; code?: unknown; detail?: unknown } | null;
  const message = String(e?.message ?? err) || String(e?.code ?? "unknown error");
  const state = sqlState(err);
  const detail = typeof e?.detail === "string" && e.detail !== "" ? ` (${e.detail})` : "";
  return state === undefined ? message : `${message}${detail} [SQLSTATE ${state}]`;
}

/** The spool's database for messages: `postgres://user@host:port/db`, never the password or the query. */
export function databaseName(url: string): string {
  try {
    const u = new URL(url);
    const user = u.username === "" ? "" : `${decodeURIComponent(u.username)}@`;
    return `${u.protocol}//${user}${u.host}${u.pathname}`;
  } catch {
    return "the PostgreSQL database of SPOOL_URL";
  }
}
