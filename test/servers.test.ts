// The delivery heart's core scenarios on every XMPP server we support (Prosody and
// ejabberd, as Debian ships them): what arrived is checked by an independent client
// (slixmpp) in the room and in the room's archive, never by the gateway's own code.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { LogLevel } from "../src/config/index.ts";
import { httpPost } from "../src/devserver/http-post.ts";
import {
  startXmppServer,
  XMPP_SERVERS,
  type XmppTestServer,
} from "../src/devserver/xmpp-server.ts";
import { createLogger } from "../src/log.ts";
import type { Gateway } from "../src/main.ts";
import { killCliChildren, startServe } from "./support/cli.ts";
import { FAST_TIMING, gatewayEnv, startTestGateway } from "./support/gateway.ts";
import { until } from "./support/until.ts";
import { type Observer, observe } from "./support/witness.ts";

const LOG_LEVEL = (process.env.TEST_LOG_LEVEL ?? "fatal") as LogLevel;
const WATCHER = { user: "witness", password: "witness-pass-1" };
/** One account per scenario: ejabberd's session limit counts per account. */
const ACCOUNTS = [
  "basic",
  "outage",
  "crash",
  "kick",
  "members",
  "slow",
  "big",
  "shutdown",
  "burst",
].map((user) => ({ user: `gw-${user}`, password: `${user}-pass-1` }));
const account = (name: string) =>
  ACCOUNTS.find((a) => a.user === `gw-${name}`) as (typeof ACCOUNTS)[number];

