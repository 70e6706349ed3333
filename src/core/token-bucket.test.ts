import assert from "node:assert/strict";
import { test } from "node:test";
import { createTokenBucket } from "./token-bucket.ts";

test("a bucket allows its burst at once, then one token per 60/perMinute seconds", () => {
  const b = createTokenBucket({ perMinute: 6, burst: 3 }, 0);
  assert.deepEqual([b.take(0), b.take(0), b.take(0)], [0, 0, 0]);
  assert.equal(b.take(0), 10, "empty: the next token comes in 10 s");
  assert.equal(b.take(5_000), 5);
  assert.equal(b.take(10_000), 0);
  assert.equal(b.take(10_000), 10);
  assert.deepEqual(
    [b.take(1_000_000), b.take(1_000_000), b.take(1_000_000), b.take(1_000_000)],
    [0, 0, 0, 10],
  );
});

test("Retry-After is never 0 for a refusal, even for fast buckets", () => {
  const b = createTokenBucket({ perMinute: 60_000, burst: 1 }, 0);
  assert.equal(b.take(0), 0);
  assert.equal(b.take(0), 1);
});
