// Property-based fuzzing of the last steps before the spool: the splitter (parts fit, are
// numbered and join back up, or a 413) and the XML-safety pass (its text is character
// data to the gateway's XML library and to expat, a validating parser). See fuzz.test.ts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { xml } from "@xmpp/xml";
import fc from "fast-check";
import { GatewayError } from "./errors.ts";
import { only4xx, python, RUNS, text } from "./fuzz-support.ts";
import { escapedBytes, splitMessage } from "./split.ts";
import { xmlSafe } from "./xml-safe.ts";

/** @xmpp/xml's stream parser (ltx's), which the typings in src/types leave out. */
interface XmlParser {
  on(event: "element", fn: (el: { getText(): string }) => void): void;
  on(event: "error", fn: (err: Error) => void): void;
  write(data: string): void;
}
const { Parser } = (await import("@xmpp/xml")) as unknown as { Parser: new () => XmlParser };

/** The text of `<body>` as the gateway's XMPP library serializes it (`xml()`, as stanzas.ts does). */
const bodyXml = (text: string) => xml("body", {}, text).toString();

/** What @xmpp/xml's parser reads back as the text of one serialized element. */
function parseText(doc: string): string {
  const parser = new Parser();
  let text: string | undefined;
  parser.on("element", (el) => {
    text = el.getText();
  });
  parser.on("error", (err) => assert.fail(`@xmpp/xml cannot parse ${doc}: ${err.message}`));
  parser.write(`<r>${doc}</r>`);
  assert.notEqual(text, undefined, `@xmpp/xml found no element in ${doc}`);
  return text as string;
}
describe("fuzz: splitter", () => {
  it("parts fit, are numbered, join back to the text; or a 413", () => {
    const limits = fc.tuple(fc.integer({ min: 8, max: 400 }), fc.integer({ min: 1, max: 30 }));
    fc.assert(
      fc.property(text(600), limits, (t, [maxBytes, maxParts]) => {
        const parts = only4xx("splitMessage", () => splitMessage(t, maxBytes, maxParts));
        if (parts instanceof GatewayError) {
          assert.equal(parts.code, "PAYLOAD_TOO_LARGE");
          return;
        }
        assert.ok(parts.length >= 1 && parts.length <= maxParts, `${parts.length} parts`);
        for (const p of parts)
          assert.ok(escapedBytes(p) <= maxBytes, `a part of ${escapedBytes(p)} bytes`);
        if (parts.length === 1) return assert.equal(parts[0], t);
        const bare = parts.map((p, i) => {
          const prefix = `(${i + 1}/${parts.length}) `;
          assert.ok(p.startsWith(prefix), `part ${i + 1} starts ${JSON.stringify(p.slice(0, 8))}`);
          return p.slice(prefix.length);
        });
        assert.equal(bare.join(""), t);
      }),
      RUNS,
    );
  });

  it("escapedBytes is the UTF-8 size of the text as @xmpp/xml escapes it", () => {
    fc.assert(
      fc.property(text(), (t) => {
        // A leading "x": an empty element would be written `<body/>`.
        const markup = "<body>x</body>".length;
        assert.equal(escapedBytes(t), Buffer.byteLength(bodyXml(`x${t}`), "utf8") - markup);
      }),
      RUNS,
    );
  });
});

/** XML 1.0 §2.2 production [2] Char, written out by code point. */
function isXmlChar(cp: number): boolean {
  return (
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

// Expat, a validating XML parser (Python's), reads each document; prints one JSON line
// per document: its character data, or the parse error.
const EXPAT = `
import json, sys
import xml.parsers.expat
for line in sys.stdin:
    doc = json.loads(line)
    out = []
    p = xml.parsers.expat.ParserCreate("UTF-8")
    p.CharacterDataHandler = out.append
    try:
        p.Parse(doc.encode("utf-8"), True)
        print(json.dumps({"text": "".join(out)}))
    except Exception as e:
        print(json.dumps({"error": str(e)}))
`;

describe("fuzz: XML safety", () => {
  it("xmlSafe keeps every allowed character, replaces each forbidden one, and is idempotent", () => {
    fc.assert(
      fc.property(text(), (t) => {
        const safe = only4xx("xmlSafe", () => xmlSafe(t)) as string;
        const before = [...t];
        const after = [...safe];
        assert.equal(after.length, before.length, "one character for one");
        for (const [i, ch] of after.entries()) {
          const cp = ch.codePointAt(0) ?? -1;
          assert.ok(isXmlChar(cp) && !(cp >= 0xd800 && cp <= 0xdfff), `U+${cp.toString(16)}`);
          if (isXmlChar(before[i]?.codePointAt(0) ?? -1)) assert.equal(ch, before[i]);
        }
        assert.equal(xmlSafe(safe), safe);
      }),
      RUNS,
    );
  });

  it("xmlSafe text, serialized by @xmpp/xml, is character data to @xmpp/xml and to expat", (t) => {
    const docs: string[] = [];
    const wanted: string[] = [];
    fc.assert(
      fc.property(text(), (raw) => {
        const safe = xmlSafe(raw);
        const doc = bodyXml(safe);
        assert.equal(parseText(doc), safe, "@xmpp/xml reads back the text");
        docs.push(doc);
        // XML 1.0 §2.11: a parser hands CR LF and a lone CR on as LF.
        wanted.push(safe.replace(/\r\n?/g, "\n"));
      }),
      RUNS,
    );
    const results = python(EXPAT, docs);
    if (results === undefined) return t.skip("python3 is not installed: expat not run");
    for (const [i, r] of results.entries()) {
      assert.deepEqual(r, { text: wanted[i] }, `expat on ${JSON.stringify(docs[i])}`);
    }
  });
});