for (const kind of XMPP_SERVERS) {
  describe(`on ${kind}`, () => {
    let server: XmppTestServer;
    let witness: Observer;
    const gateways: Gateway[] = [];
    const observers: Observer[] = [];

    before(async () => {
      server =
        kind === "ejabberd"
          ? await startXmppServer("ejabberd", {
              users: [WATCHER, ...ACCOUNTS],
              // Debian's shaper for everyone but the throughput scenarios' accounts.
              extraConfig: `acl:\n  admin:\n    user: ["gw-crash@localhost", "gw-outage@localhost", "gw-big@localhost", "gw-burst@localhost"]\n`,
            })
          : await startXmppServer("prosody", { users: [WATCHER, ...ACCOUNTS] });
    });

    after(async () => {
      killCliChildren();
      await Promise.allSettled(gateways.map((g) => g.stop()));
      await Promise.allSettled(observers.map((o) => o.stop()));
      await server?.stop();
    });

    async function gateway(name: string, env: Record<string, string>): Promise<Gateway> {
      const g = await startTestGateway(
        server as never,
        account(name),
        {
          DATA_DIR: mkdtempSync(join(tmpdir(), "gw-data-")),
          XMPP_LOG_LEVEL: LOG_LEVEL,
          RATE_LIMIT_PER_MINUTE: "0",
          ...env,
        },
        { log: createLogger(LOG_LEVEL), timing: FAST_TIMING, selfPingMs: 1000 },
      );
      gateways.push(g);
      return g;
    }
    async function watch(room: string, nick = "witness"): Promise<Observer> {
      const o = await observe(server, WATCHER, [room], nick);
      observers.push(o);
      return o;
    }
    const post = (g: Gateway, token: string, text: string, query = "") =>
      httpPost(`${g.url}/post/${token}${query}`, text, { "content-type": "text/plain" });
    const arrivedBy = async (o: Observer, room: string, nick: string) =>
      (await o.archive(room)).filter((m) => m.nick === nick).map((m) => m.body);
    const ready = async (g: Gateway) => {
      const res = await fetch(`${g.url}/ready`);
      return { status: res.status, body: await res.text() };
    };

    test("delivery, two nicks in one room: each message once, under its own nick", async () => {
      const room = `basic@${server.mucDomain}`;
      witness = await watch(room);
      const g = await gateway("basic", { KNOWN_ROOMS: `ta:${room}:alpha tb:${room}:beta` });
      assert.equal((await post(g, "ta", "from alpha")).status, 200);
      assert.equal((await post(g, "tb", "from beta")).status, 200);
      assert.equal((await witness.waitFor((m) => m.body === "from alpha")).nick, "alpha");
      assert.equal((await witness.waitFor((m) => m.body === "from beta")).nick, "beta");
      assert.deepEqual(await arrivedBy(witness, room, "alpha"), ["from alpha"]);
    });

    test("server down: posts are queued (202); server back: all arrive, in order, once", async () => {
      const room = `outage@${server.mucDomain}`;
      const g = await gateway("outage", { KNOWN_ROOMS: `out:${room}:outage-bot` });
      await server.down();
      const texts = Array.from({ length: 40 }, (_, i) => `outage ${i}`);
      for (const text of texts) assert.equal((await post(g, "out", text)).status, 202);
      await server.start();
      await until("the spool to empty", () => g.spool.stats().messages === 0, 60_000);
      const o = await watch(room, "outage-reader");
      assert.deepEqual(await arrivedBy(o, room, "outage-bot"), texts);
    });

    test("graceful shutdowns while the gateway reconnects: it stays up, and every post arrives once", async () => {
      const room = `shutdown@${server.mucDomain}`;
      const owner = await watch(room, "shutdown-owner");
      // Persistent, so that the room and its archive outlive the restarts.
      await owner.configureRoom(room, { "muc#roomconfig_persistentroom": "1" });
      const g = await gateway("shutdown", { KNOWN_ROOMS: `sd:${room}:shutdown-bot` });
      const texts: string[] = [];
      const postSome = async (n: number) => {
        for (let i = 0; i < n; i++) {
          const text = `shutdown ${texts.length}`;
          const res = await post(g, "sd", text, "?wait=0");
          assert.ok(res.status === 200 || res.status === 202, `${res.status} ${res.body}`);
          texts.push(text);
        }
      };
      await postSome(5);
      // SIGTERM: the server says system-shutdown and closes. Started again, and shut down
      // again while the gateway is in the middle of logging in and joining, three times.
      for (const pause of [0, 150, 400]) {
        await server.down();
        await postSome(5);
        await server.start();
        await new Promise((r) => setTimeout(r, pause));
      }
      await server.down();
      await postSome(5);
      await server.start();
      await until("the spool to empty", () => g.spool.stats().messages === 0, 60_000);
      assert.equal((await ready(g)).status, 200);
      const o = await watch(room, "shutdown-reader");
      assert.deepEqual(await arrivedBy(o, room, "shutdown-bot"), texts);
      assert.deepEqual(await g.spool.listDead(), []);
    });

    test("server kill -9 under 8 concurrent posters: every accepted post arrives", async (t) => {
      const room = `crash@${server.mucDomain}`;
      // Live as well as archived: a server killed with -9 may lose the last archive writes
      // (ejabberd's Mnesia) of messages the room did deliver.
      const live = await watch(room, "crash-live");
      const g = await gateway("crash", { KNOWN_ROOMS: `cr:${room}:crash-bot` });
      const total = 300;
      const accepted: string[] = [];
      let next = 0;
      const poster = async () => {
        while (next < total) {
          const text = `crash ${next++}`;
          const res = await post(g, "cr", text, "?wait=0");
          if (res.status === 200 || res.status === 202) accepted.push(text);
          else assert.equal(res.status, 503, `${res.status} ${res.body}`);
        }
      };
      const posting = Promise.all(Array.from({ length: 8 }, poster));
      await until("a third of the posts", () => next > total / 3);
      await server.down({ crash: true });
      await new Promise((r) => setTimeout(r, 300));
      await server.start();
      await posting;
      await until("the spool to empty", () => g.spool.stats().messages === 0, 90_000);
      const o = await watch(room, "crash-reader");
      await live.untilJoined(room, 20_000);
      const archived = await arrivedBy(o, room, "crash-bot");
      const seen = live.messages.filter((m) => m.nick === "crash-bot").map((m) => m.body);
      // Each copy counts once per source; a body seen live and archived is one arrival.
      const counts = new Map<string, number>();
      for (const b of archived) counts.set(b, (counts.get(b) ?? 0) + 1);
      const liveCounts = new Map<string, number>();
      for (const b of seen) liveCounts.set(b, (liveCounts.get(b) ?? 0) + 1);
      for (const [b, n] of liveCounts) counts.set(b, Math.max(n, counts.get(b) ?? 0));
      const duplicates = [...counts.values()].reduce((n, c) => n + c - 1, 0);
      t.diagnostic(
        `${kind}: accepted ${accepted.length}, arrived ${counts.size}, duplicates ${duplicates}, dead ${(await g.spool.listDead()).length} ${(await g.spool.listDead())[0]?.reason ?? ""}; missing ${accepted
          .filter((x) => !counts.has(x))
          .slice(0, 8)
          .join(", ")}`,
      );
      assert.deepEqual(
        accepted.filter((text) => !counts.has(text)),
        [],
        "every accepted post must arrive",
      );
    });

    test("gateway kill -9 during a burst, right after another: restarted, nothing lost, nothing twice", async (t) => {
      const room = `burst@${server.mucDomain}`;
      const owner = await watch(room, "burst-owner");
      // Persistent, so the archive outlives the room's emptiness between the two gateways.
      await owner.configureRoom(room, { "muc#roomconfig_persistentroom": "1" });
      const env = {
        ...gatewayEnv(server as never, account("burst")),
        KNOWN_ROOMS: `bu:${room}:burst-bot`,
        DATA_DIR: mkdtempSync(join(tmpdir(), "gw-burst-")),
        RATE_LIMIT_PER_MINUTE: "0",
        LOG_LEVEL: "info", // startServe waits for the "listening on" line
      };
      const accepted: string[] = [];
      const burst = async (url: string, prefix: string, n: number, stopAt?: () => boolean) => {
        let next = 0;
        const poster = async () => {
          while (next < n && !stopAt?.()) {
            const text = `${prefix} ${next++}`;
            const res = await httpPost(`${url}/post/bu?wait=0`, text, {
              "content-type": "text/plain",
            }).catch(() => ({ status: 0, body: "" }));
            if (res.status === 200 || res.status === 202) accepted.push(text);
          }
        };
        await Promise.all(Array.from({ length: 16 }, poster));
      };
      const first = await startServe(env);
      await burst(first.url, "early", 300);
      let killed = false;
      const second = burst(first.url, "burst", 600, () => killed);
      await until("the second burst to be under way", () => accepted.length > 450, 30_000);
      await first.stop("SIGKILL");
      killed = true;
      await second;
      const again = await startServe(env);
      await until(
        "the restarted gateway to empty its spool",
        async () => {
          const r = await fetch(`${again.url}/ready`);
          const body = (await r.json()) as { spool: { messages: number } };
          return r.status === 200 && body.spool.messages === 0;
        },
        90_000,
      );
      const bodies = await arrivedBy(owner, room, "burst-bot");
      const counts = new Map<string, number>();
      for (const b of bodies) counts.set(b, (counts.get(b) ?? 0) + 1);
      const duplicates = [...counts.values()].reduce((n, c) => n + c - 1, 0);
      const lost = accepted.filter((text) => !counts.has(text));
      t.diagnostic(
        `${kind}: accepted ${accepted.length}, lost ${lost.length}, duplicates ${duplicates}`,
      );
      await again.stop("SIGTERM");
      assert.deepEqual(lost, [], "every accepted post arrives");
      assert.equal(duplicates, 0, "what reached the room before the kill is not sent again");
    });

    test("kicked: the gateway rejoins and the next message arrives", async () => {
      const room = `kick@${server.mucDomain}`;
      const owner = await watch(room, "kick-owner"); // first in: owner and moderator
      const g = await gateway("kick", { KNOWN_ROOMS: `kk:${room}:kick-bot` });
      assert.equal((await post(g, "kk", "before the kick")).status, 200);
      await owner.kick(room, "kick-bot");
      const res = await post(g, "kk", "after the kick");
      assert.ok(res.status === 200 || res.status === 202, res.body);
      assert.equal((await owner.waitFor((m) => m.body === "after the kick")).nick, "kick-bot");
    });

    test("members-only room: 403 naming the refusal, one dead letter, /ready says why", async () => {
      const room = `members@${server.mucDomain}`;
      const owner = await watch(room, "members-owner");
      await owner.configureRoom(room, {
        "muc#roomconfig_membersonly": "1",
        "muc#roomconfig_persistentroom": "1",
      });
      const g = await gateway("members", { KNOWN_ROOMS: `mo:${room}:member-bot` });
      const res = await post(g, "mo", "let me in");
      assert.equal(res.status, 403, res.body);
      assert.match(JSON.parse(res.body).error, /registration-required|members-only/);
      assert.equal((await g.spool.listDead()).length, 1);
      const r = await ready(g);
      assert.equal(r.status, 503);
      assert.match(r.body, /registration-required|members-only/);
    });

    test("a 150 KB message under the server's shaper arrives exactly once", {
      timeout: 180_000,
    }, async () => {
      const room = `slow@${server.mucDomain}`;
      const o = await watch(room, "slow-reader");
      const g = await gateway("slow", {
        KNOWN_ROOMS: `sl:${room}:slow-bot`,
        MAX_MESSAGE_BYTES: "200000",
        MAX_BODY_BYTES: "300000",
      });
      const big = `big ${"x".repeat(150_000)}`;
      const res = await post(g, "sl", big, "?wait=0");
      assert.equal(res.status, 202, res.body);
      await until("the spool to empty", () => g.spool.stats().messages === 0, 150_000);
      assert.equal(
        (await o.waitFor((m) => m.body.startsWith("big "), 10_000)).body.length,
        big.length,
      );
      const copies = (await arrivedBy(o, room, "slow-bot")).filter((b) => b.startsWith("big "));
      assert.equal(copies.length, 1);
    });

    // Both servers refuse stanzas over 256 KiB by default (Prosody: c2s_stanza_size_limit,
    // ejabberd: max_stanza_size) by closing the stream, and neither advertises it.
    test("a message over the server's stanza limit is dead-lettered after two tries; later ones flow", async () => {
      const room = `big@${server.mucDomain}`;
      const o = await watch(room, "big-reader");
      const g = await gateway("big", {
        KNOWN_ROOMS: `bg:${room}:big-bot`,
        MAX_MESSAGE_BYTES: "400000",
        MAX_BODY_BYTES: "500000",
      });
      const res = await post(g, "bg", "y".repeat(300_000), "?wait=0");
      assert.equal(res.status, 202, res.body);
      assert.equal((await post(g, "bg", "after the big one", "?wait=0")).status, 202);
      await o.waitFor((m) => m.body === "after the big one", 60_000);
      const dead = await g.spool.listDead();
      assert.equal(dead.length, 1);
      assert.match(dead[0]?.reason ?? "", /policy-violation|too big/);
      assert.ok((dead[0]?.attempts ?? 0) <= 2, `attempts ${dead[0]?.attempts}`);
      assert.match((await ready(g)).body, /"learnedMaxStanzaBytes":262144/);
      // The next large post is split to fit instead.
      assert.equal((await post(g, "bg", "z".repeat(300_000), "?wait=0")).status, 202);
      await until("the split parts to arrive", () => g.spool.stats().messages === 0, 60_000);
      assert.equal((await g.spool.listDead()).length, 1);
    });
  });
}
