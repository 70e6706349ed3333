/**
 * The spool's start-up check: before the gateway writes to an existing spool file, it
 * makes sure the file is whole (`PRAGMA quick_check`) and still holds every message its
 * high-water mark (`highwater.ts`) says was accepted. A damaged spool stops start-up with
 * what is wrong and what to do; it is never silently emptied and sent from.
 */
import { existsSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { GatewayError } from "../core/errors.ts";
import { highWaterPath, readHighWater } from "./highwater.ts";

/** quick_check lines quoted in the error at most. */
const MAX_PROBLEMS = 3;

const refuse = (why: string) => new GatewayError("UNAVAILABLE", why);

/**
 * Checks the spool file at `path`, if there is one, and throws a GatewayError saying what
 * to do when it is damaged or misses messages. It reads through a read-only connection:
 * one that writes would checkpoint the WAL into the file and delete it on close, and a
 * refusal must leave every file as it found it, for whoever looks at them next.
 * quick_check reads the whole file: about 0.1 s per 100,000 queued messages.
 */
export function verifySpool(path: string): void {
  // No file: a new spool, or one moved away on purpose. A mark left behind is replaced.
  if (!existsSync(path)) return;
  const markFile = highWaterPath(path);
  // The mark first: it is only written after a commit, so any mark read now is covered
  // by what the database shows afterwards, even while another process (the gateway,
  // when this is the `spool` CLI) goes on writing.
  const mark = readHighWater(markFile);
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const problems = quickCheck(db);
    if (problems !== undefined) {
      throw refuse(
        `the spool ${path} is damaged: SQLite's PRAGMA quick_check reports: ${problems}. Nothing was changed, and nothing is sent from a damaged spool. Keep a copy of ${dirname(path)} (the spool file and its -wal) for a later look; then restore the spool from a backup, or salvage what is readable with the sqlite3 shell's .recover command into a new file put in its place, or move the spool files away to start with an empty spool (what they hold will not be sent)`,
      );
    }
    const seq = lastSeq(db);
    const left = queued(db);
    const holds = `${left} message(s)${seq > 0 ? `, up to #${seq}` : ""}`;
    if (mark.kind === "damaged") {
      throw refuse(
        `the spool's high-water mark ${markFile} is damaged (${mark.why}), so it cannot be told whether acknowledged messages are missing from the spool ${path}. The spool itself passed its integrity check and holds ${holds}. Nothing was changed. To start with what it holds, delete ${markFile} (a new one is written)`,
      );
    }
    if (mark.kind === "seq" && seq < mark.seq) {
      const has = seq > 0 ? `messages only up to #${seq}` : "none of them";
      throw refuse(
        `the spool ${path} is missing acknowledged messages: its high-water mark ${markFile} says messages up to #${mark.seq} were accepted, but the spool holds ${has}, so up to ${mark.seq - seq} acknowledged message(s) are gone (fewer if some had been delivered already). Its newest writes, kept in ${path}-wal, were damaged or lost while the gateway was stopped, or an older copy of the spool was put back. Nothing was changed. Keep a copy of ${dirname(path)} for a later look, and restore the spool from a backup if there is one; to start anyway with the ${left} message(s) left, delete ${markFile}`,
      );
    }
  } finally {
    db.close();
  }
}

/** quick_check's findings, undefined when it says "ok"; a file too damaged to check is a finding too. */
function quickCheck(db: DatabaseSync): string | undefined {
  let rows: string[];
  try {
    rows = db
      .prepare("PRAGMA quick_check")
      .all()
      .map((r) => String(r.quick_check));
  } catch (err) {
    return (err as Error).message;
  }
  if (rows.length === 1 && rows[0] === "ok") return undefined;
  const shown = rows.slice(0, MAX_PROBLEMS).join("; ").replaceAll("\n", " ");
  return rows.length > MAX_PROBLEMS ? `${shown}; and ${rows.length - MAX_PROBLEMS} more` : shown;
}

/** Whether a table exists: a WAL lost before the first checkpoint leaves a file with no schema. */
function hasTable(db: DatabaseSync, name: string): boolean {
  return (
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !==
    undefined
  );
}

/** The highest seq ever handed out: AUTOINCREMENT keeps it in sqlite_sequence (https://www.sqlite.org/autoinc.html). */
function lastSeq(db: DatabaseSync): number {
  if (!hasTable(db, "sqlite_sequence")) return 0;
  const row = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").get();
  return Number(row?.seq ?? 0);
}

function queued(db: DatabaseSync): number {
  if (!hasTable(db, "messages")) return 0;
  return Number(db.prepare("SELECT count(*) AS n FROM messages").get()?.n ?? 0);
}
