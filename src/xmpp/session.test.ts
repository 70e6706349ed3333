import assert from "node:assert/strict";
import { test } from "node:test";
import { xml } from "@xmpp/xml";
import pino from "pino";
import { fakeClock } from "../../test/support/fake-clock.ts";
import {
  connectedSession,
  errorChild,
  fakeOpener,
  fakeStream,
  flush,
  occupantPresence,
  openError,
  recordingReport,
  roomMessage,
  SETTINGS,
  subject,
} from "../../test/support/fake-stream.ts";
import { DIRECT_NICK } from "../core/routes.ts";
import { createSession, resourceFor } from "./session.ts";

const ROOM = "ops@conf.example.org";
const ALICE = "alice@example.org";

/** A session joined to ROOM as `bot`, the join's facts cleared. */
async function joined(opts: Parameters<typeof connectedSession>[0] = {}) {
  const s = await connectedSession(opts);
  s.session.join(ROOM, undefined);
  s.stream.push(occupantPresence(ROOM, "bot", [110]));
  s.stream.push(subject(ROOM));
  assert.deepEqual(s.facts.splice(0), [["joined", ROOM, []]]);
  s.stream.sent.splice(0);
  return s;
}

/** The error a server bounces a message with (RFC 6120 §8.3), from `from`. */
const bounce = (from: string, id: string, type: string, condition: string, text?: string) =>
  xml(
    "message",
    { from, type: "error", id },
    xml("body", {}, "hello"),
    xml("origin-id", { xmlns: "urn:xmpp:sid:0", id }),
    errorChild(type, condition, text),
  );

test("a groupchat message is written with id and origin-id; our reflection confirms it", async () => {
  const { session, stream, facts } = await joined();
  session.send(ROOM, "m1", "hello");
  assert.deepEqual(stream.sent, [
    '<message type="groupchat" to="ops@conf.example.org" id="m1"><body>hello</body>' +
      '<origin-id xmlns="urn:xmpp:sid:0" id="m1"/></message>',
  ]);
  stream.ack(); // the server's ack is not the room's reflection
  stream.push(roomMessage(ROOM, "alice", "m1")); // someone else's message with the same id
  assert.deepEqual(facts, []);
  stream.push(roomMessage(ROOM, "bot", "m1", { body: "hello" }));
  assert.deepEqual(facts, [["confirmed", ROOM, "m1"]]);
});

test("an error message from the room refuses the message with its fault", async () => {
  const { session, stream, facts } = await joined();
  session.send(ROOM, "m1", "hello");
  stream.push(bounce(ROOM, "m1", "auth", "forbidden", "Visitors may not speak"));
  assert.deepEqual(facts, [
    [
      "refused",
      ROOM,
      "m1",
      { type: "auth", condition: "forbidden", text: "Visitors may not speak" },
    ],
  ]);
});

test("a not-acceptable error refuses the message and says we are not an occupant", async () => {
  const { session, stream, facts } = await joined();
  session.send(ROOM, "m1", "hello");
  stream.push(bounce(`${ROOM}/bot`, "m1", "cancel", "not-acceptable"));
  assert.deepEqual(facts, [
    ["refused", ROOM, "m1", { type: "cancel", condition: "not-acceptable", text: undefined }],
    ["left", ROOM, { kind: "not-occupant", text: "the room says we are not an occupant" }],
  ]);
});

test("a direct message with stream management is confirmed by the server's ack only", async () => {
  const { session, stream, opener, facts } = await connectedSession({ nick: DIRECT_NICK });
  assert.equal(opener.calls[0]?.resource, "xmpp-msg-gw-direct");
  session.send(ALICE, "d1", "hi");
  assert.deepEqual(stream.sent, [
    '<message type="chat" to="alice@example.org" id="d1"><body>hi</body>' +
      '<origin-id xmlns="urn:xmpp:sid:0" id="d1"/></message>',
  ]);
  await flush();
  assert.deepEqual(facts, []);
  stream.ack();
  assert.deepEqual(facts, [["confirmed", ALICE, "d1"]]);
  stream.ack(); // nothing more to ack
  assert.equal(facts.length, 1);
});

test("a direct message without stream management is confirmed once written", async () => {
  const { session, stream, facts } = await connectedSession({ nick: DIRECT_NICK, acks: false });
  session.send(ALICE, "d1", "hi");
  assert.equal(stream.sent.length, 1);
  await flush();
  assert.deepEqual(facts, [["confirmed", ALICE, "d1"]]);
});

test("a direct message bounced by the user's server is refused, and its late ack ignored", async () => {
  const { session, stream, facts } = await connectedSession({ nick: DIRECT_NICK });
  session.send(ALICE, "d1", "hi");
  stream.push(bounce(ALICE, "d1", "cancel", "service-unavailable"));
  stream.ack();
  assert.deepEqual(facts, [
    ["refused", ALICE, "d1", { type: "cancel", condition: "service-unavailable", text: undefined }],
  ]);
});

