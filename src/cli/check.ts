/**
 * `xmpp-msg-gw check`: validates the configuration, opens the spool, logs in as every
 * sender and joins every room, prints a table of what works, and exits non-zero with an
 * actionable message for each problem. Nothing is sent to any room.
 */
import type { Env } from "../config/env-file.ts";
import { type Config, loadConfig } from "../config/index.ts";
import { laneOf } from "../core/routes.ts";
import { createLogger } from "../log.ts";
import { openSqliteSpool, spoolPath } from "../spool/sqlite.ts";
import { serviceUri } from "../xmpp/connection.ts";
import { createSessionPool } from "../xmpp/pool.ts";
import { configureTrust } from "../xmpp/trust.ts";

/** One row of the report. */
export interface CheckRow {
  readonly what: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** How long one login and its joins may take before the check calls it failed. */
const SESSION_TIMEOUT_MS = 20_000;

/** What an operator can do about a refusal, by its condition (RFC 6120, XEP-0045). */
export function hint(condition: string, jid: string): string {
  const hints: Record<string, string> = {
    "registration-required": `the room is members-only: make ${jid} a member`,
    forbidden: `${jid} is banned from the room, or not allowed in`,
    conflict: "another occupant uses this nick: choose another nick",
    "not-authorized": "the room needs a password: set password in CONFIG_FILE",
    "item-not-found": `the room does not exist and ${jid} may not create it`,
    "not-allowed": `the room does not exist and ${jid} may not create it`,
    "service-unavailable": "the room is full, or the MUC service is down",
  };
  return hints[condition] ?? "";
}

/** Renders rows as an aligned table. */
export function formatRows(rows: readonly CheckRow[]): string {
  const width = Math.max(...rows.map((r) => r.what.length));
  return rows
    .map((r) => `${r.ok ? " ok " : "FAIL"}  ${r.what.padEnd(width)}  ${r.detail}`)
    .join("\n");
}

/** Runs every check; the rows say what works and what does not. */
export async function runChecks(config: Config): Promise<CheckRow[]> {
  const rows: CheckRow[] = [];
  const names = config.routes.map((r) => r.name).join(", ");
  rows.push({
    what: "configuration",
    ok: true,
    detail: `${config.routes.length} route(s): ${names}`,
  });
  try {
    const spool = openSqliteSpool({ path: spoolPath(config.dataDir), limits: config.spool });
    const stats = spool.stats();
    await spool.close();
    rows.push({
      what: "spool",
      ok: true,
      detail: `${spoolPath(config.dataDir)}: ${stats.messages} queued, ${stats.deadLetters} dead letter(s)`,
    });
  } catch (err) {
    rows.push({ what: "spool", ok: false, detail: `${(err as Error).message} — check DATA_DIR` });
  }
  try {
    configureTrust(config.xmpp.caFile);
  } catch (err) {
    rows.push({ what: "TLS trust", ok: false, detail: (err as Error).message });
    return rows;
  }
  const pool = createSessionPool({
    settings: config.xmpp,
    routes: config.routes,
    log: createLogger("silent"),
  });
  const via = serviceUri(config.xmpp);
  try {
    for (const session of pool.sessions.values()) {
      const who = session.nick === "" ? "direct messages" : `nick ${session.nick}`;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${SESSION_TIMEOUT_MS / 1000} s`)),
          SESSION_TIMEOUT_MS,
        );
      });
      try {
        await Promise.race([session.start(), timeout]).catch(() => {});
      } finally {
        clearTimeout(timer);
      }
      // A refused room fails start() at once: let the others finish joining first.
      const settleBy = Date.now() + 5000;
      const unsettled = () =>
        [...session.rooms.values()].some((r) => r.phase === "joining" || r.phase === "offline");
      while (session.online && unsettled() && Date.now() < settleBy)
        await new Promise((r) => setTimeout(r, 50));
      if (!session.online) {
        const error = session.lastError ?? "could not connect";
        rows.push({
          what: `login (${who})`,
          ok: false,
          detail: `${config.xmpp.jid} via ${via}: ${error}`,
        });
        continue;
      }
      rows.push({ what: `login (${who})`, ok: true, detail: `${config.xmpp.jid} via ${via}` });
      for (const room of session.rooms.values()) {
        const ok = room.phase === "joined";
        const condition = room.lastError?.split(/[ (:]/)[0] ?? "";
        const advice = ok ? "" : hint(condition, config.xmpp.jid);
        rows.push({
          what: `room ${room.room}`,
          ok,
          detail: ok
            ? `joined as ${session.nick}`
            : `as ${session.nick}: ${room.lastError ?? "not joined"}${advice ? ` — ${advice}` : ""}`,
        });
      }
    }
    const users = new Set(
      config.routes.flatMap((r) =>
        r.targets.filter((t) => t.kind === "user").map((t) => laneOf(t).room),
      ),
    );
    for (const user of users)
      rows.push({
        what: `user ${user}`,
        ok: true,
        detail: "direct messages (not sent by the check)",
      });
  } finally {
    await pool.stop();
  }
  return rows;
}

/** The `check` command: prints the report; 0 when everything works, 1 otherwise, 2 for a bad configuration. */
export async function check(env: Env): Promise<number> {
  const config = loadConfig(env); // a ConfigError is printed by the CLI with exit code 2
  const rows = await runChecks(config);
  process.stdout.write(`${formatRows(rows)}\n`);
  const failed = rows.filter((r) => !r.ok).length;
  process.stdout.write(failed === 0 ? "everything works\n" : `${failed} problem(s)\n`);
  return failed === 0 ? 0 : 1;
}
