import assert from "node:assert/strict";
import { test } from "node:test";
import { nickProblem, parseKnownRooms } from "./known-rooms.ts";

const messages = (value: string) => parseKnownRooms(value, "json").issues.map((i) => i.message);

test("a repeated entry (same token, room and nick) names both entries, not the token", () => {
  const parsed = parseKnownRooms("tokD:r@conf:dbot tokD:r@conf:dbot", "json");
  assert.deepEqual(
    parsed.issues.map((i) => i.setting),
    ["KNOWN_ROOMS"],
  );
  assert.equal(
    parsed.issues[0]?.message,
    "entry 2 repeats entry 1 (room r@conf as dbot with the same token): every post would arrive twice; remove one",
  );
  assert.doesNotMatch(JSON.stringify(parsed.issues), /tokD/);
});

test("a repeat is found whatever the room's case and whatever lies between", () => {
  assert.deepEqual(messages("t1:Ops@conf:a t2:ops@conf:a t1:ops@conf:b t1:OPS@CONF:a"), [
    "entry 4 repeats entry 1 (room ops@conf as a with the same token): every post would arrive twice; remove one",
  ]);
});

test("the same room under other tokens or nicks is no repeat", () => {
  assert.deepEqual(messages("t1:r@conf:a t2:r@conf:a t1:r@conf:b t1:s@conf:a"), []);
});

test("commas between entries: separate entries with spaces", () => {
  const parsed = parseKnownRooms("a:r@conf:n1,b:r@conf:n2", "json");
  assert.equal(parsed.routes.length, 0, "nothing is routed to a nick holding the next entry");
  assert.deepEqual(
    parsed.issues.map((i) => `${i.setting}: ${i.message}`),
    [
      'KNOWN_ROOMS: entry 1 has a comma: separate entries with spaces, not commas (like "token:room@conference.example.org:nick token2:room2@conference.example.org:nick2")',
    ],
  );
  const secret = parseKnownRooms("sekritA:r@conf:n1,sekritB:r@conf:n2", "json");
  assert.doesNotMatch(JSON.stringify(secret.issues), /sekrit/, "no token in the message");
});

test("a comma after an entry, before a space, is the same mistake", () => {
  assert.deepEqual(messages("a:r@conf:n1, b:r@conf:n2"), [
    'entry 1 has a comma: separate entries with spaces, not commas (like "token:room@conference.example.org:nick token2:room2@conference.example.org:nick2")',
  ]);
});

test("a nick with a space: the word after it is named as the rest of the nick", () => {
  assert.deepEqual(messages("t1:ops@conf:Alert Bot"), [
    'entry 2 has no token or room (no ":"); if it is the rest of the nick "Alert" of entry 1: a nick cannot contain spaces in KNOWN_ROOMS, which separates entries with spaces; give that route in CONFIG_FILE instead',
  ]);
});

test("a word with no colon at the start is no nick's rest; it is never printed (it may be a token)", () => {
  assert.deepEqual(messages("s3cr3t-token t1:ops@conf:bot"), [
    "entry 1 has no room or nick; expected token:room@conference.example.org:nick",
  ]);
});

test("one colon still says the nick is missing", () => {
  assert.deepEqual(messages("t1:room@conf"), [
    "entry 1 has no nick; expected token:room@conference.example.org:nick",
  ]);
});

test("a nick with a character XMPP forbids names the character", () => {
  assert.deepEqual(messages("t1:ops@conf:bad\u0007bell"), [
    'entry 1 has nick "bad\\u0007bell", which holds U+0007, a control character; XMPP does not allow it in a nick (RFC 7622 §3.4)',
  ]);
  assert.equal(
    nickProblem("a\u200bb"),
    "holds U+200B, an invisible (default-ignorable) character; XMPP does not allow it in a nick (RFC 7622 §3.4)",
  );
  assert.equal(
    nickProblem("a\ue000b"),
    "holds U+E000, a private-use character; XMPP does not allow it in a nick (RFC 7622 §3.4)",
  );
  assert.equal(
    nickProblem("a\uffffb"),
    "holds U+FFFF, a character Unicode does not assign; XMPP does not allow it in a nick (RFC 7622 §3.4)",
  );
  assert.equal(
    nickProblem("a\ud800b"),
    "holds U+D800, a lone surrogate (not a character); XMPP does not allow it in a nick (RFC 7622 §3.4)",
  );
  assert.match(nickProblem("x".repeat(1024)) ?? "", /1024 bytes long; XMPP allows at most 1023/);
});

test("ordinary nicks pass: letters of any script, punctuation, @ and /", () => {
  for (const nick of ["bot", "Grafana Alerts", "ünïcødé", "机器人", "a/b@c", "emoji🚨", "n-1_2.3"])
    assert.equal(nickProblem(nick), undefined, nick);
  assert.deepEqual(messages("t1:ops@conf:ünïcødé t2:dev@conf:🚨"), []);
});
