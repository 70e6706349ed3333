import assert from "node:assert/strict";
import net from "node:net";
import { test } from "node:test";
import pino from "pino";
import type { XmppSettings } from "../config/index.ts";
import { systemClock } from "../core/clock.ts";
import type { StreamFault } from "../delivery/port.ts";
import { DEFAULT_LIVENESS, isSilentTooLong, openStream, StreamOpenError } from "./stream.ts";

const silent = (silentMs: number, unansweredBytes = 0) =>
  isSilentTooLong({ silentMs, unansweredBytes }, DEFAULT_LIVENESS);

test("a stream with nothing unanswered is cut after idle + time-out of silence, not before", () => {
  assert.equal(silent(41_000), false);
  assert.equal(silent(50_000), false);
  assert.equal(silent(50_001), true);
});

test("a large write under a 1,000 B/s shaper extends the allowance by its reading time", () => {
  // 150 KB take the slowest server 150 s to read: 30 s idle + 20 s time-out + 150 s.
  assert.equal(silent(41_000, 150_000), false);
  assert.equal(silent(200_000, 150_000), false);
  assert.equal(silent(200_001, 150_000), true);
  // The ping's own 100 bytes count too.
  assert.equal(silent(50_100, 100), false);
  assert.equal(silent(50_101, 100), true);
});

test("the allowance follows the injected liveness", () => {
  const live = { idleMs: 1000, timeoutMs: 500, minBytesPerSecond: 10_000, openTimeoutMs: 1000 };
  assert.equal(isSilentTooLong({ silentMs: 1600, unansweredBytes: 1000 }, live), false);
  assert.equal(isSilentTooLong({ silentMs: 1601, unansweredBytes: 1000 }, live), true);
});

// Real sockets on loopback: what a stream says of servers that are not what it expects.

const FAST = { ...DEFAULT_LIVENESS, openTimeoutMs: 400 };
const silentLog = pino({ level: "silent" });

/** A TCP server on 127.0.0.1 that does `onSocket` with each connection. */
async function tcpServer(onSocket: (s: net.Socket) => void): Promise<net.Server> {
  const server = net.createServer((s) => {
    s.on("error", () => {});
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return server;
}
const portOf = (server: net.Server) => (server.address() as net.AddressInfo).port;
const settingsAt = (port: number, tls: "starttls" | "direct" = "starttls"): XmppSettings => ({
  jid: "bot@localhost",
  password: "pw",
  domain: "localhost",
  host: "127.0.0.1",
  port,
  tls,
  caFile: undefined,
  logLevel: "fatal",
});

/** Opens a stream that must fail, and returns its fault and how long it took. */
async function openFault(settings: XmppSettings): Promise<{ fault: StreamFault; ms: number }> {
  const started = Date.now();
  try {
    const s = await openStream({
      settings,
      resource: "r",
      log: silentLog,
      clock: systemClock,
      liveness: FAST,
    });
    await s.close(0);
  } catch (err) {
    assert.ok(err instanceof StreamOpenError, String(err));
    return { fault: err.fault, ms: Date.now() - started };
  }
  assert.fail("the stream opened");
}

test("a server that accepts and never speaks: no stream header from host:port within the time-out", async () => {
  const sockets: net.Socket[] = [];
  const server = await tcpServer((s) => sockets.push(s));
  try {
    const { fault, ms } = await openFault(settingsAt(portOf(server)));
    assert.equal(fault.kind, "network");
    assert.equal(
      fault.text,
      `no stream header from 127.0.0.1:${portOf(server)} within 400 ms: it accepted the connection and said nothing; check XMPP_HOST / XMPP_PORT`,
    );
    assert.ok(ms < 3000, `bounded: ${ms} ms`);
  } finally {
    for (const s of sockets) s.destroy();
    server.close();
  }
});

test("a server that resets the connection before a stream header: a reason, and no crash", async () => {
  const server = await tcpServer((s) => s.once("data", () => s.resetAndDestroy()));
  try {
    const { fault } = await openFault(settingsAt(portOf(server)));
    assert.equal(
      fault.text,
      `the XMPP server at 127.0.0.1:${portOf(server)} reset the connection (ECONNRESET) before sending a stream header; check XMPP_HOST / XMPP_PORT and XMPP_TLS`,
    );
    // An error a socket emits after the teardown must not become an uncaught exception.
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    server.close();
  }
});

test("direct TLS against a port that speaks plain XMPP first: set XMPP_TLS=starttls", async () => {
  const server = await tcpServer((s) =>
    s.once("data", () =>
      s.write(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='x' version='1.0'><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>",
      ),
    ),
  );
  try {
    const { fault } = await openFault(settingsAt(portOf(server), "direct"));
    assert.equal(
      fault.text,
      `the XMPP server at 127.0.0.1:${portOf(server)} speaks STARTTLS, not direct TLS: set XMPP_TLS=starttls, or XMPP_PORT to its direct-TLS port`,
    );
  } finally {
    server.close();
  }
});
