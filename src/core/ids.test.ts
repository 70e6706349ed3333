import assert from "node:assert/strict";
import { test } from "node:test";
import { timeOrderedId } from "./ids.ts";

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test("a UUIDv7: version 7, RFC 9562 variant, the time in its first 48 bits", () => {
  const at = Date.UTC(2026, 11, 1, 12, 0, 0, 123);
  const id = timeOrderedId(at);
  assert.match(id, V7);
  assert.equal(Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16), at);
});

test("ids of later milliseconds sort after earlier ones; ids of one millisecond differ", () => {
  const ids = [0, 1, 2, 1_000_000].map((d) => timeOrderedId(1_764_590_400_000 + d));
  assert.deepEqual([...ids].sort(), ids);
  const same = new Set(Array.from({ length: 1000 }, () => timeOrderedId(42)));
  assert.equal(same.size, 1000);
  for (const id of same) assert.match(id, V7);
});
