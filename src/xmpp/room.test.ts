import assert from "node:assert/strict";
import { test } from "node:test";
import { xml } from "@xmpp/xml";
import pino from "pino";
import {
  archivePage,
  connectedSession,
  errorChild,
  FakeStanzaError,
  flush,
  occupantPresence,
  roomMessage,
  subject,
} from "../../test/support/fake-stream.ts";
import { SUBJECT_WAIT_MS } from "./room.ts";

const ROOM = "ops@conf.example.org";
const JOIN_NO_HISTORY =
  '<presence to="ops@conf.example.org/bot"><x xmlns="http://jabber.org/protocol/muc">' +
  '<history maxstanzas="0"/></x></presence>';
/** The fake clock starts at 1,000,000 ms; the oldest looked-for message is 5 s older. */
const SINCE = 995_000;
const SINCE_ISO = new Date(SINCE - 60_000).toISOString();
const lookFor = (...ids: string[]) => ({ ids: new Set(ids), since: SINCE });

/** A MAM query as the gateway writes it, its queryid made stable. */
const mamQuery = (after?: string) =>
  '<iq type="set" to="ops@conf.example.org"><query xmlns="urn:xmpp:mam:2" queryid="Q">' +
  '<x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE" type="hidden">' +
  `<value>urn:xmpp:mam:2</value></field><field var="start"><value>${SINCE_ISO}</value></field></x>` +
  `<set xmlns="http://jabber.org/protocol/rsm"><max>250</max>${after ? `<after>${after}</after>` : ""}</set></query></iq>`;
const stable = (sent: string[]) => sent.map((s) => s.replace(/queryid="mam-\d+"/, 'queryid="Q"'));

test("a join asks for no history; the self-presence (110) and then the subject make it joined", async () => {
  const { session, stream, facts } = await connectedSession();
  session.join(ROOM, undefined);
  assert.deepEqual(stream.sent, [JOIN_NO_HISTORY]);
  stream.push(occupantPresence(ROOM, "alice", []));
  stream.push(occupantPresence(ROOM, "bot", [110]));
  assert.deepEqual(facts, []);
  stream.push(subject(ROOM));
  assert.deepEqual(facts, [["joined", ROOM, []]]);
  assert.equal(session.stream, stream);
  assert.deepEqual(stream.sent, [JOIN_NO_HISTORY], "no iq: nothing to look for");
});

test("a room without a subject is joined after SUBJECT_WAIT_MS", async () => {
  const { session, stream, clock, facts } = await connectedSession();
  session.join(ROOM, undefined);
  stream.push(occupantPresence(ROOM, "bot", [110]));
  clock.advance(SUBJECT_WAIT_MS - 1);
  assert.deepEqual(facts, []);
  clock.advance(1);
  assert.deepEqual(facts, [["joined", ROOM, []]]);
});

test("a new room (201) is unlocked with the instant-room owner iq", async () => {
  const { session, stream, facts } = await connectedSession();
  stream.otherwise = xml("iq", { type: "result" });
  session.join(ROOM, undefined);
  stream.push(occupantPresence(ROOM, "bot", [110, 201], { role: "moderator" }));
  assert.deepEqual(stream.sent, [
    JOIN_NO_HISTORY,
    '<iq type="set" to="ops@conf.example.org"><query xmlns="http://jabber.org/protocol/muc#owner">' +
      '<x xmlns="jabber:x:data" type="submit"/></query></iq>',
  ]);
  stream.push(subject(ROOM));
  assert.deepEqual(facts, [["joined", ROOM, []]]);
});

test("a looked-for message of ours in the history is found without asking the archive", async () => {
  const { session, stream, facts } = await connectedSession();
  session.join(ROOM, lookFor("m1"));
  assert.deepEqual(stream.sent, [
    '<presence to="ops@conf.example.org/bot"><x xmlns="http://jabber.org/protocol/muc">' +
      `<history maxstanzas="21" since="${SINCE_ISO}"/></x></presence>`,
  ]);
  stream.push(occupantPresence(ROOM, "bot", [110]));
  stream.push(roomMessage(ROOM, "alice", "m0", { delayed: SINCE_ISO }));
  stream.push(roomMessage(ROOM, "bot", "m1", { delayed: SINCE_ISO }));
  stream.push(subject(ROOM));
  await flush();
  assert.deepEqual(facts, [["joined", ROOM, ["m1"]]]);
  assert.equal(stream.requests.length, 0);
});

