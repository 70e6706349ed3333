/**
 * The contract every Spool implementation must keep (STYLE rule 9): each implementation's
 * test file calls `spoolContract` with a way to open it.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { GatewayError } from "../core/errors.ts";
import type { NewMessage, Spool, SpoolLimits } from "./types.ts";

/** One opened spool under test, and how to get at the same storage again. */
export interface SpoolHarness {
  readonly spool: Spool;
  /** Closes the current spool (unless already closed) and opens the same storage again. */
  reopen(): Promise<Spool>;
  /** Commits so far, when the implementation can tell: the group-commit test needs it. */
  commits?(): number;
  /**
   * True when a read is answered from what was committed at the moment it was called
   * (SQLite and memory do the read at the call): the contract then also checks that a
   * write is invisible before its commit. Leave it unset for a database server, whose
   * read may run after a commit that was requested later.
   */
  readonly readsAtCall?: boolean;
  /** Closes and deletes everything the harness created. */
  cleanup(): Promise<void>;
}

/** Opens an empty spool with the given limits, and the clock when given (ms since the epoch). */
export type OpenSpool = (
  limits: SpoolLimits,
  opts?: { readonly now?: () => number },
) => Promise<SpoolHarness>;

const ROOMY: SpoolLimits = { maxMessages: 10_000, maxBytes: 10_000_000 };
const A = { room: "a@conf.example.org", nick: "bot" };
const B = { room: "b@conf.example.org", nick: "bot" };
const A2 = { room: "a@conf.example.org", nick: "other" };

let counter = 0;

/** A message to `lane` with a fresh id. */
export function message(lane: { room: string; nick: string }, body: string): NewMessage {
  counter += 1;
  return { postId: `p${counter}`, id: `m${counter}-${body}`, route: "r", ...lane, body };
}

