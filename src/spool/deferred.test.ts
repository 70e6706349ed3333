import assert from "node:assert/strict";
import { test } from "node:test";
import { fakeClock } from "../../test/support/fake-clock.ts";
import { isCode } from "../core/errors.ts";
import { createLogger } from "../log.ts";
import { deferredSpool } from "./deferred.ts";
import { createMemorySpool, createMemoryStore } from "./memory.ts";
import type { Spool } from "./types.ts";

const limits = { maxMessages: 100, maxBytes: 100_000 };
const lane = { room: "r@muc.example", nick: "bot" };
const msg = { postId: "p1", id: "m1", route: "r", ...lane, body: "hello" };
const flush = () => new Promise((r) => setImmediate(r));

function setUp() {
  const clock = fakeClock();
  const outcomes: Array<() => Promise<Spool>> = [];
  let opened = 0;
  const spool = deferredSpool({
    open: () => {
      opened++;
      const next = outcomes.shift();
      return next ? next() : Promise.reject(new Error("connect ECONNREFUSED"));
    },
    firstError: new Error("connect ECONNREFUSED"),
    where: "postgres://gw@db/gw",
    log: createLogger("silent"),
    clock,
    retryMs: 2000,
    retryAfter: 5,
    reasonOf: (e) => (e as Error).message,
  });
  return { clock, outcomes, spool, opened: () => opened };
}

test("deferred spool: UNAVAILABLE with a Retry-After and the reason until it opens, then the opened spool", async () => {
  const { clock, outcomes, spool, opened } = setUp();
  await assert.rejects(spool.enqueue([msg]), (err: Error & { retryAfter?: number }) => {
    assert.ok(isCode(err, "UNAVAILABLE"));
    assert.equal(err.retryAfter, 5);
    assert.match(err.message, /postgres:\/\/gw@db\/gw cannot be reached yet: connect ECONNREFUSED/);
    return true;
  });
  assert.equal(spool.health().writable, false);
  assert.deepEqual(spool.stats(), { messages: 0, bytes: 0, deadLetters: 0 });
  await assert.rejects(spool.lanes(), (err) => isCode(err, "UNAVAILABLE"));

  clock.advance(1999);
  assert.equal(opened(), 0, "not before retryMs");
  clock.advance(1);
  await flush();
  assert.equal(opened(), 1, "tried again");
  assert.equal(spool.health().writable, false, "still down");

  const inner = createMemorySpool({ limits, store: createMemoryStore() });
  outcomes.push(async () => inner);
  clock.advance(2000);
  await flush();
  assert.equal(opened(), 2);
  assert.equal(spool.health().writable, true);
  await spool.enqueue([msg]);
  assert.deepEqual(
    (await spool.pending(lane, 10)).map((m) => m.id),
    ["m1"],
  );
  assert.equal(spool.stats().messages, 1);
  clock.advance(10_000);
  assert.equal(opened(), 2, "no more attempts once open");
  await spool.close();
  await assert.rejects(
    inner.lanes(),
    (err) => isCode(err, "UNAVAILABLE"),
    "closed the opened spool",
  );
});

test("deferred spool: closed while an attempt is under way, the spool it opens late is closed too", async () => {
  const { clock, outcomes, spool } = setUp();
  const inner = createMemorySpool({ limits, store: createMemoryStore() });
  let release: () => void = () => {};
  outcomes.push(() => new Promise<Spool>((r) => (release = () => r(inner))));
  clock.advance(2000);
  await spool.close();
  release();
  await flush();
  await assert.rejects(inner.lanes(), (err) => isCode(err, "UNAVAILABLE"));
  await assert.rejects(spool.lanes(), (err) => isCode(err, "UNAVAILABLE"));
  assert.deepEqual(clock.pending(), [], "no attempt after close");
});
