import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, loadConfig, loadMessageLimits } from "./index.ts";

const base = {
  JID_FROM_USER: "bot@example.org",
  JID_FROM_PASS: "pw",
  KNOWN_ROOMS: "tok1:room1@conf.example.org:nick1",
};

test("size limits default to 240000 bytes per message, 5 parts, 1 MiB per request", () => {
  assert.deepEqual(loadConfig(base).limits, {
    maxMessageBytes: 240_000,
    maxMessageParts: 5,
    maxBodyBytes: 1_048_576,
  });
  assert.deepEqual(loadMessageLimits({}), loadConfig(base).limits);
});

test("MAX_MESSAGE_BYTES, MAX_MESSAGE_PARTS and MAX_BODY_BYTES are read, also by `send`", () => {
  const env = { MAX_MESSAGE_BYTES: "3000", MAX_MESSAGE_PARTS: "3", MAX_BODY_BYTES: "65536" };
  const expected = { maxMessageBytes: 3000, maxMessageParts: 3, maxBodyBytes: 65_536 };
  assert.deepEqual(loadConfig({ ...base, ...env }).limits, expected);
  assert.deepEqual(loadMessageLimits(env), expected);
});

test("bad limits are named with what would be valid", () => {
  const env = { MAX_MESSAGE_BYTES: "512", MAX_MESSAGE_PARTS: "0", MAX_BODY_BYTES: "1MB" };
  for (const load of [() => loadConfig({ ...base, ...env }), () => loadMessageLimits(env)]) {
    assert.throws(load, (err) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(
        err.issues.map((i) => [i.setting, i.message]),
        [
          [
            "MAX_MESSAGE_BYTES",
            'expected a whole number of bytes, 1024 or more, e.g. 240000 (got "512")',
          ],
          ["MAX_MESSAGE_PARTS", 'expected a whole number of parts, 1 or more, e.g. 5 (got "0")'],
          [
            "MAX_BODY_BYTES",
            'expected a whole number of bytes, 1 or more, e.g. 1048576 (1 MiB) (got "1MB")',
          ],
        ],
      );
      return true;
    });
  }
});
