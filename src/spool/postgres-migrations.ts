/**
 * The PostgreSQL spool's schema, versioned like SQLite's (`migrations.ts`): migration N
 * (1-based) takes a database from version N-1 to N, the list only ever grows, and a
 * released migration is never edited. The versions applied are rows of `schema_version`.
 * The tables hold what SQLite's do, column for column, so that both spools keep one
 * contract; text compared or ordered is COLLATE "C" (byte order, as SQLite's BINARY).
 */
import type { ClientBase } from "pg";
import { GatewayError } from "../core/errors.ts";

/** The ordered migrations; the index + 1 is the version each one produces. */
export const PG_MIGRATIONS: readonly string[] = [
  // 1: SQLite's versions 1 and 2 at once. An identity seq never hands out a value twice,
  // even after rollbacks (https://www.postgresql.org/docs/15/sql-createsequence.html: a
  // sequence is never rolled back), so a seq names one message for ever, as AUTOINCREMENT
  // does. `meta` is the message's kind and thread as JSON, NULL for plain text (as SQLite).
  `
  CREATE TABLE messages (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text COLLATE "C" NOT NULL UNIQUE,
    post_id text NOT NULL,
    route text NOT NULL,
    room text COLLATE "C" NOT NULL,
    nick text COLLATE "C" NOT NULL,
    body text NOT NULL,
    bytes integer NOT NULL,
    created_at bigint NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    meta text
  );
  -- pending(lane, limit, afterSeq) is one range scan of this index; lanes() hops along it.
  CREATE INDEX messages_lane ON messages (room, nick, seq);
  -- seq is the seq the message had in messages: unique, since it is never handed out twice.
  CREATE TABLE dead_letters (
    seq bigint PRIMARY KEY,
    id text COLLATE "C" NOT NULL UNIQUE,
    post_id text NOT NULL,
    route text NOT NULL,
    room text COLLATE "C" NOT NULL,
    nick text COLLATE "C" NOT NULL,
    body text NOT NULL,
    bytes integer NOT NULL,
    created_at bigint NOT NULL,
    attempts integer NOT NULL,
    last_error text,
    meta text,
    failed_at bigint NOT NULL,
    reason text NOT NULL
  );
  CREATE INDEX dead_letters_failed ON dead_letters (failed_at, seq);
  -- One row per post that claimed a key, with its message ids. An expired row counts as
  -- absent and is replaced by the next claim of its key; the sweep deletes along expires_at.
  CREATE TABLE dedupe (
    route text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    post_id text NOT NULL,
    ids text[] NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (route, key)
  );
  CREATE INDEX dedupe_expiry ON dedupe (expires_at);
  -- One row per (room, alert group): the room's record of the group's first message.
  CREATE TABLE threads (
    room text COLLATE "C" NOT NULL,
    grp text COLLATE "C" NOT NULL,
    stanza_id text NOT NULL,
    occupant text NOT NULL,
    quote text NOT NULL,
    resolved_at bigint,
    touched_at bigint NOT NULL,
    PRIMARY KEY (room, grp)
  );
  `,
  // 2: leases (issue 14: one sender per account), `postgres-lease.ts`. Times are the
  // database's (now()), never a replica's clock. Tokens come from one sequence, so that a
  // token is never handed out twice, not even after a row is deleted by hand: a token
  // names one holder's unbroken tenure, and fencing compares tokens only.
  `
  CREATE SEQUENCE lease_tokens AS bigint;
  CREATE TABLE leases (
    account text COLLATE "C" PRIMARY KEY,
    holder text NOT NULL,
    token bigint NOT NULL,
    renewed_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
  );
  `,
  // 3: how far each lane's sender got: the highest seq a claim handed out, raised by the
  // claim's own statement, so that a message is never sent before its lane's row says it
  // may have been. A takeover looks in the room only for messages at or below it. What is
  // queued at the upgrade may have been sent by the gateway before it: all of it counts.
  `
  CREATE TABLE send_marks (
    room text COLLATE "C" NOT NULL,
    nick text COLLATE "C" NOT NULL,
    upto bigint NOT NULL,
    PRIMARY KEY (room, nick)
  );
  INSERT INTO send_marks (room, nick, upto)
  SELECT room, nick, max(seq) FROM messages GROUP BY room, nick;
  -- Each raise of a mark and when (the gateway's clock, ms): nothing above the old mark
  -- was sent before it, so a rejoin reads the archive only from there. Rows below the
  -- lane's oldest queued message are swept.
  CREATE TABLE send_mark_log (
    room text COLLATE "C" NOT NULL,
    nick text COLLATE "C" NOT NULL,
    upto bigint NOT NULL,
    at bigint NOT NULL,
    PRIMARY KEY (room, nick, upto)
  );
  `,
];

/** The advisory lock (two int4 keys: "xmpp", 0) held by a migration: one replica migrates at a time. */
export const MIGRATION_LOCK = "pg_advisory_xact_lock(2020438128, 0)";

/**
 * Brings the database up to the newest schema, one transaction per migration, each under
 * MIGRATION_LOCK so that replicas starting at once apply each migration once; refuses a
 * database written by a newer gateway. `where` names the database in errors.
 */
export async function migratePostgres(
  client: Pick<ClientBase, "query">,
  where: string,
  migrations: readonly string[] = PG_MIGRATIONS,
): Promise<void> {
  for (;;) {
    await client.query("BEGIN");
    try {
      // DDL is transactional in PostgreSQL: a migration and its row commit together or
      // not at all (https://wiki.postgresql.org/wiki/Transactional_DDL_in_PostgreSQL:_A_Competitive_Analysis).
      await client.query(`SELECT ${MIGRATION_LOCK}`);
      await client.query(`CREATE TABLE IF NOT EXISTS schema_version (
        version integer PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const { rows } = await client.query(
        "SELECT coalesce(max(version), 0)::integer AS v FROM schema_version",
      );
      const version = Number(rows[0]?.v ?? 0);
      if (version > migrations.length) {
        throw new GatewayError(
          "UNAVAILABLE",
          `the spool database ${where} has schema version ${version}, but this xmpp-msg-gw knows versions up to ${migrations.length}: it was written by a newer xmpp-msg-gw; run that version, or point SPOOL_URL at an empty database`,
        );
      }
      const next = migrations[version];
      if (next === undefined) {
        await client.query("COMMIT");
        return;
      }
      await client.query(next);
      await client.query("INSERT INTO schema_version (version) VALUES ($1)", [version + 1]);
      await client.query("COMMIT");
    } catch (err) {
      await client.query("ROLLBACK").catch(() => {});
      throw err;
    }
  }
}
