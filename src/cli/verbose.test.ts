import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import type { XmppSettings } from "../config/index.ts";
import { createLogger } from "../log.ts";
import { clientSteps, connecting } from "./verbose.ts";

const SETTINGS: XmppSettings = {
  jid: "bot@example.org",
  password: "s3cret-pass",
  domain: "example.org",
  host: "xmpp.example.org",
  port: 5222,
  tls: "starttls",
  caFile: undefined,
  logLevel: "warn",
};

function capture(settings: XmppSettings, verbose: boolean) {
  const out = new PassThrough();
  let text = "";
  out.on("data", (d) => {
    text += d;
  });
  const steps = clientSteps({ command: "send", settings, verbose, out, quiet: createLogger });
  return { steps, text: () => text };
}

/** What the stream traces while it opens (src/xmpp/stream.ts), SASL left out as it leaves it out. */
function openStream(log: import("pino").Logger): void {
  log.trace({ out: '<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>' }, "xmpp out");
  log.trace({ in: '<proceed xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>' }, "xmpp in");
  log.trace(
    {
      in: '<stream:features><mechanisms xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>',
    },
    "xmpp in",
  );
  log.trace(
    {
      in: '<iq type="result" id="b1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><jid>bot@example.org/xmpp-msg-gw-1234</jid></bind></iq>',
    },
    "xmpp in",
  );
}

test("-v: TLS and the login as steps, in order, without the XML", () => {
  const { steps, text } = capture(SETTINGS, true);
  steps.step(connecting(SETTINGS));
  openStream(steps.log);
  assert.equal(
    text(),
    [
      "xmpp-msg-gw send: connecting to xmpp.example.org:5222 as bot@example.org, STARTTLS (RFC 6120 §5)",
      "xmpp-msg-gw send: TLS established by STARTTLS (RFC 6120 §5); the certificate of example.org is trusted",
      "xmpp-msg-gw send: authenticated as bot@example.org/xmpp-msg-gw-1234 (SCRAM-SHA-1)",
      "",
    ].join("\n"),
  );
});

test("-v: log records at the level asked for still go out; a server found by DNS SRV says so", () => {
  const srv = { ...SETTINGS, host: undefined, port: undefined };
  const { steps, text } = capture(srv, true);
  steps.step(connecting(srv));
  steps.log.warn("a warning");
  steps.log.info("not shown at warn");
  assert.match(
    text(),
    /connecting to example\.org \(found by DNS SRV; XMPP_HOST and XMPP_PORT override it\)/,
  );
  assert.match(text(), /"msg":"a warning"/);
  assert.doesNotMatch(text(), /not shown/);
});

test("without -v, no steps and no trace", () => {
  const { steps, text } = capture(SETTINGS, false);
  steps.step(connecting(SETTINGS));
  openStream(steps.log);
  assert.equal(text(), "");
});
