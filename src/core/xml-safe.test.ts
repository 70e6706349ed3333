import assert from "node:assert/strict";
import { test } from "node:test";
import { xmlSafe } from "./xml-safe.ts";

test("text XML allows comes back unchanged, the very same string", () => {
  const text = "tab\tLF\nCR\r ascii ~ é ✓ \uD7FF \uE000 \uFFFD 😀 \u{10FFFF} DEL\x7F C1\x85\x9F";
  assert.equal(xmlSafe(text), text);
  assert.equal(xmlSafe(""), "");
});

test("C0 controls become their Control Pictures", () => {
  assert.equal(xmlSafe("a\0b\x1Bc"), "a␀b␛c");
  assert.equal(xmlSafe("\x01\x07\x08\x0B\x0C\x0E\x1F"), "␁␇␈␋␌␎␟");
  // All 29 forbidden C0 controls, and none of the three allowed ones.
  const c0 = Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join("");
  assert.equal(xmlSafe(c0), "␀␁␂␃␄␅␆␇␈\t\n␋␌\r␎␏␐␑␒␓␔␕␖␗␘␙␚␛␜␝␞␟");
});

test("lone surrogates become U+FFFD; pairs are kept", () => {
  assert.equal(xmlSafe("x\uD83Dy"), "x\uFFFDy"); // high without low
  assert.equal(xmlSafe("x\uDE00y"), "x\uFFFDy"); // low without high
  assert.equal(xmlSafe("\uDE00\uD83D"), "\uFFFD\uFFFD"); // reversed pair: two lone halves
  assert.equal(xmlSafe("end\uD83D"), "end\uFFFD");
  assert.equal(xmlSafe("\uD83D\uDE00"), "😀");
});

test("the non-characters U+FFFE and U+FFFF become U+FFFD", () => {
  assert.equal(xmlSafe("a\uFFFEb\uFFFFc"), "a\uFFFDb\uFFFDc");
});

test("every class together, in one pass", () => {
  assert.equal(xmlSafe("\0ok\uD800😀\uFFFF\x1B[31mred"), "␀ok\uFFFD😀\uFFFD␛[31mred");
});
