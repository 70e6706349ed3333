import assert from "node:assert/strict";
import { test } from "node:test";
import { backoffDelay } from "./backoff.ts";

test("backoff doubles from the base and stays within [cap/2, cap]", () => {
  const opts = { baseMs: 100, maxMs: 1000 };
  assert.deepEqual(
    [0, 1, 2, 3, 4, 10].map((n) => backoffDelay(n, () => 1, opts)),
    [100, 200, 400, 800, 1000, 1000],
  );
  assert.deepEqual(
    [0, 1, 2, 3, 4, 10].map((n) => backoffDelay(n, () => 0, opts)),
    [50, 100, 200, 400, 500, 500],
  );
});

test("backoff does not overflow for huge attempt counts", () => {
  assert.equal(
    backoffDelay(10_000, () => 0.5, { baseMs: 1000, maxMs: 60_000 }),
    45_000,
  );
});
