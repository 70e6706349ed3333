/**
 * What a post is once the HTTP edge has parsed it, and what accepting it returns.
 */

/**
 * A post as it reaches the renderer: parsed JSON, or text sent verbatim. `source` is the
 * JSON text `value` came from, when the body was JSON: the `json` format needs it to print
 * a bare top-level number (`1.0`, a 23-digit integer) exactly as Python does.
 */
export type PostBody =
  | { kind: "json"; value: unknown; source?: string }
  | { kind: "text"; text: string };

/** The outcome reported to the caller: confirmed by every target, or still on its way. */
export interface Accepted {
  readonly id: string;
  readonly status: "delivered" | "queued";
  /** True when the post repeated an earlier one (its id and outcome), and nothing was sent. */
  readonly duplicate?: true;
}

/** How a post is accepted: whether the caller waits, and the key it gave (`Idempotency-Key`). */
export interface AcceptOptions {
  readonly wait: boolean;
  readonly idempotencyKey?: string;
}

/** What `?dry_run=1` shows: the rendered messages, where they would go, and how. */
export interface Preview {
  readonly messages: ReadonlyArray<{
    readonly to: string;
    readonly nick?: string;
    readonly body: string;
    /** XEP-0201 thread of an alert group's messages. */
    readonly thread?: string;
    /** XEP-0461: the room's stanza-id of the group's first message, which this one answers. */
    readonly reply_to?: string;
    /** XEP-0428: the quoted first line put before the body for clients without replies. */
    readonly fallback?: string;
    /** XEP-0444: a reaction (this emoji) to the group's first message, sent on resolve. */
    readonly reaction?: string;
  }>;
  /** Whether the post would be de-duplicated, and by what; absent when it would not be. */
  readonly dedupe?: {
    readonly by: "Idempotency-Key" | "alert content";
    /** The id of the earlier post it repeats, when it is a repeat now. */
    readonly duplicate_of?: string;
  };
}
