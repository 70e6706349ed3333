// A server that does not offer STARTTLS must never get our password: the gateway refuses
// to authenticate on an unprotected stream (RFC 6120 §5.3.1) instead of falling back.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { createLogger } from "../src/log.ts";
import { connectOnce } from "../src/xmpp/one-shot.ts";

let server: ProsodyServer;
const BOT = { user: "plainbot", password: "plain-pass-1" };

before(async () => {
  server = await startProsody({
    users: [BOT],
    // No mod_tls: the c2s port offers no STARTTLS at all.
    extraConfig:
      'modules_disabled = { "s2s", "s2s_auth_certs", "tls" }\nc2s_require_encryption = false\nallow_unencrypted_plain_auth = true',
  });
});

after(async () => {
  await server?.stop();
});

test("no STARTTLS offered: the session refuses to log in, with a clear reason", async () => {
  const session = connectOnce({
    settings: {
      jid: `${BOT.user}@${server.domain}`,
      password: BOT.password,
      domain: server.domain,
      host: server.host,
      port: server.c2sPort,
      tls: "starttls",
      caFile: server.caFile,
      logLevel: "silent",
    },
    nick: "plain",
    rooms: [`plain@${server.mucDomain}`],
    log: createLogger("silent"),
  });
  await assert.rejects(session, /did not offer STARTTLS; refusing to log in without TLS/);
});
