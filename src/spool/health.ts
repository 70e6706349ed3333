/**
 * Whether the SQLite spool can be written, for `/ready`: a load balancer must not send
 * posts to a gateway that can only answer them 503. The fact is what the last write
 * did: set by a commit that failed (read-only or full disk, a lock held too long),
 * cleared by one that went through, and, while it is down, tested again now and then
 * without waiting for a post. A commit also moves the high-water mark (`highwater.ts`);
 * a mark that cannot be written makes the spool not writable too, since start-up could
 * then no longer tell whether messages went missing.
 */

import { type HighWaterMark, openHighWater } from "./highwater.ts";
import { describe } from "./sqlite-open.ts";
import type { SpoolHealth } from "./types.ts";

/** While the spool cannot be written, `current()` tries a write this often at most. */
const PROBE_MS = 1000;

const WRITABLE: SpoolHealth = Object.freeze({ writable: true });

/** The writability fact of one open spool, and its high-water mark. */
export interface WriteHealth {
  /** A write failed: not writable, for this reason. */
  failed(why: string): void;
  /** A commit went through with `seq` the newest seq: the mark moves up, and the spool is writable. */
  committed(seq: number): void;
  /** The fact now; while it is "not writable", queues `probe` (at most once per PROBE_MS). */
  current(): SpoolHealth;
  /** Closes the mark file. */
  close(): Promise<void>;
}

/** Tracks the health of a spool whose mark file is `markFile`; `probe` is the smallest real write. */
export function trackHealth(markFile: string, probe: () => Promise<void>): WriteHealth {
  let health = WRITABLE;
  let failedAt = 0;
  let probing = false;
  let mark: HighWaterMark | undefined;

  function failed(why: string): void {
    health = { writable: false, error: why };
    failedAt = performance.now();
  }

  return {
    failed,
    committed(seq) {
      try {
        mark ??= openHighWater(markFile, seq);
        mark.advance(seq);
        health = WRITABLE;
      } catch (err) {
        mark?.close().catch(() => {});
        mark = undefined;
        failed(`the high-water mark ${markFile} could not be written: ${describe(err)}`);
      }
    },
    current() {
      if (!health.writable && !probing && performance.now() - failedAt >= PROBE_MS) {
        probing = true;
        probe()
          .catch(() => {}) // a failed probe has called failed() already
          .finally(() => {
            probing = false;
          });
      }
      return health;
    },
    async close() {
      await mark?.close();
      mark = undefined;
    },
  };
}
