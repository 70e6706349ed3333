import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_LIVENESS, isSilentTooLong } from "./stream.ts";

const silent = (silentMs: number, unansweredBytes = 0) =>
  isSilentTooLong({ silentMs, unansweredBytes }, DEFAULT_LIVENESS);

test("a stream with nothing unanswered is cut after idle + time-out of silence, not before", () => {
  assert.equal(silent(41_000), false);
  assert.equal(silent(50_000), false);
  assert.equal(silent(50_001), true);
});

test("a large write under a 1,000 B/s shaper extends the allowance by its reading time", () => {
  // 150 KB take the slowest server 150 s to read: 30 s idle + 20 s time-out + 150 s.
  assert.equal(silent(41_000, 150_000), false);
  assert.equal(silent(200_000, 150_000), false);
  assert.equal(silent(200_001, 150_000), true);
  // The ping's own 100 bytes count too.
  assert.equal(silent(50_100, 100), false);
  assert.equal(silent(50_101, 100), true);
});

test("the allowance follows the injected liveness", () => {
  const live = { idleMs: 1000, timeoutMs: 500, minBytesPerSecond: 10_000, openTimeoutMs: 1000 };
  assert.equal(isSilentTooLong({ silentMs: 1600, unansweredBytes: 1000 }, live), false);
  assert.equal(isSilentTooLong({ silentMs: 1601, unansweredBytes: 1000 }, live), true);
});