test("an id missing from the history is looked up in the archive, page by page, until found", async () => {
  const { session, stream, facts } = await connectedSession();
  stream.answers.push(
    archivePage(
      ROOM,
      [
        { nick: "alice", id: "m2" },
        { nick: "bot", id: "x1" },
      ],
      { last: "p1" },
    ),
    archivePage(ROOM, [{ nick: "bot", id: "m2" }], { last: "p2" }), // not complete: more pages
    archivePage(ROOM, [{ nick: "bot", id: "never-read" }], { last: "p3", complete: true }),
  );
  session.join(ROOM, lookFor("m1", "m2"));
  stream.push(occupantPresence(ROOM, "bot", [110]));
  stream.push(roomMessage(ROOM, "bot", "m1", { delayed: SINCE_ISO }));
  stream.push(subject(ROOM));
  assert.deepEqual(facts, [], "not joined before the archive is read");
  await flush();
  assert.deepEqual(facts, [["joined", ROOM, ["m1", "m2"]]]);
  // Alice's m2 is not ours; the second page has ours and every id is found: no third page.
  assert.deepEqual(stable(stream.sent.slice(1)), [mamQuery(), mamQuery("p1")]);
});

test("the archive is read past any fixed page count when the id is far back", async () => {
  const { session, stream, facts } = await connectedSession();
  for (let page = 1; page <= 15; page++) {
    const messages = [{ nick: "bot", id: page === 15 ? "m1" : `other-${page}` }];
    stream.answers.push(archivePage(ROOM, messages, { last: `p${page}` }));
  }
  session.join(ROOM, lookFor("m1"));
  stream.push(occupantPresence(ROOM, "bot", [110]));
  stream.push(subject(ROOM));
  await flush();
  assert.deepEqual(facts, [["joined", ROOM, ["m1"]]]);
  const afters = [undefined, ...Array.from({ length: 14 }, (_, i) => `p${i + 1}`)];
  assert.deepEqual(stable(stream.sent.slice(1)), afters.map(mamQuery));
});

test("a complete archive without the id, or no archive at all, joins with what was found", async () => {
  const complete = await connectedSession();
  complete.stream.answers.push(archivePage(ROOM, [{ nick: "bot", id: "x" }], { complete: true }));
  complete.session.join(ROOM, lookFor("m1"));
  complete.stream.push(occupantPresence(ROOM, "bot", [110]));
  complete.stream.push(subject(ROOM));
  await flush();
  assert.deepEqual(complete.facts, [["joined", ROOM, []]]);
  assert.equal(complete.stream.requests.length, 1);

  const none = await connectedSession();
  none.stream.answers.push(new FakeStanzaError("feature-not-implemented"));
  none.session.join(ROOM, lookFor("m1", "m2"));
  none.stream.push(occupantPresence(ROOM, "bot", [110]));
  none.stream.push(roomMessage(ROOM, "bot", "m2", { delayed: SINCE_ISO }));
  none.stream.push(subject(ROOM));
  await flush();
  assert.deepEqual(none.facts, [["joined", ROOM, ["m2"]]]);
});

/** A session joined to ROOM, with the facts of the join cleared. */
async function joined(selfPingMs = 0) {
  const s = await connectedSession({ selfPingMs });
  s.session.join(ROOM, undefined);
  s.stream.push(occupantPresence(ROOM, "bot", [110]));
  s.stream.push(subject(ROOM));
  assert.deepEqual(s.facts.splice(0), [["joined", ROOM, []]]);
  return s;
}

test("the room throwing us out is reported with its reason; others' exits are not ours", async () => {
  const cases: Array<[number[], boolean, string]> = [
    [[110, 307], false, "kicked"],
    [[110, 301], false, "banned"],
    [[110, 321], false, "members-only"],
    [[110, 322], false, "members-only"],
    [[110], true, "destroyed"],
    [[110, 332], false, "shutdown"],
    [[110], false, "removed"],
  ];
  for (const [codes, destroy, kind] of cases) {
    const { stream, facts } = await joined();
    stream.push(occupantPresence(ROOM, "alice", [307], { type: "unavailable", role: "none" }));
    stream.push(
      occupantPresence(ROOM, "bot", codes, { type: "unavailable", role: "none", destroy }),
    );
    assert.equal(facts.length, 1, kind);
    const [name, room, fault] = facts[0] as [string, string, { kind: string }];
    assert.deepEqual([name, room, fault.kind], ["left", ROOM, kind]);
  }
});

