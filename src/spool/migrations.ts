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
  // 2 (issue 13): what a message is for (a reaction, a thread of an alert group), the
  // dedupe claims, and the rooms' thread anchors. `meta` is the message's `kind` and
  // `thread` as JSON, NULL for a plain text message (every row of version 1): one column,
  // not three, because every column is read for every row the delivery loop's pending()
  // returns, and on most rows they would all be NULL. ADD COLUMN only writes the schema,
  // not the rows (https://www.sqlite.org/lang_altertable.html#alter_table_add_column), so
  // the upgrade of a full spool is instant.
  `
  ALTER TABLE messages ADD COLUMN meta TEXT;
  ALTER TABLE dead_letters ADD COLUMN meta TEXT;
  -- One row per post that claimed a key: ids is the JSON array of its message ids. An
  -- expired row counts as absent and is replaced by the next claim of its key; the sweep
  -- deletes expired rows along expires_at. WITHOUT ROWID: looked up by its key only.
  CREATE TABLE dedupe (
    route TEXT NOT NULL,
    key TEXT NOT NULL,
    post_id TEXT NOT NULL,
    ids TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (route, key)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX dedupe_expiry ON dedupe (expires_at);
  -- One row per (room, alert group): the room's record of the group's first message. A
  -- few per group and room, so the minutely sweep reads the table without an index.
  CREATE TABLE threads (
    room TEXT NOT NULL,
    grp TEXT NOT NULL,
    stanza_id TEXT NOT NULL,
    occupant TEXT NOT NULL,
    quote TEXT NOT NULL,
    resolved_at INTEGER,
    touched_at INTEGER NOT NULL,
    PRIMARY KEY (room, grp)
  ) STRICT, WITHOUT ROWID;
  `,
  // 3 (issue 14): each lane's send mark, the highest seq its sender may have sent
  // (`sqlite-marks.ts`). What is queued at the upgrade may have been sent by the gateway
  // before it: all of it counts. WITHOUT ROWID: looked up by its key only.
  `
  CREATE TABLE send_marks (
    room TEXT NOT NULL,
    nick TEXT NOT NULL,
    upto INTEGER NOT NULL,
    PRIMARY KEY (room, nick)
  ) STRICT, WITHOUT ROWID;
  INSERT INTO send_marks (room, nick, upto)
  SELECT room, nick, max(seq) FROM messages GROUP BY room, nick;
  -- Each raise of a mark and when (spool clock, ms): nothing above the old mark was sent
  -- before it, so a rejoin reads the archive only from there. Rows below the lane's oldest
  -- queued message are swept.
  CREATE TABLE send_mark_log (
    room TEXT NOT NULL,
    nick TEXT NOT NULL,
    upto INTEGER NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (room, nick, upto)
  ) STRICT, WITHOUT ROWID;
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
