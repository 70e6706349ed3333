import assert from "node:assert/strict";
import { test } from "node:test";
import { xml } from "@xmpp/xml";
import { advertisedMaxBytes } from "./faults.ts";

const NS_STREAM = "http://etherx.jabber.org/streams";
const features = (...children: ReturnType<typeof xml>[]) =>
  xml("stream:features", { "xmlns:stream": NS_STREAM }, ...children);
const limits = (maxBytes: string) =>
  xml("limits", { xmlns: "urn:xmpp:stream-limits:0" }, xml("max-bytes", {}, maxBytes));

test("XEP-0478: max-bytes is read from the stream features", () => {
  assert.equal(advertisedMaxBytes(features(limits("262144"))), 262_144);
  assert.equal(advertisedMaxBytes(features(limits(" 10000\n"))), 10_000);
});

test("XEP-0478: no limits, another namespace or a bad number means not advertised", () => {
  assert.equal(advertisedMaxBytes(features()), undefined);
  assert.equal(
    advertisedMaxBytes(
      features(xml("limits", { xmlns: "urn:example" }, xml("max-bytes", {}, "9"))),
    ),
    undefined,
  );
  assert.equal(
    advertisedMaxBytes(features(xml("limits", { xmlns: "urn:xmpp:stream-limits:0" }))),
    undefined,
  );
  for (const bad of ["", "0", "-5", "1e6", "12.5", "lots", "99999999999999999999"]) {
    assert.equal(advertisedMaxBytes(features(limits(bad))), undefined, bad);
  }
});
