/**
 * What the witness (witness.py) reports of a room message beyond its body and sender: the
 * room's XEP-0359 stanza-id, XEP-0461 reply, XEP-0428 fallbacks, XEP-0201 thread and
 * XEP-0444 reactions, and helpers to read them as a client would. Re-exported by witness.ts.
 */

/** A XEP-0461 reply reference: the message this one answers. */
export interface ReplyTo {
  /** The occupant JID (room/nick) that sent the message replied to. */
  readonly to?: string;
  /** The replied-to message's id: in a room, the stanza-id the room gave it (XEP-0461 business rules). */
  readonly id?: string;
}

/** One `<body/>` range of a XEP-0428 fallback. */
export interface FallbackRange {
  /** Offsets in Unicode code points; absent: the body's start or end (or malformed: see `error`). */
  readonly start?: number;
  readonly end?: number;
  /** The part of the body the range covers (cut by code points, by the witness). */
  readonly text?: string;
  /** Why `text` is missing: an offset not a non-negative integer, or past the body. */
  readonly error?: string;
}

/** A XEP-0428 `<fallback/>`: the part of the body that only clients without `for` need. */
export interface Fallback {
  /** The namespace it stands in for, e.g. "urn:xmpp:reply:0"; undefined if the attribute is missing. */
  readonly for: string | undefined;
  /** Its `<body/>` ranges, in document order; none means it covers no body text. */
  readonly bodies: readonly FallbackRange[];
}

/** A XEP-0444 reaction: emojis on one earlier message. */
export interface Reactions {
  /** The target's id: in a room, the stanza-id the room gave it (XEP-0444 business rules). */
  readonly id: string | undefined;
  /** The `<reaction/>` texts, in document order (all of the sender's current reactions). */
  readonly emojis: readonly string[];
}

/**
 * What a room message carries beyond its body, read by the witness from the raw stanza
 * (not by slixmpp's plugins); a field is absent when its element is.
 */
export interface MessageExtras {
  /** The XEP-0359 `<stanza-id/>` whose `by` is the room (any other is ignored: anyone can add one). */
  readonly stanzaId?: string;
  /** XEP-0461 `<reply/>`. */
  readonly reply?: ReplyTo;
  /** Every XEP-0428 `<fallback/>`, in document order. */
  readonly fallbacks?: readonly Fallback[];
  /** XEP-0201 `<thread/>` text ("" when empty). */
  readonly thread?: string;
  /** XEP-0444 `<reactions/>`: such a message usually has no body (then `body` is ""). */
  readonly reactions?: Reactions;
}

/** XEP-0461's namespace: what a reply's quoted fallback stands in for. */
const REPLY_NS = "urn:xmpp:reply:0";

/** `m`'s XEP-0428 fallback for `ns`; throws if one of its ranges is malformed. */
function fallbackFor(m: MessageExtras, ns: string): Fallback | undefined {
  const fallback = m.fallbacks?.find((f) => f.for === ns);
  const broken = fallback?.bodies.find((b) => b.error !== undefined);
  if (broken) throw new Error(`fallback for ${ns}: ${broken.error}`);
  return fallback;
}

/** The text that `m`'s XEP-0428 fallback for `ns` covers (all its ranges), or undefined without one. */
export function fallbackText(m: MessageExtras, ns = REPLY_NS): string | undefined {
  return fallbackFor(m, ns)
    ?.bodies.map((b) => b.text ?? "")
    .join("");
}

/**
 * `m`'s body as a client that understands `ns` shows it: without the ranges of its fallback
 * for `ns` (XEP-0428; offsets in code points). The whole body when there is none.
 */
export function bodyWithoutFallback(m: MessageExtras & { body: string }, ns = REPLY_NS): string {
  const fallback = fallbackFor(m, ns);
  if (fallback === undefined) return m.body;
  const chars = Array.from(m.body); // by code point, not UTF-16 unit
  const dropped = new Set<number>();
  for (const b of fallback.bodies)
    for (let i = b.start ?? 0; i < (b.end ?? chars.length); i++) dropped.add(i);
  return chars.filter((_, i) => !dropped.has(i)).join("");
}

/** The MessageExtras in one of witness.py's message records (it leaves out absent ones). */
export function extrasOf(e: Record<string, unknown>): MessageExtras {
  const text = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
  const num = (v: unknown): number | undefined => (typeof v === "number" ? v : undefined);
  const extras: {
    -readonly [K in keyof MessageExtras]: MessageExtras[K];
  } = {};
  if (typeof e.stanzaId === "string") extras.stanzaId = e.stanzaId;
  if (typeof e.thread === "string") extras.thread = e.thread;
  if (isRecord(e.reply)) {
    const to = text(e.reply.to);
    const id = text(e.reply.id);
    extras.reply = { ...(to !== undefined && { to }), ...(id !== undefined && { id }) };
  }
  if (Array.isArray(e.fallbacks)) {
    extras.fallbacks = e.fallbacks.filter(isRecord).map((f) => ({
      for: text(f.for),
      bodies: (Array.isArray(f.bodies) ? f.bodies.filter(isRecord) : []).map((b) => {
        const range: { -readonly [K in keyof FallbackRange]: FallbackRange[K] } = {};
        for (const key of ["start", "end"] as const) {
          const n = num(b[key]);
          if (n !== undefined) range[key] = n;
        }
        for (const key of ["text", "error"] as const) {
          const t = text(b[key]);
          if (t !== undefined) range[key] = t;
        }
        return range;
      }),
    }));
  }
  if (isRecord(e.reactions)) {
    const emojis = e.reactions.emojis;
    extras.reactions = {
      id: text(e.reactions.id),
      emojis: Array.isArray(emojis) ? emojis.map(String) : [],
    };
  }
  return extras;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
