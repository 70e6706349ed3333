/**
 * The spool's schema, versioned. Migration N (1-based) takes a database from
 * `PRAGMA user_version` N-1 to N; the list only ever grows, and a released migration is
 * never edited, so every spool file on disk can be brought up to date.
 */
import type { DatabaseSync } from "node:sqlite";
import { GatewayError } from "../core/errors.ts";

/** The ordered migrations; the index + 1 is the `user_version` each one produces. */
export const MIGRATIONS: readonly string[] = [
  // 1: the queue and the dead letters. STRICT tables refuse a value of the wrong type
  // instead of storing it (https://www.sqlite.org/stricttables.html). AUTOINCREMENT
  // never reuses a seq, even after the newest rows are deleted
  // (https://www.sqlite.org/autoinc.html), so a seq names one message for ever and the
  // delivery loop's `afterSeq` cursor cannot skip a newer message that reused it.
  `
  CREATE TABLE messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    post_id TEXT NOT NULL,
    route TEXT NOT NULL,
    room TEXT NOT NULL,
    nick TEXT NOT NULL,
    body TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
  ) STRICT;
  -- pending(lane, limit, afterSeq) is one range scan of this index.
  CREATE INDEX messages_lane ON messages (room, nick, seq);
  -- seq is the seq the message had in messages: unique, because AUTOINCREMENT never
  -- hands out the same value twice.
  CREATE TABLE dead_letters (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    post_id TEXT NOT NULL,
    route TEXT NOT NULL,
    room TEXT NOT NULL,
    nick TEXT NOT NULL,
    body TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT,
    failed_at INTEGER NOT NULL,
    reason TEXT NOT NULL
  ) STRICT;
  CREATE INDEX dead_letters_failed ON dead_letters (failed_at, seq);
  `,
];

/**
 * Ends the open transaction, if SQLite has not already rolled it back itself after an
 * I/O error (https://www.sqlite.org/lang_transaction.html#response_to_errors_within_a_transaction).
 * `db.isTransaction` would tell, but it only exists from Node 22.16, and 22.13 is supported.
 */
export function rollback(db: DatabaseSync): void {
  try {
    db.exec("ROLLBACK");
  } catch {
    // "cannot rollback - no transaction is active": already rolled back.
  }
}

function userVersion(db: DatabaseSync): number {
  return Number(db.prepare("PRAGMA user_version").get()?.user_version ?? 0);
}

/**
 * Brings the database at `path` up to the newest schema, one transaction per migration;
 * refuses a database written by a newer version of the gateway.
 */
export function migrate(
  db: DatabaseSync,
  path: string,
  migrations: readonly string[] = MIGRATIONS,
): void {
  const refuseNewer = (found: number) => {
    if (found > migrations.length) {
      throw new GatewayError(
        "UNAVAILABLE",
        `the spool ${path} has schema version ${found}, but this xmpp-msg-gw knows versions up to ${migrations.length}: it was written by a newer xmpp-msg-gw; run that version, or move the file away to start an empty spool`,
      );
    }
  };
  refuseNewer(userVersion(db));
  while (userVersion(db) < migrations.length) {
    // BEGIN IMMEDIATE takes the write lock before reading user_version again, so two
    // processes opening the same file at once cannot both apply a migration. The
    // user_version lives in the database header and is written by this transaction,
    // so a migration is applied and recorded together or not at all
    // (https://www.sqlite.org/pragma.html#pragma_user_version).
    db.exec("BEGIN IMMEDIATE");
    try {
      const version = userVersion(db);
      refuseNewer(version);
      const next = migrations[version];
      if (next !== undefined) {
        db.exec(next);
        db.exec(`PRAGMA user_version = ${version + 1}`);
      }
      db.exec("COMMIT");
    } catch (err) {
      rollback(db);
      throw err;
    }
  }
}
