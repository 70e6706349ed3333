/**
 * The contract of what issue 13 added to every Spool: `enqueueOnce` with its dedupe
 * claims, and the `kind` and `thread` a message carries. Each implementation's test file
 * calls `spoolDedupeContract` beside `spoolContract`, with the same way to open it.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isCode } from "../core/errors.ts";
import { message, type OpenSpool, rejectsWith, type SpoolHarness } from "./spool.contract.ts";
import type { DedupeClaim, EnqueueOnce, NewMessage, SpoolLimits } from "./types.ts";

const ROOMY: SpoolLimits = { maxMessages: 10_000, maxBytes: 10_000_000 };
const A = { room: "a@conf.example.org", nick: "bot" };
const B = { room: "b@conf.example.org", nick: "bot" };
const T0 = 1_700_000_000_000;

/** A post of one message per body, sharing the first message's postId. */
function post(...bodies: string[]): NewMessage[] {
  const [first, ...rest] = bodies.map((b, i) => message(i % 2 ? B : A, b));
  if (first === undefined) return [];
  return [first, ...rest.map((m) => ({ ...m, postId: first.postId }))];
}

const claim = (key: string, expiresAt = T0 + 86_400_000, route = "r"): DedupeClaim => ({
  route,
  key,
  expiresAt,
});

/** The messages a fresh post stored; fails when it was taken for a duplicate. */
function stored(r: EnqueueOnce) {
  assert.equal(r.duplicate, false, "stored, not a duplicate");
  return r.duplicate ? [] : r.messages;
}

