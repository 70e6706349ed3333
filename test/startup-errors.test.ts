// The XMPP errors an operator meets first, as `xmpp-msg-gw check` prints them against a
// real Prosody: each in one line that says what is wrong and what to set.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { run } from "../src/devserver/certs.ts";
import { requireExecutable } from "../src/devserver/process.ts";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { killCliChildren, runCli } from "./support/cli.ts";
import { xmppEnv } from "./support/gateway.ts";

const GW = { user: "startbot", password: "start-pass-1" };
let server: ProsodyServer;
let dir: string;
/** A CA that did not sign the server's certificate. */
let otherCa: string;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "gw-startup-errors-"));
  otherCa = path.join(dir, "other-ca.pem");
  const openssl = requireExecutable("openssl", "openssl is needed to make a second CA");
  const [s] = await Promise.all([
    startProsody({ users: [GW] }),
    run(openssl, [
      ..."req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2".split(" "),
      ...["-subj", "/CN=another-CA", "-keyout", path.join(dir, "other.key"), "-out", otherCa],
    ]),
  ]);
  server = s;
});

after(async () => {
  killCliChildren();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Runs `check` with `env` on top of a working set-up; returns its one FAIL line. */
async function failLine(env: Record<string, string>): Promise<string> {
  const r = await runCli(
    ["check"],
    { ...xmppEnv(server, GW), KNOWN_ROOMS: `t1:ops@${server.mucDomain}:bot1`, ...env },
    { ms: 45_000 },
  );
  assert.equal(r.code, 1, r.output);
  const lines = r.output.split("\n").filter((l) => l.trim() !== "");
  const others = lines.filter((l) => !/^( ok |FAIL) {2}|^\d+ problem\(s\)$/.test(l));
  assert.deepEqual(others, [], `every line of the report is a row:\n${r.output}`);
  const fails = lines.filter((l) => l.startsWith("FAIL"));
  assert.equal(fails.length, 1, r.output);
  assert.doesNotMatch(r.output, /start-pass-1|t1:/, "no password or token");
  return fails[0] as string;
}

const at = () => `127\\.0\\.0\\.1:${server.c2sPort}`;
const atDirect = () => `127\\.0\\.0\\.1:${server.directTlsPort}`;

test("a CA file that did not sign the server's certificate says so, not 'Set XMPP_CA_FILE'", async () => {
  for (const tls of ["starttls", "direct"]) {
    const port = String(tls === "direct" ? server.directTlsPort : server.c2sPort);
    const line = await failLine({ XMPP_CA_FILE: otherCa, XMPP_TLS: tls, XMPP_PORT: port });
    assert.match(
      line,
      new RegExp(
        `: TLS certificate of localhost is not signed by the CA in XMPP_CA_FILE \\(${otherCa.replace(/[.]/g, "\\.")}\\) nor by one the system trusts \\(UNABLE_TO_VERIFY_LEAF_SIGNATURE\\); refusing to connect: point XMPP_CA_FILE at the CA that signed the server's certificate$`,
      ),
      tls,
    );
    assert.doesNotMatch(line, /Set XMPP_CA_FILE|--use-system-ca/, tls);
  }
});

test("XMPP_TLS=direct against a STARTTLS port: the port speaks STARTTLS", async () => {
  const line = await failLine({ XMPP_TLS: "direct" });
  assert.match(
    line,
    new RegExp(
      `: the XMPP server at ${at()} speaks STARTTLS, not direct TLS: set XMPP_TLS=starttls, or XMPP_PORT to its direct-TLS port$`,
    ),
  );
  assert.doesNotMatch(line, /SSL routines|wrong version number/);
});

test("STARTTLS against a direct-TLS port: the port speaks direct TLS (and check does not crash)", async () => {
  const line = await failLine({ XMPP_PORT: String(server.directTlsPort) });
  assert.match(
    line,
    new RegExp(
      `: the XMPP server at ${atDirect()} speaks direct TLS, not STARTTLS: set XMPP_TLS=direct, or XMPP_PORT to its STARTTLS port$`,
    ),
  );
});

test("a JID domain the server does not host: the server does not host that domain", async () => {
  for (const tls of ["starttls", "direct"]) {
    const port = String(tls === "direct" ? server.directTlsPort : server.c2sPort);
    const line = await failLine({
      JID_FROM_USER: `${GW.user}@example.net`,
      XMPP_TLS: tls,
      XMPP_PORT: port,
    });
    assert.match(
      line,
      new RegExp(
        `: the XMPP server at 127\\.0\\.0\\.1:${port} does not host the domain example\\.net \\(.*\\); check the domain of ${GW.user}@example\\.net, and XMPP_HOST / XMPP_PORT$`,
      ),
      tls,
    );
    assert.doesNotMatch(line, /EPIPE|SSL routines/, tls);
  }
});
