/**
 * `xmpp-msg-gw spool list | retry [id…] | purge [id…]`: the operator's view of the dead
 * letters. It may run while the gateway runs: the spool is in WAL mode, so this process
 * reads without blocking the gateway and its short writes wait for the gateway's
 * (busy_timeout); the gateway picks retried messages up on its next scan.
 */
import { existsSync } from "node:fs";
import type { Env } from "../config/env-file.ts";
import { loadSpoolSettings } from "../config/index.ts";
import type { DeadLetter, Spool } from "../spool/types.ts";

/** Usage of the `spool` command, part of the CLI's usage text. */
export const SPOOL_USAGE = `  spool list         list the dead letters: messages that will not be delivered
  spool retry ID…    queue these dead letters again (--all: every one)
  spool purge ID…    delete these dead letters for good (--all: every one)
                     the spool is DATA_DIR/spool.sqlite (DATA_DIR defaults to ./data)`;

const BODY_CHARS = 60;

/** Control characters (newlines, tabs) would break the table's rows. */
function oneLine(s: string): string {
  return s.replace(/[\p{Cc}\u2028\u2029]+/gu, " ");
}

function preview(body: string): string {
  const chars = [...oneLine(body)];
  return chars.length > BODY_CHARS ? `${chars.slice(0, BODY_CHARS).join("")}…` : chars.join("");
}

/** The dead letters as an aligned table, one row each, with a header. */
export function formatDeadLetters(dead: readonly DeadLetter[]): string {
  const header = ["ID", "ROOM", "NICK", "FAILED AT", "ATTEMPTS", "REASON", "BODY"];
  const rows = dead.map((d) => [
    d.id,
    d.room,
    oneLine(d.nick),
    new Date(d.failedAt).toISOString(),
    String(d.attempts),
    oneLine(d.reason),
    preview(d.body),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  return [header, ...rows]
    .map((r) =>
      r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join("  "),
    )
    .join("\n");
}

function usageError(message: string): number {
  process.stderr.write(`xmpp-msg-gw spool: ${message}\n\nUsage:\n${SPOOL_USAGE}\n`);
  return 2;
}

/** Runs `spool <action> [id…]`; resolves with the exit code (0 ok, 1 failure, 2 usage). */
export async function spool(env: Env, flags: { all?: boolean }, args: string[]): Promise<number> {
  const [action, ...ids] = args;
  if (action !== "list" && action !== "retry" && action !== "purge") {
    return usageError(
      action === undefined ? "say list, retry or purge" : `unknown action "${action}"`,
    );
  }
  if (action === "list" && (ids.length > 0 || flags.all)) {
    return usageError("list takes no ids and no --all");
  }
  if (action !== "list" && ids.length === 0 && !flags.all) {
    // Without ids the action would touch every dead letter: make that explicit.
    return usageError(`${action} needs the ids to ${action}, or --all for every dead letter`);
  }
  if (action !== "list" && ids.length > 0 && flags.all) {
    return usageError(`give either ids or --all, not both`);
  }
  const settings = loadSpoolSettings(env);
  // Loaded here, not at the top: the usage text above is part of every command's --help,
  // and node:sqlite prints an ExperimentalWarning on Node 22 when it is loaded.
  const { openSpool } = await import("../spool/open.ts");
  const { spoolPath } = await import("../spool/sqlite-open.ts");
  const path = spoolPath(settings.dataDir);
  if (settings.spoolUrl === undefined && !existsSync(path)) {
    process.stderr.write(
      `xmpp-msg-gw spool: no spool at ${path}; set DATA_DIR to the gateway's data directory\n`,
    );
    return 1;
  }
  const store = await openSpool(settings);
  try {
    return action === "list" ? await list(store) : await change(store, action, ids);
  } finally {
    await store.close();
  }
}

async function list(store: Spool): Promise<number> {
  const dead = await store.listDead();
  if (dead.length === 0) {
    process.stdout.write("no dead letters\n");
    return 0;
  }
  process.stdout.write(`${formatDeadLetters(dead)}\n`);
  return 0;
}

async function change(store: Spool, action: "retry" | "purge", ids: string[]): Promise<number> {
  const known = new Set((await store.listDead()).map((d) => d.id));
  const missing = ids.filter((id) => !known.has(id));
  const selected = ids.length > 0 ? ids : undefined;
  const n = action === "retry" ? await store.retryDead(selected) : await store.purgeDead(selected);
  const verb = action === "retry" ? "queued again" : "purged";
  process.stdout.write(`${n} dead letter${n === 1 ? "" : "s"} ${verb}\n`);
  if (missing.length > 0) {
    process.stderr.write(`xmpp-msg-gw spool: not a dead letter: ${missing.join(", ")}\n`);
    return 1;
  }
  return 0;
}
