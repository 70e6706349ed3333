import assert from "node:assert/strict";
import { test } from "node:test";
import Fastify from "fastify";
import { ConfigError, loadConfig } from "./index.ts";

const base = {
  JID_FROM_USER: "bot@example.org",
  JID_FROM_PASS: "pw",
  KNOWN_ROOMS: "tok1:room1@conf.example.org:nick1",
};

const trustOf = (value?: string) =>
  loadConfig(value === undefined ? base : { ...base, TRUST_PROXY: value }).http.trustProxy;

function issueOf(value: string): string {
  try {
    loadConfig({ ...base, TRUST_PROXY: value });
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.issues.length, 1);
    assert.equal(err.issues[0]?.setting, "TRUST_PROXY");
    return err.issues[0]?.message ?? "";
  }
  assert.fail(`TRUST_PROXY=${value} was accepted`);
}

test("TRUST_PROXY: unset, empty or false trusts nothing", () => {
  assert.deepEqual(trustOf(), []);
  assert.deepEqual(trustOf(""), []);
  assert.deepEqual(trustOf("false"), []);
  assert.deepEqual(trustOf(" FALSE "), []);
});

test("TRUST_PROXY: a comma-separated list of addresses, CIDR ranges and range names", () => {
  assert.deepEqual(trustOf("127.0.0.1"), ["127.0.0.1"]);
  assert.deepEqual(trustOf(" 127.0.0.1 , 10.0.0.0/8,::1,fd00::/8, Loopback,uniquelocal "), [
    "127.0.0.1",
    "10.0.0.0/8",
    "::1",
    "fd00::/8",
    "loopback",
    "uniquelocal",
  ]);
});

test("TRUST_PROXY: true, hop counts and malformed entries are refused with the reason", () => {
  assert.match(issueOf("true"), /lets any client forge the address/);
  assert.match(issueOf("1"), /lets any client forge the address/);
  assert.match(issueOf("127.0.0.1,proxy.local"), /"proxy\.local" is not an IP address/);
  assert.match(
    issueOf("10.0.0.0/33"),
    /"10\.0\.0\.0\/33" has a bad prefix length: expected \/1 to \/32/,
  );
  assert.match(issueOf("::/0"), /expected \/1 to \/128/);
  assert.match(issueOf("10.0.0.0/255.0.0.0"), /bad prefix length/);
  assert.match(issueOf("300.1.1.1"), /is not an IP address/);
});

/** What Fastify makes of a request from `peer` carrying `xff`, given a TRUST_PROXY value. */
async function clientIp(trust: string, peer: string, xff?: string): Promise<string> {
  const list = trustOf(trust);
  const app = Fastify({ trustProxy: list.length > 0 ? [...list] : false });
  app.get("/", async (req) => ({ ip: req.ip }));
  const res = await app.inject({
    url: "/",
    remoteAddress: peer,
    headers: xff === undefined ? {} : { "x-forwarded-for": xff },
  });
  await app.close();
  return res.json().ip;
}

test("Fastify takes every accepted value and walks X-Forwarded-For to the first untrusted hop", async () => {
  // Not trusted: the TCP peer, whatever the header says.
  assert.equal(await clientIp("", "127.0.0.1", "203.0.113.9"), "127.0.0.1");
  // The proxy is trusted; the hop it appended is not: that hop is the client.
  assert.equal(await clientIp("127.0.0.1", "127.0.0.1", "203.0.113.9, 192.0.2.7"), "192.0.2.7");
  // A client that is itself in a trusted range can put any address in front.
  assert.equal(await clientIp("loopback", "127.0.0.1", "203.0.113.9, 127.0.0.2"), "203.0.113.9");
  // A peer outside the list is the client, even with the header.
  assert.equal(await clientIp("10.0.0.0/8", "192.0.2.1", "203.0.113.9"), "192.0.2.1");
  assert.equal(
    await clientIp("10.0.0.0/8,linklocal,::1", "10.1.2.3", "198.51.100.4"),
    "198.51.100.4",
  );
  const all = " 127.0.0.1 , 10.0.0.0/8,::1,fd00::/8, Loopback,uniquelocal ";
  assert.equal(await clientIp(all, "fd00::5", "198.51.100.4"), "198.51.100.4");
});