/** Awaits `p`, which must reject with a GatewayError of `code`; returns the error. */
export async function rejectsWith(p: Promise<unknown>, code: string): Promise<GatewayError> {
  const err = await p.then(
    () => assert.fail(`expected a ${code} rejection`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof GatewayError && err.code === code, `expected ${code}, got ${err}`);
  return err;
}

/** Registers the contract tests for one implementation. */
export function spoolContract(name: string, open: OpenSpool): void {
  const withSpool = (limits: SpoolLimits, fn: (h: SpoolHarness) => Promise<void>) => async () => {
    const h = await open(limits);
    try {
      await fn(h);
    } finally {
      await h.cleanup();
    }
  };
  const bodies = async (s: Spool, lane: typeof A, after?: number) =>
    (await s.pending(lane, 100, after)).map((m) => m.body);

  describe(`Spool contract: ${name}`, () => {
    test(
      "keeps insertion order per lane (room + nick), with lanes interleaved",
      withSpool(ROOMY, async ({ spool }) => {
        const [a1] = await spool.enqueue([message(A, "a1")]);
        await spool.enqueue([message(B, "b1"), message(A, "a2")]);
        await spool.enqueue([message(A2, "x1")]);
        await spool.enqueue([message(A, "a3"), message(B, "b2")]);
        assert.deepEqual(await bodies(spool, A), ["a1", "a2", "a3"]);
        assert.deepEqual(await bodies(spool, B), ["b1", "b2"]);
        assert.deepEqual(await bodies(spool, A2), ["x1"]);
        const lanes = (await spool.lanes()).map((l) => `${l.room}/${l.nick}`);
        assert.deepEqual(lanes.toSorted(), [A, A2, B].map((l) => `${l.room}/${l.nick}`).toSorted());
        assert.equal(a1?.attempts, 0);
        assert.equal(a1?.lastError, undefined);
        assert.equal(typeof a1?.createdAt, "number");
        const all = await spool.pending(A, 100);
        assert.ok(all.every((m, i) => i === 0 || m.seq > (all[i - 1]?.seq ?? 0)));
        assert.deepEqual(await bodies(spool, A, a1?.seq), ["a2", "a3"], "afterSeq skips");
        assert.deepEqual(
          (await spool.pending(A, 2)).map((m) => m.body),
          ["a1", "a2"],
          "limit",
        );
        assert.deepEqual(spool.stats(), { messages: 6, bytes: 12, deadLetters: 0 });
      }),
    );

    test(
      "what was acknowledged is there after close and reopen, in order",
      withSpool(ROOMY, async (h) => {
        for (let i = 0; i < 20; i++) await h.spool.enqueue([message(i % 2 ? A : B, `m${i}`)]);
        const again = await h.reopen();
        assert.deepEqual(await bodies(again, A), [
          "m1",
          "m3",
          "m5",
          "m7",
          "m9",
          "m11",
          "m13",
          "m15",
          "m17",
          "m19",
        ]);
        assert.deepEqual(await bodies(again, B), [
          "m0",
          "m2",
          "m4",
          "m6",
          "m8",
          "m10",
          "m12",
          "m14",
          "m16",
          "m18",
        ]);
        assert.equal(again.stats().messages, 20);
      }),
    );

    test(
      "close flushes writes that were requested but not yet committed",
      withSpool(ROOMY, async (h) => {
        const pending = h.spool.enqueue([message(A, "late")]);
        await h.spool.close();
        await pending;
        assert.deepEqual(await bodies(await h.reopen(), A), ["late"]);
      }),
    );

    test(
      "delivered removes; an unknown id is harmless",
      withSpool(ROOMY, async ({ spool }) => {
        const [m1, m2] = await spool.enqueue([message(A, "one"), message(A, "two")]);
        await spool.delivered([m1?.id ?? "", "no-such-id"]);
        assert.deepEqual(await bodies(spool, A), ["two"]);
        assert.deepEqual(spool.stats(), { messages: 1, bytes: 3, deadLetters: 0 });
        await spool.delivered([m2?.id ?? ""]);
        assert.deepEqual(await spool.lanes(), []);
        assert.deepEqual(spool.stats(), { messages: 0, bytes: 0, deadLetters: 0 });
      }),
    );

    test(
      "claim reads as pending does, and the lane's send mark covers what it returned, after a reopen too",
      withSpool(ROOMY, async (h) => {
        const stored = await h.spool.enqueue(["c1", "c2", "c3", "c4"].map((b) => message(A, b)));
        await h.spool.enqueue([message(B, "other lane")]);
        const [s1, s2, , s4] = stored.map((m) => m.seq);
        assert.ok(s1 !== undefined && s2 !== undefined && s4 !== undefined);
        const claimed = await h.spool.claim(A, 2, 0);
        assert.deepEqual(
          claimed.map((m) => m.body),
          ["c1", "c2"],
        );
        assert.deepEqual(claimed, await h.spool.pending(A, 2), "the same rows as pending");
        assert.ok((await h.spool.sentUpTo(A)) >= s2, "covers the last claimed");
        assert.deepEqual(
          (await h.spool.claim(A, 10, s2)).map((m) => m.body),
          ["c3", "c4"],
          "afterSeq",
        );
        assert.deepEqual(await h.spool.claim(A, 10, s4), [], "nothing left: nothing claimed");
        const reopened = await h.reopen();
        assert.ok((await reopened.sentUpTo(A)) >= s4, "durable");
        await reopened.claim(A, 1, 0); // a resend from the start never lowers it
        assert.ok((await reopened.sentUpTo(A)) >= s4);
      }),
    );

    test("sentSince: when the mark first covered a seq, between the message's acceptance and its first claim", async () => {
      const clock = { now: 1_700_000_000_000 };
      const h = await open(ROOMY, { now: () => clock.now });
      try {
        const early = await h.spool.enqueue(["s1", "s2"].map((b) => message(A, b)));
        clock.now += 60_000;
        const late = await h.spool.enqueue(["s3"].map((b) => message(A, b)));
        const [e1, e2] = early;
        const [l1] = late;
        assert.ok(e1 && e2 && l1);
        clock.now += 60_000;
        const firstClaim = clock.now;
        await h.spool.claim(A, 2, 0);
        clock.now += 60_000;
        const secondClaim = clock.now;
        await h.spool.claim(A, 10, e2.seq);
        for (const [m, claimedAt] of [
          [e1, firstClaim],
          [e2, firstClaim],
          [l1, secondClaim],
        ] as const) {
          const since = await h.spool.sentSince(A, m.seq);
          assert.ok(since !== undefined, `known for ${m.body}`);
          assert.ok(since >= m.createdAt && since <= claimedAt, `${m.body}: ${since}`);
        }
        // The marks only grow: a later seq was never covered before an earlier one.
        const s1 = (await h.spool.sentSince(A, e1.seq)) ?? 0;
        assert.ok(((await h.spool.sentSince(A, l1.seq)) ?? 0) >= s1);
        assert.equal(await h.spool.sentSince(A, l1.seq + 1_000), undefined, "never covered");
      } finally {
        await h.cleanup();
      }
    });

    test(
      "recordFailure counts attempts and keeps the last error",
      withSpool(ROOMY, async (h) => {
        const [m] = await h.spool.enqueue([message(A, "x")]);
        await h.spool.recordFailure(m?.id ?? "", "timeout");
        await h.spool.recordFailure(m?.id ?? "", "connection-lost");
        await h.spool.recordFailure("no-such-id", "ignored");
        const [after] = await (await h.reopen()).pending(A, 1);
        assert.equal(after?.attempts, 2);
        assert.equal(after?.lastError, "connection-lost");
      }),
    );

    test(
      "dead letters: listed oldest first, retried at the end of their lane, purged",
      withSpool(ROOMY, async (h) => {
        const [d1, keep, d2] = await h.spool.enqueue([
          message(A, "d1"),
          message(A, "keep"),
          message(B, "d2"),
        ]);
        await h.spool.recordFailure(d1?.id ?? "", "forbidden");
        await h.spool.deadLetter(d1?.id ?? "", "not allowed in the room");
        await h.spool.deadLetter(d2?.id ?? "", "expired");
        await h.spool.deadLetter("no-such-id", "ignored");
        let spool = await h.reopen();
        assert.deepEqual(spool.stats(), { messages: 1, bytes: 4, deadLetters: 2 });
        const dead = await spool.listDead();
        assert.deepEqual(
          dead.map((d) => [d.id, d.body, d.reason, d.attempts, d.lastError]),
          [
            [d1?.id, "d1", "not allowed in the room", 1, "forbidden"],
            [d2?.id, "d2", "expired", 0, undefined],
          ],
        );
        assert.ok(dead.every((d) => typeof d.failedAt === "number"));
        assert.equal((await spool.listDead(1)).length, 1);

        assert.equal(await spool.retryDead([d1?.id ?? "", "no-such-id"]), 1);
        spool = await h.reopen();
        const lane = await spool.pending(A, 10);
        assert.deepEqual(
          lane.map((m) => m.body),
          ["keep", "d1"],
        );
        const retried = lane[1];
        assert.equal(retried?.id, d1?.id, "same id (the dedupe key)");
        assert.ok(
          (retried?.seq ?? 0) > (keep?.seq ?? Infinity),
          "a new seq at the end of its lane",
        );
        assert.equal(retried?.attempts, 0);
        assert.deepEqual(spool.stats(), { messages: 2, bytes: 6, deadLetters: 1 });

        await spool.deadLetter(keep?.id ?? "", "r1");
        await spool.deadLetter(retried?.id ?? "", "r2");
        assert.equal(await spool.purgeDead([d2?.id ?? ""]), 1);
        assert.deepEqual(
          (await spool.listDead()).map((d) => d.body),
          ["keep", "d1"],
        );
        assert.equal(await spool.retryDead(), 2);
        assert.deepEqual(await bodies(spool, A), ["keep", "d1"]);
        await spool.deadLetter(keep?.id ?? "", "again");
        assert.equal(await spool.purgeDead(), 1);
        assert.deepEqual(await spool.listDead(), []);
        assert.deepEqual(spool.stats(), { messages: 1, bytes: 2, deadLetters: 0 });
      }),
    );

    test(
      "capacity by count: a post that does not fit is refused whole, and nothing changes",
      withSpool({ maxMessages: 3, maxBytes: 1_000_000 }, async ({ spool }) => {
        await spool.enqueue([message(A, "1"), message(A, "2")]);
        const err = await rejectsWith(
          spool.enqueue([message(A, "3"), message(B, "4")]),
          "SPOOL_FULL",
        );
        assert.match(err.message, /limit is 3\b/);
        assert.equal(err.retryAfter, 30);
        assert.deepEqual(await bodies(spool, A), ["1", "2"]);
        assert.deepEqual(await bodies(spool, B), []);
        assert.deepEqual(spool.stats(), { messages: 2, bytes: 2, deadLetters: 0 });
        // Writes not yet committed count too: two posts in one tick cannot both take the last place.
        const results = await Promise.allSettled([
          spool.enqueue([message(A, "5")]),
          spool.enqueue([message(A, "6")]),
        ]);
        assert.deepEqual(
          results.map((r) => r.status),
          ["fulfilled", "rejected"],
        );
        assert.deepEqual(await bodies(spool, A), ["1", "2", "5"]);
      }),
    );

    test(
      "capacity by bytes counts UTF-8 bytes of the bodies",
      withSpool({ maxMessages: 100, maxBytes: 10 }, async ({ spool }) => {
        await spool.enqueue([message(A, "éé")]); // 4 bytes, 2 characters
        const err = await rejectsWith(
          spool.enqueue([message(A, "abc"), message(A, "€€")]), // 3 + 6 bytes
          "SPOOL_FULL",
        );
        assert.match(err.message, /limit is 10 bytes/);
        assert.deepEqual(spool.stats(), { messages: 1, bytes: 4, deadLetters: 0 });
        assert.deepEqual(await bodies(spool, A), ["éé"]);
        await spool.enqueue([message(A, "€€")]);
        assert.deepEqual(spool.stats(), { messages: 2, bytes: 10, deadLetters: 0 });
        // Room made by delivery is room again.
        await spool.delivered([(await spool.pending(A, 1))[0]?.id ?? ""]);
        await spool.enqueue([message(A, "abcd")]);
        assert.equal(spool.stats().bytes, 10);
      }),
    );

    test(
      "writes requested together share one commit",
      withSpool(ROOMY, async (h) => {
        if (h.commits === undefined) return;
        const [first] = await h.spool.enqueue([message(A, "first")]);
        const before = h.commits();
        const posts = Array.from({ length: 200 }, (_, i) => h.spool.enqueue([message(B, `c${i}`)]));
        const others = [
          h.spool.recordFailure(first?.id ?? "", "x"),
          h.spool.delivered([first?.id ?? ""]),
        ];
        await Promise.all([...posts, ...others]);
        assert.equal(h.commits() - before, 1, "one transaction for 202 writes");
        assert.equal((await h.spool.pending(B, 1000)).length, 200);
        assert.deepEqual(await h.spool.pending(A, 10), []);
      }),
    );

    test(
      "health: writable while open; after close not, saying why (for /ready)",
      withSpool(ROOMY, async ({ spool }) => {
        assert.deepEqual(spool.health(), { writable: true });
        await spool.enqueue([message(A, "x")]);
        assert.deepEqual(spool.health(), { writable: true });
        await spool.close();
        const { writable, error } = spool.health();
        assert.equal(writable, false);
        assert.match(error ?? "", /closed/);
      }),
    );

    test(
      "after close every call is refused as UNAVAILABLE",
      withSpool(ROOMY, async ({ spool }) => {
        const [m] = await spool.enqueue([message(A, "x")]);
        await spool.close();
        await spool.close(); // twice is harmless
        const id = m?.id ?? "";
        for (const p of [
          spool.enqueue([message(A, "y")]),
          spool.delivered([id]),
          spool.recordFailure(id, "e"),
          spool.deadLetter(id, "r"),
          spool.retryDead(),
          spool.purgeDead(),
        ]) {
          const err = await rejectsWith(p, "UNAVAILABLE");
          assert.equal(err.retryAfter, 30);
        }
        // Reads too: they reject (a read of a database server cannot throw at once).
        for (const p of [spool.pending(A, 1), spool.lanes(), spool.listDead()]) {
          const err = await rejectsWith(p, "UNAVAILABLE");
          assert.equal(err.retryAfter, 30);
        }
      }),
    );
  });
}
