/**
 * The contract of the thread anchors every Spool keeps (issue 13): the room's record of an
 * alert group's first message, kept while the group fires and for a while after it
 * resolved. Each implementation's test file calls `spoolAnchorContract` beside
 * `spoolContract`, with the same way to open it; the clock is a fake one.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ANCHOR_IDLE_TTL_MS, ANCHOR_RESOLVED_TTL_MS } from "./expiry.ts";
import type { OpenSpool, SpoolHarness } from "./spool.contract.ts";

const ROOM = "ops@conf.example.org";
const OTHER = "dev@conf.example.org";
const GROUP = "0123456789abcdef0123456789abcdef";
const T0 = 1_700_000_000_000;
const LIMITS = { maxMessages: 100, maxBytes: 100_000 };
const DAY = 24 * 60 * 60 * 1000;

const first = { stanzaId: "sid-1", occupant: `${ROOM}/bot`, quote: "🔥 FIRING: DiskFull" };
const second = { stanzaId: "sid-2", occupant: `${ROOM}/bot`, quote: "🔥 FIRING: DiskFull again" };

/** Registers the thread-anchor contract tests for one implementation. */
export function spoolAnchorContract(name: string, open: OpenSpool): void {
  const withSpool =
    (fn: (h: SpoolHarness, clock: { now: number }) => Promise<void>) => async () => {
      const clock = { now: T0 };
      const h = await open(LIMITS, { now: () => clock.now });
      try {
        await fn(h, clock);
      } finally {
        await h.cleanup();
      }
    };

  describe(`Spool contract, thread anchors: ${name}`, () => {
    test(
      "recorded, read back per (room, group), and kept over a reopen",
      withSpool(async (h) => {
        assert.equal(await h.spool.anchor(ROOM, GROUP), undefined);
        const write = h.spool.recordAnchor(ROOM, GROUP, first);
        if (h.readsAtCall) {
          assert.equal(await h.spool.anchor(ROOM, GROUP), undefined, "invisible until committed");
        }
        await write;
        assert.deepEqual(await h.spool.anchor(ROOM, GROUP), { ...first, resolvedAt: undefined });
        assert.equal(await h.spool.anchor(OTHER, GROUP), undefined, "another room");
        assert.equal(await h.spool.anchor(ROOM, "other-group"), undefined);
        const again = await h.reopen();
        assert.deepEqual(await again.anchor(ROOM, GROUP), { ...first, resolvedAt: undefined });
      }),
    );

    test(
      "an unresolved anchor is kept by a later record; a resolved one is replaced (fired again)",
      withSpool(async ({ spool }, clock) => {
        await spool.recordAnchor(ROOM, GROUP, first);
        await spool.recordAnchor(ROOM, GROUP, second);
        assert.deepEqual(await spool.anchor(ROOM, GROUP), { ...first, resolvedAt: undefined });
        clock.now = T0 + 5000;
        await spool.resolveAnchor(ROOM, GROUP, T0 + 4000);
        assert.deepEqual(await spool.anchor(ROOM, GROUP), { ...first, resolvedAt: T0 + 4000 });
        await spool.recordAnchor(ROOM, GROUP, second);
        assert.deepEqual(await spool.anchor(ROOM, GROUP), { ...second, resolvedAt: undefined });
      }),
    );

    test(
      "resolveAnchor keeps the first resolution time, and without an anchor does nothing",
      withSpool(async ({ spool }) => {
        await spool.resolveAnchor(ROOM, GROUP, T0);
        assert.equal(await spool.anchor(ROOM, GROUP), undefined);
        await spool.recordAnchor(ROOM, GROUP, first);
        await spool.resolveAnchor(ROOM, GROUP, T0 + 10);
        await spool.resolveAnchor(ROOM, GROUP, T0 + 20);
        assert.equal((await spool.anchor(ROOM, GROUP))?.resolvedAt, T0 + 10);
        assert.equal(await spool.anchor(OTHER, GROUP), undefined, "nothing made for another room");
      }),
    );

    test(
      "a resolved anchor expires 7 days after it resolved",
      withSpool(async ({ spool }, clock) => {
        assert.equal(ANCHOR_RESOLVED_TTL_MS, 7 * DAY);
        await spool.recordAnchor(ROOM, GROUP, first);
        clock.now = T0 + DAY;
        await spool.resolveAnchor(ROOM, GROUP, T0 + DAY);
        clock.now = T0 + 8 * DAY - 1;
        assert.equal((await spool.anchor(ROOM, GROUP))?.stanzaId, "sid-1");
        clock.now = T0 + 8 * DAY;
        assert.equal(await spool.anchor(ROOM, GROUP), undefined);
        // Gone for good: resolving again does not bring it back; a new record starts afresh.
        await spool.resolveAnchor(ROOM, GROUP, clock.now);
        assert.equal(await spool.anchor(ROOM, GROUP), undefined);
        await spool.recordAnchor(ROOM, GROUP, second);
        assert.deepEqual(await spool.anchor(ROOM, GROUP), { ...second, resolvedAt: undefined });
      }),
    );

    test(
      "any anchor expires 30 days after it was last recorded or resolved",
      withSpool(async ({ spool }, clock) => {
        assert.equal(ANCHOR_IDLE_TTL_MS, 30 * DAY);
        await spool.recordAnchor(ROOM, GROUP, first);
        clock.now = T0 + 20 * DAY;
        // Recorded again while unresolved: kept, and its 30 days start again.
        await spool.recordAnchor(ROOM, GROUP, second);
        clock.now = T0 + 50 * DAY - 1;
        assert.equal((await spool.anchor(ROOM, GROUP))?.stanzaId, "sid-1");
        clock.now = T0 + 50 * DAY;
        assert.equal(await spool.anchor(ROOM, GROUP), undefined);
        // An expired unresolved anchor is replaced, not kept, by the next record.
        await spool.recordAnchor(ROOM, GROUP, second);
        assert.deepEqual(await spool.anchor(ROOM, GROUP), { ...second, resolvedAt: undefined });
        // Resolved long ago by its own clock (a late confirmation): gone 7 days after `at`.
        await spool.resolveAnchor(ROOM, GROUP, clock.now - 7 * DAY);
        assert.equal(await spool.anchor(ROOM, GROUP), undefined);
      }),
    );

    test(
      "expired anchors stay gone after the sweep and a reopen; live ones stay",
      withSpool(async (h, clock) => {
        await h.spool.recordAnchor(ROOM, GROUP, first);
        await h.spool.recordAnchor(OTHER, GROUP, first);
        clock.now = T0 + 29 * DAY;
        await h.spool.recordAnchor(OTHER, GROUP, second); // touched: lives on
        clock.now = T0 + 31 * DAY;
        // A commit later than a minute after the last sweep deletes the expired anchor.
        await h.spool.recordAnchor(ROOM, "another", first);
        const spool = await h.reopen();
        assert.equal(await spool.anchor(ROOM, GROUP), undefined);
        assert.equal((await spool.anchor(OTHER, GROUP))?.stanzaId, "sid-1");
        assert.equal((await spool.anchor(ROOM, "another"))?.stanzaId, "sid-1");
      }),
    );
  });
}
