// Proves the harness hands out a Prosody that real clients can log in to, over both
// STARTTLS and direct TLS, trusting only the throwaway CA, and that stop() leaves no process.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, test } from "node:test";
import tls from "node:tls";
import { client } from "@xmpp/client";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";

let server: ProsodyServer;

before(async () => {
  server = await startProsody({ users: [{ user: "alice", password: "alice-secret" }] });
  // Node reads NODE_EXTRA_CA_CERTS only at start-up; Node 24 lets a test add a CA later.
  const caPem = await readFile(server.caFile, "utf8");
  tls.setDefaultCACertificates([...tls.getCACertificates("default"), caPem]);
});

after(async () => {
  await server?.stop();
});

/** Logs in, waits for `online`, and logs out again, all within a bounded time. */
async function logIn(service: string, username: string, password: string): Promise<string> {
  const xmpp = client({ service, domain: server.domain, username, password, resource: "test" });
  const errors: unknown[] = [];
  xmpp.on("error", (err: unknown) => errors.push(err));
  // A test client never reconnects: one left reconnecting to a stopped server every
  // second keeps this file's process alive after its last test.
  xmpp.reconnect.stop();
  const online = new Promise<string>((resolve) => {
    xmpp.on("online", (address: { toString(): string }) => resolve(address.toString()));
  });
  try {
    await withTimeout(xmpp.start(), 5_000, `login via ${service}`);
    return await withTimeout(online, 1_000, "online event");
  } catch (err) {
    throw new Error(`login via ${service} failed: ${String(err)}; errors: ${errors.join("; ")}`);
  } finally {
    await withTimeout(
      xmpp.stop().catch(() => undefined),
      3_000,
      "client stop",
    ).catch(() => undefined);
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

test("a registered user logs in over STARTTLS", { timeout: 15_000 }, async () => {
  const address = await logIn(`xmpp://${server.host}:${server.c2sPort}`, "alice", "alice-secret");
  assert.equal(address, "alice@localhost/test");
});

test("a registered user logs in over direct TLS", { timeout: 15_000 }, async () => {
  const address = await logIn(`xmpps://localhost:${server.directTlsPort}`, "alice", "alice-secret");
  assert.equal(address, "alice@localhost/test");
});

test("users registered later can log in too", { timeout: 15_000 }, async () => {
  await server.register("bob", "bob-secret");
  const address = await logIn(`xmpp://${server.host}:${server.c2sPort}`, "bob", "bob-secret");
  assert.equal(address, "bob@localhost/test");
});

test("a wrong password is refused", { timeout: 15_000 }, async () => {
  await assert.rejects(logIn(`xmpp://${server.host}:${server.c2sPort}`, "alice", "wrong"));
});

test("restart() brings Prosody back on the same port with the same accounts", {
  timeout: 15_000,
}, async () => {
  const before = server.pid;
  await server.restart();
  assert.notEqual(server.pid, before);
  assert.throws(() => process.kill(before, 0), { code: "ESRCH" });
  const address = await logIn(`xmpp://${server.host}:${server.c2sPort}`, "alice", "alice-secret");
  assert.equal(address, "alice@localhost/test");
});

test("stop() kills Prosody and removes its directory", { timeout: 15_000 }, async () => {
  const other = await startProsody();
  assert.doesNotThrow(() => process.kill(other.pid, 0), "Prosody runs before stop()");
  await other.stop();
  assert.throws(() => process.kill(other.pid, 0), { code: "ESRCH" });
  await assert.rejects(readFile(other.caFile), { code: "ENOENT" });
  await other.stop(); // a second stop() is harmless
});