test("an error presence refuses the join with the stanza fault (registration-required, conflict)", async () => {
  for (const [type, condition] of [
    ["auth", "registration-required"],
    ["cancel", "conflict"],
  ] as const) {
    const { session, stream, facts } = await connectedSession();
    session.join(ROOM, undefined);
    stream.push(
      xml(
        "presence",
        { from: `${ROOM}/bot`, type: "error" },
        xml("x", { xmlns: "http://jabber.org/protocol/muc" }),
        errorChild(type, condition, condition === "conflict" ? "Nickname in use" : undefined),
      ),
    );
    const text = condition === "conflict" ? "Nickname in use" : undefined;
    assert.deepEqual(facts, [
      [
        "left",
        ROOM,
        {
          kind: "refused",
          stanza: { type, condition, text },
          text: text ? `${condition} (${text})` : condition,
        },
      ],
    ]);
    stream.push(subject(ROOM));
    assert.equal(facts.length, 1, "a refused join is never joined");
  }
});

test("self-ping: not-acceptable means not an occupant; other errors and results mean joined", async () => {
  const PING = '<iq type="get" to="ops@conf.example.org/bot"><ping xmlns="urn:xmpp:ping"/></iq>';
  const { stream, clock, facts } = await joined(60_000);
  stream.answers.push(
    new FakeStanzaError("feature-not-implemented"),
    xml("iq", { type: "result" }),
    new FakeStanzaError("not-acceptable"),
  );
  clock.advance(59_999);
  assert.equal(stream.requests.length, 0);
  clock.advance(1);
  assert.deepEqual(stream.sent.slice(1), [PING]);
  await flush();
  assert.deepEqual(facts, [], "feature-not-implemented: still joined");
  clock.advance(60_000);
  await flush();
  clock.advance(60_000);
  await flush();
  assert.deepEqual(stream.sent.slice(1), [PING, PING, PING]);
  assert.deepEqual(facts, [
    ["left", ROOM, { kind: "not-occupant", text: "self-ping answered not-acceptable" }],
  ]);
  clock.advance(600_000);
  assert.equal(stream.requests.length, 3, "no pings once out of the room");
});

test("an archive check that runs out of time joins with what it found, and says that the rest may arrive twice", async () => {
  const lines: Array<{ level: number; msg: string; notFound?: number }> = [];
  const log = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  const { session, stream, clock, facts } = await connectedSession({ log });
  // Each page takes 50 s of the 120 s budget; m2 would be on a page never read.
  for (let page = 1; page <= 5; page++) {
    const messages = [{ nick: "bot", id: page === 1 ? "m1" : `other-${page}` }];
    const answer = archivePage(ROOM, messages, { last: `p${page}` });
    stream.answers.push((iq, s) => {
      clock.advance(50_000);
      return typeof answer === "function" ? answer(iq, s) : answer;
    });
  }
  session.join(ROOM, lookFor("m1", "m2", "m3"));
  stream.push(occupantPresence(ROOM, "bot", [110]));
  stream.push(subject(ROOM));
  await flush();
  assert.deepEqual(facts, [["joined", ROOM, ["m1"]]]);
  assert.equal(stream.requests.length, 3, "stopped once the budget was spent");
  const warned = lines.filter((l) => l.level === 40);
  assert.equal(warned.length, 1, JSON.stringify(lines));
  assert.equal(warned[0]?.notFound, 2);
  assert.match(
    warned[0]?.msg ?? "",
    /stopped before the end .* 2 unconfirmed message\(s\) .* may arrive twice/,
  );
});

test("an archive read to its end, or until every id is found, says nothing more", async () => {
  const lines: Array<{ level: number }> = [];
  const log = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  const { session, stream, facts } = await connectedSession({ log });
  stream.answers.push(archivePage(ROOM, [{ nick: "bot", id: "m1" }], { complete: true }));
  session.join(ROOM, lookFor("m1", "m2"));
  stream.push(occupantPresence(ROOM, "bot", [110]));
  stream.push(subject(ROOM));
  await flush();
  assert.deepEqual(facts, [["joined", ROOM, ["m1"]]]);
  assert.deepEqual(
    lines.filter((l) => l.level >= 40),
    [],
  );
});
