// Proves the harness hands out an ejabberd that real clients can log in to, over both
// STARTTLS and direct TLS, trusting only the throwaway CA; that its MUC reflects and archives
// groupchat; that accounts survive a crash; and that stop() leaves no process behind.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import tls from "node:tls";
import { type Client, client, xml } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import { parse } from "yaml";
import { type EjabberdServer, startEjabberd } from "../src/devserver/ejabberd.ts";
import { DEBIAN_DEFAULTS, renderEjabberdYml } from "../src/devserver/ejabberd-config.ts";

let server: EjabberdServer;

before(async () => {
  server = await startEjabberd({ users: [{ user: "alice", password: "alice-secret" }] });
  // Node reads NODE_EXTRA_CA_CERTS only at start-up; Node 24 lets a test add a CA later.
  const caPem = await readFile(server.caFile, "utf8");
  tls.setDefaultCACertificates([...tls.getCACertificates("default"), caPem]);
});

after(async () => {
  await server?.stop();
});

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

/** Connects and waits for `online`; the caller stops the client. */
async function connect(service: string, username: string, password: string): Promise<Client> {
  // xmpp.js waits 2 s for the server's stream header by default: too short for a freshly
  // started ejabberd on a loaded machine (its first TLS handshake is slow).
  const xmpp = client({
    service,
    domain: server.domain,
    username,
    password,
    resource: "test",
    timeout: 10_000,
  } as Parameters<typeof client>[0]);
  const errors: unknown[] = [];
  xmpp.on("error", (err: unknown) => errors.push(err));
  // A test client never reconnects: one left reconnecting to a stopped server every
  // second keeps this file's process alive after its last test.
  xmpp.reconnect.stop();
  try {
    await withTimeout(xmpp.start(), 12_000, `login via ${service}`);
    return xmpp;
  } catch (err) {
    await stopClient(xmpp);
    throw new Error(`login via ${service} failed: ${String(err)}; errors: ${errors.join("; ")}`);
  }
}

async function stopClient(xmpp: Client): Promise<void> {
  await withTimeout(
    xmpp.stop().catch(() => undefined),
    3_000,
    "client stop",
  ).catch(() => undefined);
}

/** Logs in and out again, resolving with the bound JID. */
async function logIn(service: string, username: string, password: string): Promise<string> {
  const xmpp = await connect(service, username, password);
  try {
    return String(xmpp.jid);
  } finally {
    await stopClient(xmpp);
  }
}

const starttls = (): string => `xmpp://${server.host}:${server.c2sPort}`;

test("a registered user logs in over STARTTLS", { timeout: 30_000 }, async () => {
  assert.equal(await logIn(starttls(), "alice", "alice-secret"), "alice@localhost/test");
});

test("a registered user logs in over direct TLS", { timeout: 30_000 }, async () => {
  const address = await logIn(`xmpps://localhost:${server.directTlsPort}`, "alice", "alice-secret");
  assert.equal(address, "alice@localhost/test");
});

test("users registered later can log in too; a wrong password is refused", {
  timeout: 40_000,
}, async () => {
  await server.register("bob", "bob-secret");
  assert.equal(await logIn(starttls(), "bob", "bob-secret"), "bob@localhost/test");
  await assert.rejects(logIn(starttls(), "alice", "wrong"));
});

test("a room on conference.localhost reflects groupchat and archives it (MAM)", {
  timeout: 40_000,
}, async () => {
  const xmpp = await connect(starttls(), "alice", "alice-secret");
  try {
    const room = `harness@${server.mucDomain}`;
    const seen = (pred: (s: Element) => boolean, what: string) =>
      withTimeout(
        new Promise<Element>((resolve) => {
          const onStanza = (s: Element): void => {
            if (!pred(s)) return;
            xmpp.removeListener("stanza", onStanza);
            resolve(s);
          };
          xmpp.on("stanza", onStanza);
        }),
        5_000,
        what,
      );
    const joined = seen((s) => s.is("presence") && s.attrs.from === `${room}/alice`, "join");
    await xmpp.send(
      xml(
        "presence",
        { to: `${room}/alice` },
        xml("x", { xmlns: "http://jabber.org/protocol/muc" }),
      ),
    );
    const self = await joined;
    assert.notEqual(self.attrs.type, "error", self.toString());
    const reflected = seen((s) => s.is("message") && s.attrs.id === "harness-1", "reflection");
    await xmpp.send(
      xml("message", { to: room, type: "groupchat", id: "harness-1" }, xml("body", {}, "hi all")),
    );
    assert.equal((await reflected).getChildText("body"), "hi all");

    const archived = seen((s) => s.getChild("result", "urn:xmpp:mam:2") !== undefined, "MAM");
    const fin = await xmpp.iqCaller.request(
      xml("iq", { type: "set", to: room }, xml("query", { xmlns: "urn:xmpp:mam:2", queryid: "q" })),
    );
    assert.equal(fin.getChild("fin", "urn:xmpp:mam:2")?.attrs.complete, "true");
    const forwarded = (await archived).getChild("result")?.getChild("forwarded");
    assert.equal(forwarded?.getChild("message")?.getChildText("body"), "hi all");
  } finally {
    await stopClient(xmpp);
  }
});

test("the config keeps Debian's limits unless overridden", () => {
  const config = parse(readFileSync(path.join(server.dir, "ejabberd.yml"), "utf8"));
  for (const listener of config.listen) {
    assert.equal(listener.max_stanza_size, DEBIAN_DEFAULTS.maxStanzaSize);
    assert.equal(listener.ip, "127.0.0.1");
  }
  assert.equal(config.shaper_rules.max_user_sessions, DEBIAN_DEFAULTS.maxUserSessions);
  assert.deepEqual(config.shaper.normal, { rate: 3000, burst_size: 20000 });
  assert.deepEqual(config.shaper_rules.c2s_shaper, { none: "admin", normal: "all" });

  const layout = { domain: "localhost", mucDomain: "conference.localhost", host: "127.0.0.1" };
  const overridden = parse(
    renderEjabberdYml(
      { ...layout, c2sPort: 1, directTlsPort: 2, certfiles: [] },
      {
        maxStanzaSize: 1000,
        maxUserSessions: 2,
        shaper: "none",
        extraConfig: "modules: {mod_version: {}}",
      },
    ),
  );
  assert.equal(overridden.listen[0].max_stanza_size, 1000);
  assert.equal(overridden.shaper_rules.max_user_sessions, 2);
  assert.equal(overridden.shaper_rules.c2s_shaper, "none");
  assert.ok("mod_version" in overridden.modules && "mod_muc" in overridden.modules);
});

test("stop() kills beam.smp and removes the directory", { timeout: 20_000 }, async () => {
  const other = await startEjabberd();
  assert.equal(readFileSync(`/proc/${other.pid}/comm`, "utf8").trim(), "beam.smp");
  await other.stop();
  assert.throws(() => process.kill(other.pid, 0), { code: "ESRCH" });
  assert.deepEqual(processesMentioning(other.dir), []);
  await assert.rejects(readFile(other.caFile), { code: "ENOENT" });
  await other.stop(); // a second stop() is harmless
});

/** PIDs whose command line names `text` (ejabberdctl, su, sh and beam.smp all name the dir). */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(text)) pids.push(Number(entry));
    } catch {
      // Exited while we looked.
    }
  }
  return pids;
}
