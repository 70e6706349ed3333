// What the carrier's facts mean: permanent or not, slow down, poison, session limit.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  isChokedClose,
  isConflict,
  isPermanentRefusal,
  isPermanentRoomFault,
  isSizeComplaint,
  isSlowDown,
} from "./classify.ts";
import type { RoomFault, StanzaFault, StreamFault } from "./port.ts";

const stanza = (type: string, condition: string, text?: string): StanzaFault => ({
  type,
  condition,
  text,
});
const stream = (condition: string | undefined, text: string): StreamFault => ({
  kind: "stream-error",
  ...(condition === undefined ? {} : { condition }),
  text,
});

test("stanza refusals: cancel, auth and modify are permanent; wait is not", async () => {
  assert.equal(isPermanentRefusal(stanza("cancel", "forbidden")), true);
  assert.equal(isPermanentRefusal(stanza("auth", "not-authorized")), true);
  assert.equal(isPermanentRefusal(stanza("modify", "bad-request")), true);
  assert.equal(isPermanentRefusal(stanza("wait", "internal-server-error")), false);
  assert.equal(isPermanentRefusal(stanza("continue", "undefined-condition")), false);
});

test("stanza refusals that pass by themselves are not permanent, whatever their type", async () => {
  assert.equal(isPermanentRefusal(stanza("cancel", "remote-server-timeout")), false);
  assert.equal(isPermanentRefusal(stanza("modify", "not-acceptable")), false);
  assert.equal(isPermanentRefusal(stanza("cancel", "resource-constraint")), false);
  assert.equal(isPermanentRefusal(stanza("modify", "policy-violation", "rate limit")), false);
  assert.equal(isPermanentRefusal(stanza("modify", "policy-violation", "no links")), true);
});

test("slow down: resource-constraint, or policy-violation with rate-limit words", async () => {
  assert.equal(isSlowDown(stanza("wait", "resource-constraint")), true);
  for (const text of [
    "Rate limit exceeded",
    "Slow down",
    "Too many messages",
    "flooding",
    "throttled",
  ]) {
    assert.equal(isSlowDown(stanza("modify", "policy-violation", text)), true, text);
  }
  assert.equal(isSlowDown(stanza("modify", "policy-violation", "no swearing")), false);
  assert.equal(isSlowDown(stanza("modify", "policy-violation", "this room is moderated")), false);
  assert.equal(isSlowDown(stanza("modify", "policy-violation", "ratelimited")), true);
  assert.equal(isSlowDown(stanza("modify", "policy-violation")), false);
  assert.equal(isSlowDown(stanza("cancel", "forbidden", "rate limit")), false);
});

test("a choked close: the stream-error conditions a server sends about what we sent", async () => {
  for (const c of [
    "policy-violation",
    "not-well-formed",
    "bad-format",
    "invalid-xml",
    "restricted-xml",
  ]) {
    assert.equal(isChokedClose(stream(c, "bad")), true, c);
  }
  assert.equal(isChokedClose(stream("policy-violation", "XML stanza is too big")), true);
  for (const c of ["conflict", "system-shutdown", "connection-timeout", undefined]) {
    assert.equal(isChokedClose(stream(c, "bye")), false, String(c));
  }
  assert.equal(isChokedClose({ kind: "network", condition: "policy-violation", text: "x" }), false);
});

test("a choked close: rate-limit words are not poison, unless they also say too big", async () => {
  assert.equal(isChokedClose(stream("policy-violation", "rate limit exceeded")), false);
  assert.equal(isChokedClose(stream("policy-violation", "Too many stanzas")), false);
  assert.equal(isChokedClose(stream("policy-violation", "stanza size limit exceeded")), true);
  assert.equal(
    isChokedClose(stream("not-well-formed", "rate limit")),
    true,
    "only policy-violation",
  );
});

test("size complaints: words of size, or a policy-violation", async () => {
  assert.equal(isSizeComplaint(stream("not-well-formed", "stanza too large")), true);
  assert.equal(isSizeComplaint(stream("not-well-formed", "exceeds max_stanza_size")), true);
  assert.equal(isSizeComplaint(stream("policy-violation", "go away")), true);
  assert.equal(isSizeComplaint(stream("not-well-formed", "unexpected end of input")), false);
});

test("conflict: only the stream error of that name", async () => {
  assert.equal(isConflict(stream("conflict", "Replaced by new connection")), true);
  assert.equal(isConflict(stream("policy-violation", "conflict")), false);
  assert.equal(isConflict({ kind: "auth", condition: "conflict", text: "x" }), false);
});

test("room faults: banned, members-only and permanent join refusals are for good", async () => {
  const room = (kind: RoomFault["kind"], s?: StanzaFault): RoomFault => ({
    kind,
    text: "x",
    ...(s ? { stanza: s } : {}),
  });
  assert.equal(isPermanentRoomFault(room("banned")), true);
  assert.equal(isPermanentRoomFault(room("members-only")), true);
  assert.equal(
    isPermanentRoomFault(room("refused", stanza("auth", "registration-required"))),
    true,
  );
  assert.equal(isPermanentRoomFault(room("refused", stanza("auth", "not-authorized"))), true);
  assert.equal(isPermanentRoomFault(room("refused", stanza("cancel", "item-not-found"))), true);
  assert.equal(isPermanentRoomFault(room("refused", stanza("cancel", "conflict"))), false, "nick");
  assert.equal(isPermanentRoomFault(room("refused", stanza("wait", "service-unavailable"))), false);
  assert.equal(isPermanentRoomFault(room("refused")), false, "no stanza error");
  for (const k of ["kicked", "destroyed", "shutdown", "removed", "not-occupant"] as const) {
    assert.equal(isPermanentRoomFault(room(k)), false, k);
  }
});
