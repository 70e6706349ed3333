import assert from "node:assert/strict";
import { test } from "node:test";
import { GatewayError } from "./errors.ts";
import { escapedBytes, messageByteLimit, splitMessage } from "./split.ts";

const PREFIX = /^\(\d+\/\d+\) /;

test("escapedBytes counts UTF-8 bytes after & < > are escaped", () => {
  assert.equal(escapedBytes("a&<>é😀"), 1 + 5 + 4 + 4 + 2 + 4);
  assert.equal(escapedBytes(`"'`), 2); // quotes are not escaped in text content
  assert.equal(escapedBytes(""), 0);
});

test("a text that fits is one message, unnumbered, up to the exact byte", () => {
  assert.deepEqual(splitMessage("hello", 5, 3), ["hello"]);
  assert.deepEqual(splitMessage("a&b", 7, 3), ["a&b"]); // 1 + 5 + 1 escaped
});

test("split at line boundaries; a part with its prefix may fill the limit exactly", () => {
  const text = "aaaa\nbbbb\ncccc\ndddd"; // 19 bytes
  assert.deepEqual(splitMessage(text, 19, 3), [text]);
  assert.deepEqual(splitMessage(text, 16, 3), ["(1/2) aaaa\nbbbb\n", "(2/2) cccc\ndddd"]);
  assert.equal(escapedBytes("(1/2) aaaa\nbbbb\n"), 16);
  assert.deepEqual(splitMessage(text, 15, 3), ["(1/3) aaaa\n", "(2/3) bbbb\n", "(3/3) cccc\ndddd"]);
  assert.deepEqual(splitMessage(text, 14, 4), [
    "(1/4) aaaa\n",
    "(2/4) bbbb\n",
    "(3/4) cccc\n",
    "(4/4) dddd",
  ]);
});

test("escapes count against the limit, also at the boundary", () => {
  const text = "ab&\ncd&\nef"; // 10 characters, 18 bytes escaped
  assert.deepEqual(splitMessage(text, 17, 3), ["(1/2) ab&\n", "(2/2) cd&\nef"]);
  assert.deepEqual(splitMessage(text, 16, 3), ["(1/2) ab&\n", "(2/2) cd&\nef"]);
  assert.equal(escapedBytes("(2/2) cd&\nef"), 16);
  // Unescaped, "cd&\nef" would still fit 15 − 6 bytes; escaped it does not.
  assert.deepEqual(splitMessage(text, 15, 3), ["(1/3) ab&\n", "(2/3) cd&\n", "(3/3) ef"]);
  assert.deepEqual(splitMessage("<<<<", 14, 2), ["(1/2) <<", "(2/2) <<"]);
});

test("multibyte: never inside a code point or a surrogate pair", () => {
  assert.deepEqual(splitMessage("😀😀😀😀😀", 14, 3), ["(1/3) 😀😀", "(2/3) 😀😀", "(3/3) 😀"]);
  assert.deepEqual(splitMessage("éééééé", 11, 3), ["(1/3) éé", "(2/3) éé", "(3/3) éé"]);
  assert.deepEqual(splitMessage("€€€€€€", 12, 3), ["(1/3) €€", "(2/3) €€", "(3/3) €€"]);
});

test("a long line is cut at grapheme boundaries, at code points only inside a too-big grapheme", () => {
  // 👍🏽 is one grapheme of two code points (8 bytes): it moves to the next part whole.
  assert.deepEqual(splitMessage("abcdefgh👍🏽xyzw", 18, 3), ["(1/2) abcdefgh", "(2/2) 👍🏽xyzw"]);
  // With 5 bytes per part it cannot stay whole: then between its code points.
  assert.deepEqual(splitMessage("abcd👍🏽", 11, 3), ["(1/3) abcd", "(2/3) 👍", "(3/3) 🏽"]);
  // A ZWJ family (18 bytes, 5 code points) is never cut, even where a code point would fit.
  assert.deepEqual(splitMessage("abcdef👨‍👩‍👧gh", 24, 3), [
    "(1/3) abcdef",
    "(2/3) 👨‍👩‍👧",
    "(3/3) gh",
  ]);
});

test("one very long line, alone or among short ones", () => {
  assert.deepEqual(splitMessage("x".repeat(25), 16, 3), [
    "(1/3) xxxxxxxxxx",
    "(2/3) xxxxxxxxxx",
    "(3/3) xxxxx",
  ]);
  // The long line starts a part of its own; its tail is joined by the lines after it.
  assert.deepEqual(splitMessage(`a\n${"x".repeat(12)}\nb`, 15, 3), [
    "(1/3) a\n",
    "(2/3) xxxxxxxxx",
    "(3/3) xxx\nb",
  ]);
});

test("ten parts or more: every prefix width is accounted for", () => {
  const parts = splitMessage("x".repeat(130), 18, 20);
  assert.equal(parts.length, 13);
  assert.equal(parts[0], "(1/13) xxxxxxxxxx");
  assert.equal(parts[12], "(13/13) xxxxxxxxxx");
  assert.ok(parts.every((p) => escapedBytes(p) <= 18));
});

test("without their prefixes, the parts concatenate to the original", () => {
  const lines = Array.from({ length: 200 }, (_, i) => `${i} & <${"é😀x".repeat(i % 17)}>\n`);
  const text = `${lines.join("")}${"long ".repeat(300)}`;
  for (const max of [40, 97, 500, 1000]) {
    const parts = splitMessage(text, max, 10_000);
    assert.equal(parts.map((p) => p.replace(PREFIX, "")).join(""), text);
    assert.ok(parts.every((p) => escapedBytes(p) <= max));
    assert.ok(parts.every((p, i) => p.startsWith(`(${i + 1}/${parts.length}) `)));
  }
});

test("more parts than MAX_MESSAGE_PARTS: PAYLOAD_TOO_LARGE stating the limits", () => {
  const err = (() => {
    try {
      splitMessage("x".repeat(25), 16, 2);
    } catch (e) {
      return e;
    }
  })();
  assert.ok(err instanceof GatewayError);
  assert.equal(err.code, "PAYLOAD_TOO_LARGE");
  assert.equal(
    err.message,
    "the message is 25 bytes after rendering; the XMPP server accepts 16 bytes per message, and at most 2 parts (MAX_MESSAGE_PARTS) are sent",
  );
  assert.throws(() => splitMessage("a&b", 6, 1), {
    code: "PAYLOAD_TOO_LARGE",
    message:
      "the message is 7 bytes after rendering; the XMPP server accepts 6 bytes per message, and at most 1 parts (MAX_MESSAGE_PARTS) are sent",
  });
  // Not even one code point fits after the prefix.
  assert.throws(() => splitMessage("😀😀", 7, 5), { code: "PAYLOAD_TOO_LARGE" });
});

test("the limit: configured, lowered to what the servers advertise minus the stanza overhead", () => {
  assert.equal(messageByteLimit(240_000), 240_000);
  assert.equal(messageByteLimit(240_000, [undefined]), 240_000);
  assert.equal(messageByteLimit(240_000, [262_144, undefined, 10_000]), 8976);
  assert.equal(messageByteLimit(3000, [262_144]), 3000);
});
