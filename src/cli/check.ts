/**
 * `xmpp-msg-gw check`: validates the configuration, opens the spool, logs in as every
 * sender and joins every room, prints a table of what works, and exits non-zero with an
 * actionable message for each problem. Nothing is sent to any room.
 */
import type { Env } from "../config/env-file.ts";
import { type Config, loadConfig } from "../config/index.ts";
import { systemClock } from "../core/clock.ts";
import { accountsOf, laneOf, roomPasswords, topologyOf } from "../core/routes.ts";
import { createDeliveryLoop } from "../delivery/loop.ts";
import { settled } from "../delivery/readiness.ts";
import { createLogger } from "../log.ts";
import { createMemorySpool } from "../spool/memory.ts";
import { openSpool, spoolPlace } from "../spool/open.ts";
import { spoolPath } from "../spool/sqlite.ts";
import { createXmppCarrier } from "../xmpp/carrier.ts";
import { serviceUri } from "../xmpp/faults.ts";
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
  // The spool `serve` would use: PostgreSQL with SPOOL_URL, else SQLite in DATA_DIR.
  const setting = config.spoolUrl === undefined ? "DATA_DIR" : "SPOOL_URL";
  const place = config.spoolUrl === undefined ? spoolPath(config.dataDir) : spoolPlace(config);
  try {
    const spool = await openSpool(config);
    const stats = spool.stats();
    await spool.close();
    rows.push({
      what: "spool",
      ok: true,
      detail: `${place}: ${stats.messages} queued, ${stats.deadLetters} dead letter(s)`,
    });
  } catch (err) {
    rows.push({ what: "spool", ok: false, detail: `${(err as Error).message} — check ${setting}` });
  }
  try {
    configureTrust(config.xmpp.caFile);
  } catch (err) {
    rows.push({ what: "TLS trust", ok: false, detail: (err as Error).message });
    return rows;
  }
  // The gateway's own loop and carrier over an empty spool: the check sees what `/ready`
  // would, session limits included, and sends nothing.
  const topology = topologyOf(config.routes);
  const accounts = accountsOf(config.routes);
  const accountOf = (nick: string) => accounts.get(nick)?.jid ?? config.xmpp.jid;
  const log = createLogger("silent");
  const carrier = createXmppCarrier({
    settings: config.xmpp,
    nicks: topology.keys(),
    passwords: roomPasswords(config.routes),
    accounts,
    // Resources of its own: the running gateway's sessions stay as they are.
    resourceSuffix: "-check",
    log,
    clock: systemClock,
    selfPingMs: 0,
  });
  const loop = createDeliveryLoop({
    spool: createMemorySpool({ limits: { maxMessages: 1, maxBytes: 1 } }),
    carrier,
    topology,
    log,
    accountOf,
    ttlMs: config.messageTtlMs,
  });
  const via = serviceUri(config.xmpp);
  try {
    loop.start();
    // Settled: every session up with every room joined or refused, or down with a reason;
    // then a moment more, for a server that replaces sessions over its limit.
    const deadline = Date.now() + SESSION_TIMEOUT_MS;
    while (!settled(loop.readiness()) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    if (topology.size > 1) await new Promise((r) => setTimeout(r, 1000));
    for (const session of loop.readiness().sessions) {
      const who = session.nick === "" ? "direct messages" : `nick ${session.nick}`;
      if (!session.online) {
        rows.push({
          what: `login (${who})`,
          ok: false,
          detail: `${accountOf(session.nick)} via ${via}: ${session.lastError ?? `no answer within ${SESSION_TIMEOUT_MS / 1000} s`}`,
        });
        continue;
      }
      rows.push({
        what: `login (${who})`,
        ok: true,
        detail: `${accountOf(session.nick)} via ${via}`,
      });
      for (const room of session.rooms) {
        const ok = room.state === "joined";
        const condition = room.lastError?.split(/[ (:]/)[0] ?? "";
        const advice = ok ? "" : hint(condition, accountOf(session.nick));
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
    await loop.drain(0);
    await carrier.close(2000);
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