test("a failed open reports down with its fault; a connected one reports up", async () => {
  const clock = fakeClock();
  const { report, facts } = recordingReport();
  const stream = fakeStream({ maxStanzaBytes: 10_000 });
  const opener = fakeOpener(openError("no route"), stream);
  const session = createSession({
    settings: SETTINGS,
    nick: "bot",
    log: pino({ level: "silent" }),
    clock,
    report,
    open: opener.open,
  });
  session.connect();
  await flush();
  assert.deepEqual(facts, [["down", { kind: "network", text: "no route" }]]);
  assert.equal(session.stream, undefined);
  session.connect();
  await flush();
  assert.deepEqual(facts.slice(1), [["up", { maxStanzaBytes: 10_000 }]]);
  assert.equal(opener.calls[1]?.resource, resourceFor("bot"));
  assert.equal(session.stream, stream);
});

test("a dropped stream is reported once; the old stream's late events are ignored", async () => {
  const first = fakeStream();
  const second = fakeStream();
  const { session, stream, facts } = await joined({ streams: [first, second] });
  session.send(ROOM, "m1", "hello");
  stream.drop();
  stream.drop();
  assert.deepEqual(facts, [
    ["down", { kind: "network", text: "the XMPP server closed the connection" }],
  ]);
  assert.equal(session.stream, undefined);
  session.send(ROOM, "m2", "lost"); // nowhere to write: the loop knows the session is down
  session.connect();
  await flush();
  assert.equal(session.stream, second);
  session.join(ROOM, undefined);
  facts.splice(0);
  // The old stream's stanzas say nothing about the new one's rooms and messages.
  first.push(occupantPresence(ROOM, "bot", [110]));
  first.push(subject(ROOM));
  first.push(roomMessage(ROOM, "bot", "m1"));
  first.push(occupantPresence(ROOM, "bot", [110, 307], { type: "unavailable" }));
  assert.deepEqual(facts, []);
  second.push(occupantPresence(ROOM, "bot", [110]));
  second.push(subject(ROOM));
  assert.deepEqual(facts, [["joined", ROOM, []]]);
});

test("reconnecting closes the old stream; its late acks confirm nothing on the new one", async () => {
  const first = fakeStream();
  const second = fakeStream();
  const { session, facts } = await connectedSession({
    nick: DIRECT_NICK,
    streams: [first, second],
  });
  session.send(ALICE, "d1", "hi");
  session.connect();
  assert.deepEqual(first.closes, [0]);
  await flush();
  assert.deepEqual(facts, [["up", { maxStanzaBytes: undefined }]]);
  session.send(ALICE, "d1", "hi"); // the resend after a reconnect keeps its id
  first.ack();
  first.drop();
  assert.deepEqual(facts.slice(1), [], "the old stream's ack and end are not the new one's");
  second.ack();
  assert.deepEqual(facts.slice(1), [["confirmed", ALICE, "d1"]]);
});

test("a second connect while the first open is pending uses only the newest stream", async () => {
  const stale = fakeStream();
  const newest = fakeStream();
  const { report, facts } = recordingReport();
  const opener = fakeOpener();
  const session = createSession({
    settings: SETTINGS,
    nick: "bot",
    log: pino({ level: "silent" }),
    clock: fakeClock(),
    report,
    open: opener.open,
  });
  session.connect();
  session.connect();
  assert.equal(opener.calls.length, 2);
  opener.calls[1]?.resolve(newest);
  await flush();
  opener.calls[0]?.resolve(stale);
  await flush();
  assert.deepEqual(stale.closes, [0]);
  assert.deepEqual(newest.closes, []);
  assert.equal(session.stream, newest);
  assert.deepEqual(facts, [["up", { maxStanzaBytes: undefined }]]);
  session.join(ROOM, undefined);
  assert.equal(stale.sent.length, 0);
  assert.equal(newest.sent.length, 1);
  // The stale attempt failing late is not a `down` either.
  session.connect();
  session.connect();
  opener.calls[3]?.resolve(fakeStream());
  opener.calls[2]?.reject(openError());
  await flush();
  assert.deepEqual(facts.slice(1), [["up", { maxStanzaBytes: undefined }]]);
});

test("closing leaves the joined rooms, then closes the stream", async () => {
  const { session, stream } = await joined();
  session.join("dev@conf.example.org", undefined); // not joined yet: no leave
  stream.sent.splice(0);
  await session.close(500);
  assert.deepEqual(stream.sent, ['<presence to="ops@conf.example.org/bot" type="unavailable"/>']);
  assert.deepEqual(stream.closes, [500]);
  assert.equal(session.stream, undefined);
});
