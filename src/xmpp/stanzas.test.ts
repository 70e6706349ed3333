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
  stanzaError,
} from "./stanzas.ts";

test("a groupchat message carries the same id as id and XEP-0359 origin-id; the body is escaped", () => {
  assert.equal(
    groupchatMessage("ops@conf.example.org", "m1", 'a < b & "c"').toString(),
    '<message type="groupchat" to="ops@conf.example.org" id="m1"><body>a &lt; b &amp; "c"</body>' +
      '<origin-id xmlns="urn:xmpp:sid:0" id="m1"/></message>',
  );
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
