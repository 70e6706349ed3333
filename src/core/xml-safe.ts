/**
 * XML 1.0 §2.2 (production [2] Char) allows only #x9 | #xA | #xD | [#x20-#xD7FF] |
 * [#xE000-#xFFFD] | [#x10000-#x10FFFF]. Any other character in a stanza is a
 * well-formedness error (§2.2), and an XMPP server closes the stream on it (RFC 6120
 * §4.9.3.13 not-well-formed) — taking every queued message with it. So a message body
 * is made XML-safe before it is spooled, visibly, so the reader sees something was there.
 *
 * DEL (U+007F) and the C1 controls (U+0080–U+009F) are left as they are: XML 1.0 allows
 * them (§2.2 only "discourages" them), they cannot break the stream, and changing legal
 * text is not the gateway's business. CR is kept too (servers normalise it, §2.11).
 */

/**
 * One code point XML 1.0 forbids. With the `u` flag a lone surrogate is one code point
 * (and so is matched by the negated class), while a well-formed pair is one astral
 * code point in [#x10000-#x10FFFF] (and so is not).
 */
const FORBIDDEN = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
const FORBIDDEN_ALL = new RegExp(FORBIDDEN.source, "gu");

/** The Unicode Control Pictures block: U+2400 + code is the picture of C0 control `code`. */
const CONTROL_PICTURES = 0x2400;

function replacement(ch: string): string {
  const code = ch.codePointAt(0) ?? 0;
  // C0 controls → their Control Picture (NUL → ␀, ESC → ␛); lone surrogates and the
  // non-characters U+FFFE/U+FFFF → U+FFFD, the Unicode replacement character.
  return code < 0x20 ? String.fromCharCode(CONTROL_PICTURES + code) : "\uFFFD";
}

/** Replaces every character XML 1.0 §2.2 forbids with a visible stand-in (␀ ␛ … or U+FFFD). */
export function xmlSafe(text: string): string {
  if (!FORBIDDEN.test(text)) return text; // the common case: one scan, no copy
  return text.replace(FORBIDDEN_ALL, replacement);
}
