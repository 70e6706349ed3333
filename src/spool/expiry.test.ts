// The sweep of expired claims and anchors, in both spools: a caller cannot see it (an
// expired row is ignored at once), so these tests look at what is stored.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { ANCHOR_IDLE_TTL_MS, ANCHOR_RESOLVED_TTL_MS, SWEEP_INTERVAL_MS } from "./expiry.ts";
import { createMemorySpool, createMemoryStore } from "./memory.ts";
import { openSqliteSpool, spoolPath } from "./sqlite.ts";
import type { Spool } from "./types.ts";

const LIMITS = { maxMessages: 1000, maxBytes: 1_000_000 };
const LANE = { room: "ops@conf.example.org", nick: "bot" };
const T0 = 1_700_000_000_000;
const DAY = 24 * 60 * 60 * 1000;

/** How many claims and anchors are stored. */
type Rows = () => { claims: number; anchors: number };

/** Opens a spool on the clock `now`, with a way to count its stored rows. */
type Open = (now: () => number) => { spool: Spool; rows: Rows; cleanup(): void };

const openSqlite: Open = (now) => {
  const dir = mkdtempSync(join(tmpdir(), "gw-expiry-"));
  const path = spoolPath(dir);
  const spool = openSqliteSpool({ path, limits: LIMITS, now });
  const peek = new DatabaseSync(path, { readOnly: true });
  const count = (table: string) =>
    Number(peek.prepare(`SELECT count(*) AS n FROM ${table}`).get()?.n);
  return {
    spool,
    rows: () => ({ claims: count("dedupe"), anchors: count("threads") }),
    cleanup() {
      peek.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
};

const openMemory: Open = (now) => {
  const store = createMemoryStore();
  return {
    spool: createMemorySpool({ limits: LIMITS, now, store }),
    rows: () => ({ claims: store.claims.size, anchors: store.anchors.size }),
    cleanup() {},
  };
};

for (const [name, open] of [
  ["SQLite", openSqlite],
  ["memory", openMemory],
] as const) {
  test(`${name}: expired claims and anchors are deleted in a commit, at most once a minute`, async () => {
    let clock = T0;
    const { spool, rows, cleanup } = open(() => clock);
    let n = 0;
    const post = () => {
      n += 1;
      return [{ ...LANE, postId: `p${n}`, id: `m${n}`, route: "r", body: "x" }];
    };
    const anchor = { stanzaId: "s", occupant: `${LANE.room}/bot`, quote: "q" };
    try {
      // The first commit sweeps (nothing yet); the next sweep is due a minute later.
      await spool.enqueueOnce(post(), { route: "r", key: "short", expiresAt: T0 + 1000 });
      await spool.enqueueOnce(post(), { route: "r", key: "long", expiresAt: T0 + 100 * DAY });
      await spool.recordAnchor(LANE.room, "resolved", anchor);
      await spool.resolveAnchor(LANE.room, "resolved", T0);
      await spool.recordAnchor(LANE.room, "idle", anchor);
      assert.deepEqual(rows(), { claims: 2, anchors: 2 });

      clock = T0 + SWEEP_INTERVAL_MS - 1; // "short" expired, but no sweep is due
      await spool.delivered(["m1"]);
      assert.deepEqual(rows(), { claims: 2, anchors: 2 });
      clock = T0 + SWEEP_INTERVAL_MS;
      await spool.delivered(["m1"]);
      assert.deepEqual(rows(), { claims: 1, anchors: 2 });

      clock = T0 + ANCHOR_RESOLVED_TTL_MS;
      await spool.delivered([]);
      assert.deepEqual(rows(), { claims: 1, anchors: 1 }, "resolved 7 days ago");
      clock = T0 + ANCHOR_IDLE_TTL_MS;
      await spool.delivered([]);
      assert.deepEqual(rows(), { claims: 1, anchors: 0 }, "untouched for 30 days");
      // The live claim still holds.
      const again = await spool.enqueueOnce(post(), { route: "r", key: "long", expiresAt: 0 });
      assert.equal(again.duplicate, true);
    } finally {
      await spool.close();
      cleanup();
    }
  });
}
