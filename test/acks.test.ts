// XEP-0198 acks under steady load, against a real Prosody: the gateway's stream asks for
// them as it sends, not only when it pauses. xmpp.js asks 250 ms after the last stanza,
// so a stream that never pauses got none: its resend queue grew by every message, and a
// direct message (confirmed by an ack) waited for the load to stop.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { xml } from "@xmpp/xml";
import { systemClock } from "../src/core/clock.ts";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { createLogger } from "../src/log.ts";
import { ACK_REQUEST_EVERY, openStream } from "../src/xmpp/stream.ts";
import { configureTrust } from "../src/xmpp/trust.ts";
import { clientSettings } from "./support/gateway.ts";
import { until } from "./support/until.ts";

const SENDER = { user: "sender", password: "sender-pass-acks" };
const PEER = { user: "peer", password: "peer-pass-acks" };
/** Messages sent, one every GAP_MS: a steady stream, never pausing for xmpp.js's 250 ms. */
const COUNT = 6 * ACK_REQUEST_EVERY;
const GAP_MS = 5;

let server: ProsodyServer;

before(async () => {
  server = await startProsody({ users: [SENDER, PEER] });
  configureTrust(server.caFile); // as the gateway does with XMPP_CA_FILE
});

after(async () => {
  await server?.stop();
});

test("a stream that never pauses is acknowledged while it sends", async () => {
  const conn = await openStream({
    settings: clientSettings(server, SENDER),
    resource: "acks",
    log: createLogger("fatal"),
    clock: systemClock,
  });
  try {
    // XEP-0198 is enabled just after the stream opened (Prosody answers <enable/>).
    await until("stream management enabled", () => conn.acks, 5000);
    let acked = 0;
    conn.on("acked", () => acked++);
    let ackedWhileSending = 0;
    const peer = `${PEER.user}@${server.domain}`;
    for (let i = 0; i < COUNT; i++) {
      conn.send(xml("message", { to: peer, type: "chat", id: `m${i}` }, xml("body", {}, `${i}`)));
      await sleep(GAP_MS);
      ackedWhileSending = acked;
    }
    // One request per ACK_REQUEST_EVERY stanzas: all but the last one answered by now.
    assert.ok(
      ackedWhileSending >= COUNT - 2 * ACK_REQUEST_EVERY,
      `acknowledged while sending: ${ackedWhileSending} of ${COUNT}`,
    );
  } finally {
    await conn.close(500);
  }
});
