/**
 * The spool's rows as both SQL spools store them (SQLite and PostgreSQL share the columns):
 * a row back to a message or dead letter, and a message's `meta` column.
 */
import type { DeadLetter, NewMessage, SpooledMessage } from "./types.ts";

/** A row as a driver returns it: column name → value. */
export type Row = Readonly<Record<string, unknown>>;

/** The `meta` column: what a message is for beside its body. */
type Meta = Pick<NewMessage, "kind" | "thread">;

/** The `meta` of `m`: NULL for a plain message (no kind, no thread), else the JSON of both. */
export function metaOf(m: NewMessage): string | null {
  const { kind, thread } = m;
  if (kind === undefined && thread === undefined) return null;
  const meta: Meta = { kind, thread: thread && { group: thread.group, status: thread.status } };
  return JSON.stringify(meta);
}

export function toMessage(r: Row): SpooledMessage {
  const m: { -readonly [K in keyof SpooledMessage]: SpooledMessage[K] } = {
    seq: Number(r.seq),
    id: String(r.id),
    postId: String(r.post_id),
    route: String(r.route),
    room: String(r.room),
    nick: String(r.nick),
    body: String(r.body),
    createdAt: Number(r.created_at),
    attempts: Number(r.attempts),
    lastError: r.last_error === null ? undefined : String(r.last_error),
  };
  // Absent, not undefined, when not stored: as the NewMessage that was queued.
  if (r.meta !== null) {
    const { kind, thread } = JSON.parse(String(r.meta)) as Meta;
    if (kind !== undefined) m.kind = kind;
    if (thread !== undefined) m.thread = thread;
  }
  return m;
}

export function toDeadLetter(r: Row): DeadLetter {
  return { ...toMessage(r), failedAt: Number(r.failed_at), reason: String(r.reason) };
}
