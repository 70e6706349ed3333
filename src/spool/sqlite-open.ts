/**
 * Opening the SQLite spool file: the start-up check, the connection settings, the schema,
 * and how SQLite's errors read.
 */
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { GatewayError } from "../core/errors.ts";
import { verifySpool } from "./integrity.ts";
import { migrate } from "./migrations.ts";
import { prepareStatements } from "./sqlite-statements.ts";
import type { SpoolLimits } from "./types.ts";

/** What one commit wrote, for metrics and for tests that count transactions. */
export interface CommitInfo {
  /** How many spool calls (enqueue, delivered, …) the transaction carried. */
  readonly operations: number;
  /** Time from BEGIN to the end of COMMIT (including the fsync), in ms. */
  readonly ms: number;
}

/** Options of `openSqliteSpool`. */
export interface SqliteSpoolOptions {
  /** The database file; its directory is created when missing. */
  readonly path: string;
  readonly limits: SpoolLimits;
  /** The clock, ms since the epoch (createdAt, failedAt). */
  readonly now?: () => number;
  /** How long a write waits for another process's lock before its batch fails UNAVAILABLE. */
  readonly busyTimeoutMs?: number;
  /** Called after every commit. */
  readonly onCommit?: (info: CommitInfo) => void;
}

/** The spool file inside the data directory (`DATA_DIR`). */
export function spoolPath(dataDir: string): string {
  return join(dataDir, "spool.sqlite");
}

/** SQLITE_CONSTRAINT and its extended codes (https://www.sqlite.org/rescode.html#constraint). */
export function isConstraint(err: unknown): boolean {
  return ((err as { errcode?: number }).errcode ?? 0) % 256 === 19;
}

/** SQLITE_READONLY and its extended codes: the file, or its directory, may not be written. */
export function isReadOnly(err: unknown): boolean {
  return ((err as { errcode?: number }).errcode ?? 0) % 256 === 8;
}

/** SQLite's words for an error: node:sqlite puts the generic text of the code in `errstr`, details in `message`. */
export function describe(err: unknown): string {
  const e = err as { message?: string; errstr?: string };
  const message = String(e.message ?? err);
  return e.errstr === undefined || e.errstr === message ? message : `${e.errstr}: ${message}`;
}

/** Checks (`verifySpool`, unless `verify` is false), opens, configures and migrates the database file. */
export function openDatabase(path: string, busyTimeoutMs: number, verify = true) {
  let db: DatabaseSync | undefined;
  try {
    mkdirSync(dirname(path), { recursive: true });
    if (verify) verifySpool(path);
    db = new DatabaseSync(path);
    // WAL: readers (the delivery loop, the `spool` CLI) never block the writer, and a
    // commit appends to one file (https://www.sqlite.org/wal.html). synchronous=FULL:
    // in WAL mode NORMAL may lose the last commits on power loss; FULL syncs the WAL at
    // every commit, so an acknowledged message survives it
    // (https://www.sqlite.org/pragma.html#pragma_synchronous). busy_timeout: wait for
    // another process's short write instead of failing at once.
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(busyTimeoutMs))}`);
    migrate(db, path);
    return { db, sql: prepareStatements(db) };
  } catch (err) {
    db?.close();
    if (err instanceof GatewayError) throw err;
    throw new GatewayError("UNAVAILABLE", `cannot open the spool ${path}: ${describe(err)}`, {
      cause: err,
    });
  }
}
