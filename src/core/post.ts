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
}

/** What `?dry_run=1` shows: the rendered messages and where they would go. */
export interface Preview {
  readonly messages: ReadonlyArray<{
    readonly to: string;
    readonly nick?: string;
    readonly body: string;
  }>;
}
