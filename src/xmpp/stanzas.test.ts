import assert from "node:assert/strict";
import { test } from "node:test";
import { xml } from "@xmpp/xml";
import {
  groupchatMessage,
  instantRoomIq,
  joinPresence,
  leavePresence,
  messageIds,
  mucStatusCodes,
  reactionMessage,
  roomStanzaId,
  stanzaError,
} from "./stanzas.ts";

test("a groupchat message carries the same id as id and XEP-0359 origin-id; the body is escaped", () => {
  assert.equal(
    groupchatMessage("ops@conf.example.org", "m1", 'a < b & "c"').toString(),
    '<message type="groupchat" to="ops@conf.example.org" id="m1"><body>a &lt; b &amp; "c"</body>' +
      '<origin-id xmlns="urn:xmpp:sid:0" id="m1"/></message>',
  );
});

test("a message of an alert thread carries its XEP-0201 thread id", () => {
  assert.equal(
    groupchatMessage("ops@conf.example.org", "m2", "hi", { thread: "0123abcd" }).toString(),
    '<message type="groupchat" to="ops@conf.example.org" id="m2"><body>hi</body>' +
      "<thread>0123abcd</thread>" +
      '<origin-id xmlns="urn:xmpp:sid:0" id="m2"/></message>',
  );
  assert.equal(
    groupchatMessage("ops@conf.example.org", "m1", "x", {}).toString(),
    groupchatMessage("ops@conf.example.org", "m1", "x").toString(),
    "no extras: the plain message",
  );
});

test("a reply quotes the first message and marks the quote as an XEP-0428 fallback", () => {
  const reply = {
    to: "ops@conf.example.org/alerts",
    id: "sid-1",
    quote: "🔥 FIRING (1) · HighCPU",
  };
  // "> 🔥 FIRING (1) · HighCPU\n": 2 + 22 code points + 1 newline = 25 (🔥 is 2 UTF-16 units).
  assert.equal(
    groupchatMessage("ops@conf.example.org", "m3", "✅ RESOLVED (1) · HighCPU", {
      thread: "t1",
      reply,
    }).toString(),
    '<message type="groupchat" to="ops@conf.example.org" id="m3">' +
      "<body>&gt; 🔥 FIRING (1) · HighCPU\n✅ RESOLVED (1) · HighCPU</body>" +
      "<thread>t1</thread>" +
      '<reply xmlns="urn:xmpp:reply:0" to="ops@conf.example.org/alerts" id="sid-1"/>' +
      '<fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:reply:0"><body start="0" end="25"/></fallback>' +
      '<origin-id xmlns="urn:xmpp:sid:0" id="m3"/></message>',
  );
});

test("the fallback's end counts code points, and each quoted line gets its '> '", () => {
  const cases: Array<[string, string, number]> = [
    ["", "> \n", 3],
    ["a", "> a\n", 4],
    ["😀😀", "> 😀😀\n", 5],
    ["e\u0301", "> e\u0301\n", 5],
    ["one\ntwo", "> one\n> two\n", 12],
    ["one\r\ntwo", "> one\n> two\n", 12],
  ];
  for (const [quote, quoted, end] of cases) {
    const message = groupchatMessage("r@c", "m", "body", {
      reply: { to: "r@c/n", id: "s", quote },
    });
    const body = message.getChildText("body") ?? "";
    assert.equal(body, `${quoted}body`, JSON.stringify(quote));
    const range = message.getChild("fallback", "urn:xmpp:fallback:0")?.getChild("body");
    assert.deepEqual(range?.attrs, { start: "0", end: String(end) }, JSON.stringify(quote));
    assert.equal([...body].slice(0, end).join(""), quoted, "the range is exactly the quote");
  }
});

test("a reaction is an XEP-0444 ✅ on the room's stanza-id, kept in the archive and confirmed by origin-id", () => {
  assert.equal(
    reactionMessage("ops@conf.example.org", "m4", "sid-1", "✅").toString(),
    '<message type="groupchat" to="ops@conf.example.org" id="m4">' +
      '<reactions xmlns="urn:xmpp:reactions:0" id="sid-1"><reaction>✅</reaction></reactions>' +
      '<store xmlns="urn:xmpp:hints"/>' +
      '<origin-id xmlns="urn:xmpp:sid:0" id="m4"/></message>',
  );
  assert.equal(
    reactionMessage("ops@conf.example.org", "m5", "sid-1", "✅", "t1").toString(),
    '<message type="groupchat" to="ops@conf.example.org" id="m5">' +
      '<reactions xmlns="urn:xmpp:reactions:0" id="sid-1"><reaction>✅</reaction></reactions>' +
      "<thread>t1</thread>" +
      '<store xmlns="urn:xmpp:hints"/>' +
      '<origin-id xmlns="urn:xmpp:sid:0" id="m5"/></message>',
  );
});

