/**
 * Messages larger than the XMPP server accepts. A server closes the stream of a client
 * that sends a stanza over its size limit (Prosody: `policy-violation`, RFC 6120
 * §4.9.3.14), which would take every queued message down with it. So a rendered text
 * that would not fit is split, before it is spooled, into numbered parts that each fit;
 * a text that would need too many parts is refused (413) instead.
 */
import { GatewayError } from "./errors.ts";

/**
 * Room left for the stanza around the body (`<message to=… id=… type=…>`, `<body>`, the
 * XEP-0359 origin-id, the XEP-0198 `<r/>` that may follow) under a limit the server
 * advertises: about 300 bytes with a typical room JID and two ids, so 1 KiB is ample.
 */
export const STANZA_OVERHEAD_BYTES = 1024;

/**
 * The body budget: the configured `MAX_MESSAGE_BYTES`, lowered to the smallest stanza
 * limit the sessions' servers advertise (XEP-0478 `max-bytes`) minus the stanza overhead.
 */
export function messageByteLimit(
  configured: number,
  advertised: Iterable<number | undefined> = [],
): number {
  let limit = configured;
  for (const max of advertised) {
    if (max !== undefined) limit = Math.min(limit, max - STANZA_OVERHEAD_BYTES);
  }
  return limit;
}

/**
 * UTF-8 bytes of `text` inside `<body>`, escaped as @xmpp/xml (ltx `escapeXMLText`)
 * escapes text: `&` → `&amp;` (5 bytes), `<` → `&lt;` and `>` → `&gt;` (4 bytes each).
 */
export function escapedBytes(text: string): number {
  return fit(text, 0, Number.POSITIVE_INFINITY)[1];
}

/**
 * Walks `text` from `start` while its escaped UTF-8 size stays within `budget`; returns
 * where it stopped (never inside a surrogate pair) and the size up to there.
 */
function fit(text: string, start: number, budget: number): [end: number, bytes: number] {
  let bytes = 0;
  let i = start;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    let units = 1;
    let size: number;
    if (c < 0x80) size = c === 0x26 ? 5 : c === 0x3c || c === 0x3e ? 4 : 1;
    else if (c < 0x800) size = 2;
    else if (c >= 0xd800 && c <= 0xdbff && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      size = 4; // a surrogate pair: one code point of four bytes
      units = 2;
    } else size = 3; // a lone surrogate would be sent as U+FFFD, three bytes too
    if (bytes + size > budget) break;
    bytes += size;
    i += units;
  }
  return [i, bytes];
}

const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/** How far back from a cut a grapheme boundary is looked for (UAX #29 clusters are short). */
const GRAPHEME_WINDOW = 64;

/**
 * Moves a cut at `end` back to the start of the grapheme (UAX #29) it falls in, unless
 * that grapheme begins at or before `start`: then it is too big for a part anyway.
 */
function graphemeCut(text: string, start: number, end: number): number {
  const from = Math.max(start, end - GRAPHEME_WINDOW);
  const window = text.slice(from, Math.min(text.length, end + GRAPHEME_WINDOW));
  const cut = from + (graphemes.segment(window).containing(end - from)?.index ?? end - from);
  return cut > start ? cut : end;
}

/**
 * Splits `text` into numbered parts (`(1/3) …`) whose escaped UTF-8 size, prefix included,
 * is at most `maxBytes` each; throws PAYLOAD_TOO_LARGE when more than `maxParts` are needed.
 */
export function splitMessage(text: string, maxBytes: number, maxParts: number): string[] {
  const size = escapedBytes(text);
  if (size <= maxBytes) return [text];
  // No part holds more than maxBytes minus the shortest prefix, `(1/2) `: a quick no.
  if (size <= maxParts * (maxBytes - "(1/2) ".length)) {
    // Lines keep their "\n", so the parts without their prefixes concatenate to `text`.
    const lines = text.split(/(?<=\n)/);
    // The prefix of n parts is at most `(n/n) ` long; packing for n parts may need fewer
    // (then they are numbered so) or more (then pack again for that many).
    for (let n = 2; n <= maxParts; ) {
      const parts = pack(lines, maxBytes - `(${n}/${n}) `.length, maxParts);
      if (parts === undefined) break;
      if (parts.length <= n) return parts.map((p, i) => `(${i + 1}/${parts.length}) ${p}`);
      if (n === maxParts) break;
      n = Math.min(maxParts, parts.length);
    }
  }
  throw new GatewayError(
    "PAYLOAD_TOO_LARGE",
    `the message is ${size} bytes after rendering; the XMPP server accepts ${maxBytes} bytes per message, and at most ${maxParts} parts (MAX_MESSAGE_PARTS) are sent`,
  );
}

/**
 * Packs whole lines greedily into parts of at most `budget` escaped bytes; a line too long
 * on its own starts a part and is cut at grapheme boundaries (at code points inside a
 * grapheme that alone is too long). Stops once there are more than `limit` parts;
 * undefined when not even one code point fits.
 */
function pack(lines: readonly string[], budget: number, limit: number): string[] | undefined {
  const parts: string[] = [];
  let current = "";
  let used = 0;
  for (const line of lines) {
    if (parts.length > limit) return parts;
    const bytes = escapedBytes(line);
    if (used + bytes <= budget) {
      current += line;
      used += bytes;
      continue;
    }
    if (current !== "") parts.push(current);
    current = line;
    used = bytes;
    if (bytes <= budget) continue;
    // Never inside a line unless it alone is too long.
    let start = 0;
    for (;;) {
      const [end, fitted] = fit(line, start, budget);
      if (end === start) return undefined;
      if (end === line.length) {
        current = line.slice(start);
        used = fitted; // the tail: the lines after it may join its part
        break;
      }
      const cut = graphemeCut(line, start, end);
      parts.push(line.slice(start, cut));
      if (parts.length > limit) return parts;
      start = cut;
    }
  }
  if (current !== "") parts.push(current);
  return parts;
}