/** Registers the dedupe contract tests for one implementation. */
export function spoolDedupeContract(name: string, open: OpenSpool): void {
  /** Runs `fn` on a fresh spool whose clock is `clock.now` (settable). */
  const withSpool =
    (limits: SpoolLimits, fn: (h: SpoolHarness, clock: { now: number }) => Promise<void>) =>
    async () => {
      const clock = { now: T0 };
      const h = await open(limits, { now: () => clock.now });
      try {
        await fn(h, clock);
      } finally {
        await h.cleanup();
      }
    };

  describe(`Spool contract, dedupe: ${name}`, () => {
    test(
      "a repeated claim stores nothing and names the first post; route and key both count",
      withSpool(ROOMY, async ({ spool }) => {
        const first = post("one", "two");
        const messages = stored(await spool.enqueueOnce(first, claim("k")));
        assert.deepEqual(
          messages.map((m) => [m.id, m.postId, m.body, m.attempts]),
          first.map((m) => [m.id, m.postId, m.body, 0]),
        );
        const ids = first.map((m) => m.id);
        assert.deepEqual(await spool.enqueueOnce(post("again", "again"), claim("k")), {
          duplicate: true,
          postId: first[0]?.postId,
          ids,
          pending: ids,
          dead: [],
        });
        assert.deepEqual(spool.stats(), { messages: 2, bytes: 6, deadLetters: 0 });
        assert.equal(await spool.claimed("r", "k"), first[0]?.postId, "claimed: for ?dry_run=1");
        assert.equal(await spool.claimed("r2", "k"), undefined);
        assert.equal(await spool.claimed("r", "k2"), undefined);
        stored(await spool.enqueueOnce(post("other-route"), claim("k", undefined, "r2")));
        stored(await spool.enqueueOnce(post("other-key"), claim("k2")));
        assert.equal(spool.stats().messages, 4);
      }),
    );

    test(
      "two claims of one key in one group commit: the first is stored, the second is its duplicate",
      withSpool(ROOMY, async (h) => {
        const [p1, p2] = [post("x"), post("y")];
        const before = h.commits?.();
        const [r1, r2] = await Promise.all([
          h.spool.enqueueOnce(p1, claim("same")),
          h.spool.enqueueOnce(p2, claim("same")),
        ]);
        if (before !== undefined) assert.equal(h.commits?.(), before + 1, "one transaction");
        stored(r1 as EnqueueOnce);
        const id = p1[0]?.id ?? "";
        assert.deepEqual(r2, {
          duplicate: true,
          postId: p1[0]?.postId,
          ids: [id],
          pending: [id],
          dead: [],
        });
        assert.deepEqual(
          (await h.spool.pending(A, 10)).map((m) => m.body),
          ["x"],
        );
      }),
    );

    test(
      "a duplicate of a delivered post has nothing pending; of a dead-lettered one, lists it dead",
      withSpool(ROOMY, async ({ spool }) => {
        const first = post("a", "b");
        const [ma, mb] = stored(await spool.enqueueOnce(first, claim("k")));
        const ids = first.map((m) => m.id);
        await spool.deadLetter(ma?.id ?? "", "forbidden");
        let again = await spool.enqueueOnce(post("z"), claim("k"));
        assert.deepEqual(again, {
          duplicate: true,
          postId: ma?.postId,
          ids,
          pending: [mb?.id],
          dead: [ma?.id],
        });
        await spool.delivered([mb?.id ?? ""]);
        again = await spool.enqueueOnce(post("z"), claim("k"));
        assert.deepEqual(again, {
          duplicate: true,
          postId: ma?.postId,
          ids,
          pending: [],
          dead: [ma?.id],
        });
        await spool.retryDead();
        again = await spool.enqueueOnce(post("z"), claim("k"));
        assert.ok(again.duplicate && again.pending[0] === ma?.id && again.dead.length === 0);
        await spool.delivered([ma?.id ?? ""]);
        again = await spool.enqueueOnce(post("z"), claim("k"));
        assert.deepEqual(again, {
          duplicate: true,
          postId: ma?.postId,
          ids,
          pending: [],
          dead: [],
        });
        assert.deepEqual(spool.stats(), { messages: 0, bytes: 0, deadLetters: 0 });
      }),
    );

    test(
      "an expired claim is replaced by the next post with its key",
      withSpool(ROOMY, async ({ spool }, clock) => {
        const first = post("first");
        stored(await spool.enqueueOnce(first, claim("k", T0 + 1000)));
        clock.now = T0 + 999;
        assert.equal((await spool.enqueueOnce(post("dup"), claim("k", T0 + 5000))).duplicate, true);
        assert.equal(await spool.claimed("r", "k"), first[0]?.postId);
        clock.now = T0 + 1000; // expiresAt is the first moment the key is forgotten
        assert.equal(await spool.claimed("r", "k"), undefined);
        const second = post("second");
        stored(await spool.enqueueOnce(second, claim("k", T0 + 5000)));
        const third = await spool.enqueueOnce(post("third"), claim("k", T0 + 9000));
        assert.ok(third.duplicate && third.postId === second[0]?.postId, "the new claim holds");
        clock.now = T0 + 4_000_000; // long after: the sweep may have run; the key is free
        stored(await spool.enqueueOnce(post("fourth"), claim("k", T0 + 5_000_000)));
        assert.deepEqual(
          (await spool.pending(A, 10)).map((m) => m.body),
          ["first", "second", "fourth"],
        );
      }),
    );

    test(
      "a duplicate gives back what it reserved against the limits",
      withSpool({ maxMessages: 2, maxBytes: 1000 }, async ({ spool }) => {
        stored(await spool.enqueueOnce(post("1"), claim("k")));
        assert.equal((await spool.enqueueOnce(post("2"), claim("k"))).duplicate, true);
        // 1 stored + 1 new: fits only if the duplicate's reservation was given back.
        await spool.enqueue([message(A, "3")]);
        assert.deepEqual(spool.stats(), { messages: 2, bytes: 2, deadLetters: 0 });
      }),
    );

    test(
      "a full spool still answers a duplicate; a new claim is refused SPOOL_FULL and not kept",
      withSpool({ maxMessages: 1, maxBytes: 1000 }, async ({ spool }) => {
        const [m] = stored(await spool.enqueueOnce(post("1"), claim("k")));
        const dup = await spool.enqueueOnce(post("2", "3"), claim("k"));
        assert.ok(dup.duplicate && dup.postId === m?.postId);
        const err = await rejectsWith(spool.enqueueOnce(post("4"), claim("new")), "SPOOL_FULL");
        assert.equal(err.retryAfter, 30);
        assert.match(err.message, /limit is 1\b/);
        await spool.delivered([m?.id ?? ""]);
        stored(await spool.enqueueOnce(post("5"), claim("new")));
        assert.deepEqual(
          (await spool.pending(A, 10)).map((x) => x.body),
          ["5"],
        );
      }),
    );

    test(
      "a post refused for a reused id keeps no claim; an empty post claims nothing",
      withSpool(ROOMY, async ({ spool }) => {
        const taken = message(A, "taken");
        await spool.enqueue([taken]);
        const err = await spool
          .enqueueOnce([{ ...taken, body: "reuse" }], claim("k"))
          .catch((e) => e);
        assert.ok(isCode(err, "INTERNAL"), String(err));
        assert.deepEqual(await spool.enqueueOnce([], claim("k")), {
          duplicate: false,
          messages: [],
        });
        stored(await spool.enqueueOnce(post("fresh"), claim("k")));
        assert.equal((await spool.enqueueOnce(post("dup"), claim("k"))).duplicate, true);
      }),
    );

    test(
      "kind and thread are kept through pending, listDead, retryDead and a reopen; absent stays absent",
      withSpool(ROOMY, async (h) => {
        const thread = { group: "0123456789abcdef0123456789abcdef", status: "resolved" } as const;
        const reaction = { ...message(A, "✅"), kind: "reaction" as const, thread };
        const text = {
          ...message(A, "🔥 FIRING"),
          kind: "text" as const,
          thread: { ...thread, status: "firing" as const },
        };
        const plain = message(A, "plain");
        const [r] = await h.spool.enqueue([reaction]);
        assert.equal(r?.kind, "reaction");
        stored(await h.spool.enqueueOnce([text, { ...plain, postId: text.postId }], claim("k")));
        const shape = (m: NewMessage) => [m.id, m.kind, m.thread, "kind" in m, "thread" in m];
        const want = [
          [reaction.id, "reaction", thread, true, true],
          [text.id, "text", { ...thread, status: "firing" }, true, true],
          [plain.id, undefined, undefined, false, false],
        ];
        assert.deepEqual((await h.spool.pending(A, 10)).map(shape), want);
        let spool = await h.reopen();
        assert.deepEqual((await spool.pending(A, 10)).map(shape), want);
        for (const m of await spool.pending(A, 10)) await spool.deadLetter(m.id, "gone");
        assert.deepEqual((await spool.listDead()).map(shape), want);
        spool = await h.reopen();
        assert.deepEqual((await spool.listDead()).map(shape), want);
        assert.equal(await spool.retryDead(), 3);
        assert.deepEqual((await spool.pending(A, 10)).map(shape), want);
        spool = await h.reopen();
        assert.deepEqual((await spool.pending(A, 10)).map(shape), want);
        const dup = await spool.enqueueOnce(post("again"), claim("k"));
        assert.ok(dup.duplicate && dup.postId === text.postId, "the claim survived the reopens");
        assert.equal(await spool.claimed("r", "k"), text.postId);
      }),
    );

    test(
      "writes requested together, claims among them, share one commit; after close they are refused",
      withSpool(ROOMY, async (h) => {
        const before = h.commits?.();
        await Promise.all([
          h.spool.enqueue([message(A, "plain")]),
          ...Array.from({ length: 50 }, (_, i) =>
            h.spool.enqueueOnce(post(`c${i}`), claim(`k${i % 10}`)),
          ),
          h.spool.recordAnchor(A.room, "g", {
            stanzaId: "s",
            occupant: `${A.room}/bot`,
            quote: "q",
          }),
        ]);
        if (before !== undefined) assert.equal(h.commits?.(), before + 1);
        assert.equal(h.spool.stats().messages, 11);
        await h.spool.close();
        for (const p of [
          h.spool.enqueueOnce(post("late"), claim("k0")),
          h.spool.enqueueOnce([], claim("k0")),
          h.spool.recordAnchor(A.room, "g", { stanzaId: "s", occupant: "o", quote: "q" }),
          h.spool.resolveAnchor(A.room, "g", T0),
        ]) {
          assert.equal((await rejectsWith(p, "UNAVAILABLE")).retryAfter, 30);
        }
        // Reads too: they reject (a read of a database server cannot throw at once).
        for (const p of [h.spool.anchor(A.room, "g"), h.spool.claimed("r", "k0")]) {
          assert.equal((await rejectsWith(p, "UNAVAILABLE")).retryAfter, 30);
        }
      }),
    );
  });
}