test("the room's stanza-id is the one whose by is the room, never one a sender added", () => {
  const sid = (by: string, id: string) => xml("stanza-id", { xmlns: "urn:xmpp:sid:0", by, id });
  const reflected = (...ids: ReturnType<typeof sid>[]) =>
    xml(
      "message",
      { from: "ops@conf.example.org/alerts", type: "groupchat" },
      xml("body", {}, "x"),
      ...ids,
    );
  const room = "ops@conf.example.org";
  assert.equal(roomStanzaId(reflected(sid(room, "room-1")), room), "room-1");
  assert.equal(
    roomStanzaId(reflected(sid("alerts@example.org", "forged"), sid(room, "room-2")), room),
    "room-2",
  );
  assert.equal(roomStanzaId(reflected(sid("Ops@Conf.Example.org", "room-3")), room), "room-3");
  assert.equal(roomStanzaId(reflected(sid(room, "room-4")), `${room}/alerts`), "room-4");
  assert.equal(roomStanzaId(reflected(sid("alerts@example.org", "forged")), room), undefined);
  assert.equal(roomStanzaId(reflected(sid(`${room}/alerts`, "occupant")), room), undefined);
  assert.equal(roomStanzaId(reflected(sid(room, "")), room), undefined);
  assert.equal(roomStanzaId(reflected(), room), undefined, "a room without an archive gives none");
  const otherNs = xml(
    "message",
    {},
    xml("stanza-id", { xmlns: "urn:xmpp:sid:1", by: room, id: "x" }),
  );
  assert.equal(roomStanzaId(otherNs, room), undefined);
});

test("joining asks for no history and carries the room password when there is one", () => {
  assert.equal(
    joinPresence("ops@conf", "bot").toString(),
    '<presence to="ops@conf/bot"><x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="0"/></x></presence>',
  );
  assert.equal(
    joinPresence("ops@conf", "bot", { password: "pw" }).toString(),
    '<presence to="ops@conf/bot"><x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="0"/><password>pw</password></x></presence>',
  );
  assert.equal(
    joinPresence("ops@conf", "bot", { history: { since: new Date(0), maxstanzas: 50 } }).toString(),
    '<presence to="ops@conf/bot"><x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="50" since="1970-01-01T00:00:00.000Z"/></x></presence>',
  );
  assert.equal(
    leavePresence("ops@conf", "bot").toString(),
    '<presence to="ops@conf/bot" type="unavailable"/>',
  );
});

test("the instant-room form submits an empty data form to the owner namespace", () => {
  assert.equal(
    instantRoomIq("ops@conf").toString(),
    '<iq type="set" to="ops@conf"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit"/></query></iq>',
  );
});

test("status codes, stanza errors and reflected ids are read off incoming stanzas", () => {
  const self = xml(
    "presence",
    { from: "ops@conf/bot" },
    xml(
      "x",
      { xmlns: "http://jabber.org/protocol/muc#user" },
      xml("status", { code: "110" }),
      xml("status", { code: "201" }),
    ),
  );
  assert.deepEqual(mucStatusCodes(self), [110, 201]);
  const err = xml(
    "presence",
    { type: "error" },
    xml(
      "error",
      { type: "auth" },
      xml("forbidden", { xmlns: "urn:ietf:params:xml:ns:xmpp-stanzas" }),
      xml("text", { xmlns: "urn:ietf:params:xml:ns:xmpp-stanzas" }, "You are banned"),
    ),
  );
  assert.deepEqual(stanzaError(err), {
    type: "auth",
    condition: "forbidden",
    text: "You are banned",
  });
  const reflected = xml(
    "message",
    { id: "server-id" },
    xml("origin-id", { xmlns: "urn:xmpp:sid:0", id: "m1" }),
  );
  assert.deepEqual(messageIds(reflected), ["m1", "server-id"]);
});
