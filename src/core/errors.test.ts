import assert from "node:assert/strict";
import { test } from "node:test";
import { isPermanentStanzaError } from "./errors.ts";

test("stanza errors are permanent by RFC 6120 type, except 'not an occupant'", () => {
  assert.equal(isPermanentStanzaError("wait", "resource-constraint"), false);
  assert.equal(isPermanentStanzaError("cancel", "forbidden"), true);
  assert.equal(isPermanentStanzaError("auth", "registration-required"), true);
  assert.equal(isPermanentStanzaError("auth", "forbidden"), true);
  assert.equal(isPermanentStanzaError("modify", "policy-violation"), true);
  assert.equal(isPermanentStanzaError("modify", "not-acceptable"), false);
  assert.equal(isPermanentStanzaError("cancel", "not-acceptable"), false);
});
