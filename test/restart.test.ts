// The gateway as a process that dies and restarts: `kill -9` with messages queued, SIGTERM
// with messages unconfirmed, and `spool retry` reaching a running gateway. The gateway
// runs as a child process (`xmpp-msg-gw serve`), against a real Prosody, and what the room
// received is read back from its archive (XEP-0313) by a second real account.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { httpPost } from "../src/devserver/http-post.ts";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { killCliChildren, runCli, type ServeProcess, startServe } from "./support/cli.ts";
import { gatewayEnv } from "./support/gateway.ts";
import { until } from "./support/until.ts";
import { type Observer, observe } from "./support/witness.ts";

const GW = { user: "restartgw", password: "restart-gw-pass-1" };
const WATCHER = { user: "restartwatch", password: "restart-watch-1" };
const GRACE_MS = 1000;
const DRAIN_GRACE_MS = 3000;
let server: ProsodyServer;
const observers = new Set<Observer>();

before(async () => {
  server = await startProsody({ users: [GW, WATCHER] });
});

after(async () => {
  killCliChildren();
  await Promise.allSettled([...observers].map((o) => o.stop()));
  if (server) {
    try {
      process.kill(server.pid, "SIGCONT"); // in case a test stopped it and failed
    } catch {}
    await server.stop();
  }
});

async function watcher(room: string, nick: string): Promise<Observer> {
  const o = await observe(server, WATCHER, [room], nick);
  observers.add(o);
  return o;
}

async function stopWatcher(o: Observer): Promise<void> {
  observers.delete(o);
  await o.stop();
}

/**
 * Creates `room` as its owner and makes it persistent: Prosody destroys a temporary room,
 * and its archive with it, when its last occupant goes, as on a server restart.
 */
async function persistentRoom(room: string, nick: string): Promise<void> {
  const owner = await watcher(room, nick);
  try {
    await owner.configureRoom(room, { "muc#roomconfig_persistentroom": "1" });
  } finally {
    await stopWatcher(owner);
  }
}

/** Starts `serve` in an empty directory with `dataDir` as its spool directory. */
function startGateway(
  dataDir: string,
  knownRooms: string,
  env: Record<string, string> = {},
): Promise<ServeProcess> {
  return startServe({
    ...gatewayEnv(server, GW),
    KNOWN_ROOMS: knownRooms,
    DATA_DIR: dataDir,
    LOG_LEVEL: "info",
    SHUTDOWN_GRACE_MS: String(GRACE_MS),
    ...env,
  });
}

/** GET `/ready`: its status and JSON body. */
function ready(g: ServeProcess): Promise<{ status: number; body: ReadyBody }> {
  return new Promise((resolve, reject) => {
    const req = get(`${g.url}/ready`, { timeout: 5000 }, (res) => {
      let body = "";
      res.on("data", (d) => {
        body += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("no reply from /ready within 5 s")));
    req.on("error", reject);
  });
}

interface ReadyBody {
  ready: boolean;
  spool: { messages: number; deadLetters: number };
  sessions: Array<{ rooms: Array<{ room: string; state: string; lastError: string | null }> }>;
}

/** Waits until `/ready` says ready and the spool holds no message. */
async function readyAndEmpty(g: ServeProcess, ms: number): Promise<void> {
  let last: unknown;
  await until(
    "/ready to say ready with an empty spool",
    async () => {
      const r = await ready(g);
      last = r.body;
      return r.status === 200 && r.body.ready && r.body.spool.messages === 0;
    },
    ms,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last /ready: ${JSON.stringify(last)}\n${g.output()}`);
  });
}

const post = (g: ServeProcess, token: string, text: string, query = "") =>
  httpPost(`${g.url}/post/${token}${query}`, text, { "content-type": "text/plain" });

/** Runs `xmpp-msg-gw spool …` on `dataDir` as a separate process, bounded in time. */
const spoolCli = (dataDir: string, ...args: string[]) =>
  runCli(["spool", ...args], { DATA_DIR: dataDir });

/** The bodies `nick` said in `room`, from the archive, and how many of them are repeats. */
async function arrived(
  reader: Observer,
  room: string,
  nick: string,
): Promise<{ bodies: string[]; duplicates: number }> {
  const bodies = (await reader.archive(room)).filter((m) => m.nick === nick).map((m) => m.body);
  return { bodies, duplicates: bodies.length - new Set(bodies).size };
}

const dataDir = () => mkdtempSync(join(tmpdir(), "gw-restart-data-"));

test("gateway killed with kill -9 while messages are queued; restarted: all of them arrive", async (t) => {
  const room = `killed@${server.mucDomain}`;
  const data = dataDir();
  const first = await startGateway(data, `kt:${room}:kill-bot`);
  await until("the first gateway to be ready", async () => (await ready(first)).status === 200);

  await server.down();
  const texts = Array.from({ length: 50 }, (_, i) => `queued before kill -9: ${i}`);
  for (const text of texts) {
    const res = await post(first, "kt", text);
    assert.equal(res.status, 202, res.body);
    assert.equal(JSON.parse(res.body).status, "queued");
  }
  const killed = await first.stop("SIGKILL");
  assert.equal(killed.signal, "SIGKILL");

  await server.start();
  const started = Date.now();
  const second = await startGateway(data, `kt:${room}:kill-bot`);
  assert.match(second.output(), /50 message\(s\) waiting in the spool/);
  await readyAndEmpty(second, 60_000);
  t.diagnostic(`spool emptied ${Date.now() - started} ms after the restart`);

  const reader = await watcher(room, "kill-reader");
  try {
    const { bodies, duplicates } = await arrived(reader, room, "kill-bot");
    const missing = texts.filter((text) => !bodies.includes(text));
    t.diagnostic(`accepted 50, lost ${missing.length}, duplicates ${duplicates} (target 0)`);
    assert.deepEqual(missing, [], "every accepted message must arrive");
    assert.equal(duplicates, 0, "nothing was sent before the kill: no repeats");
    assert.deepEqual(bodies, texts, "in the order they were accepted");
  } finally {
    await stopWatcher(reader);
    await second.stop("SIGTERM");
  }
});

test("SIGTERM: exits 0 within the grace period; unconfirmed messages stay spooled for the next start", async (t) => {
  const room = `term@${server.mucDomain}`;
  await persistentRoom(room, "term-owner");
  const data = dataDir();
  const routes = `tt:${room}:term-bot`;
  const first = await startGateway(data, routes);
  await until("the gateway to be ready", async () => (await ready(first)).status === 200);
  const before = await post(first, "tt", "sent before SIGTERM");
  assert.equal(before.status, 200, before.body);
  assert.equal(JSON.parse(before.body).status, "delivered");

  await server.down();
  const texts = ["unconfirmed 1", "unconfirmed 2", "unconfirmed 3"];
  for (const text of texts) {
    const res = await post(first, "tt", text);
    assert.equal(res.status, 202, res.body);
  }
  const stopped = await first.stop("SIGTERM");
  t.diagnostic(`exited ${stopped.ms} ms after SIGTERM (grace ${GRACE_MS} ms)`);
  assert.equal(stopped.code, 0, first.output());
  assert.ok(stopped.ms < GRACE_MS + 2000, `exit took ${stopped.ms} ms`);
  assert.match(first.output(), /stopped; 3 message\(s\) stay in the spool for the next start/);

  await server.start();
  const second = await startGateway(data, routes);
  try {
    await readyAndEmpty(second, 60_000);
    const reader = await watcher(room, "term-reader");
    try {
      const { bodies, duplicates } = await arrived(reader, room, "term-bot");
      t.diagnostic(`duplicates ${duplicates} (target 0)`);
      assert.deepEqual(bodies, ["sent before SIGTERM", ...texts]);
    } finally {
      await stopWatcher(reader);
    }
  } finally {
    await second.stop("SIGTERM");
  }
});

test("SIGTERM with a message in flight: new posts get 503 with Retry-After, the exit is bounded, the message is not repeated", async (t) => {
  const room = `drain@${server.mucDomain}`;
  await persistentRoom(room, "drain-owner");
  const data = dataDir();
  const routes = `dt:${room}:drain-bot`;
  // Longer than elsewhere: the 503 must be seen within it even on a loaded machine.
  const first = await startGateway(data, routes, { SHUTDOWN_GRACE_MS: String(DRAIN_GRACE_MS) });
  await until("the gateway to be ready", async () => (await ready(first)).status === 200);

  // A frozen server keeps the stream open but never reflects the message back: it stays
  // in flight, and the gateway waits the grace period for it.
  process.kill(server.pid, "SIGSTOP");
  try {
    const res = await post(first, "dt", "in flight at SIGTERM", "?wait=0");
    assert.equal(res.status, 202, res.body);
    first.child.kill("SIGTERM");
    await until("the gateway to wait for the confirmation", () =>
      /waiting up to \d+ ms for 1 confirmation/.test(first.output()),
    );
    const refused = await post(first, "dt", "posted while shutting down");
    assert.equal(refused.status, 503, refused.body);
    assert.ok(Number(refused.headers["retry-after"]) > 0, "Retry-After");
    assert.match(JSON.parse(refused.body).error, /shutting down/);
    const stopped = await first.stop("SIGTERM", 60_000);
    t.diagnostic(`exited ${stopped.ms} ms after the 503 (grace ${DRAIN_GRACE_MS} ms)`);
    assert.equal(stopped.code, 0, first.output());
    assert.match(first.output(), /stopped; 1 message\(s\) stay in the spool/);
    // The grace period, then at most 2 s to leave the rooms and close the stream.
    assert.ok(stopped.ms < DRAIN_GRACE_MS + 3500, `exit took ${stopped.ms} ms`);
  } finally {
    process.kill(server.pid, "SIGCONT");
  }

  // The frozen server got the message after all; the next start finds it in the room
  // history and does not send it again.
  const second = await startGateway(data, routes);
  try {
    await readyAndEmpty(second, 60_000);
    const reader = await watcher(room, "drain-reader");
    try {
      const { bodies, duplicates } = await arrived(reader, room, "drain-bot");
      t.diagnostic(`duplicates ${duplicates} (target 0)`);
      assert.deepEqual(bodies, ["in flight at SIGTERM"]);
      assert.match(second.output(), /found in the room history after a rejoin: not resent/);
    } finally {
      await stopWatcher(reader);
    }
  } finally {
    await second.stop("SIGTERM");
  }
});

test("SIGTERM with the server up: the gateway's occupant leaves the room, and nothing stays spooled", async () => {
  const room = `leave@${server.mucDomain}`;
  const o = await watcher(room, "leave-watcher");
  const presences: Array<{ nick: string; type: string }> = [];
  const off = o.onPresence((p) => {
    if (p.room === room) presences.push({ nick: p.nick, type: p.type });
  });
  try {
    const g = await startGateway(dataDir(), `lt:${room}:leave-bot`);
    await until("the observer to see the gateway join", () =>
      presences.some((p) => p.nick === "leave-bot" && p.type === "available"),
    );
    const res = await post(g, "lt", "hello before leaving");
    assert.equal(res.status, 200, res.body);
    const stopped = await g.stop("SIGTERM");
    assert.equal(stopped.code, 0, g.output());
    assert.match(g.output(), /stopped; 0 message\(s\) stay in the spool/);
    await until("the observer to see the gateway leave", () =>
      presences.some((p) => p.nick === "leave-bot" && p.type === "unavailable"),
    );
  } finally {
    off();
    await stopWatcher(o);
  }
});

test("spool retry reaches a running gateway: a dead letter is delivered soon after the refusal is lifted", async (t) => {
  const room = `retry@${server.mucDomain}`;
  const owner = await watcher(room, "retry-owner"); // first in: the owner
  const data = dataDir();
  await owner.configureRoom(room, {
    "muc#roomconfig_membersonly": "1",
    "muc#roomconfig_persistentroom": "1",
  });
  const g = await startGateway(data, `rt:${room}:retry-bot`);
  try {
    const res = await post(g, "rt", "let me in, eventually");
    assert.ok(res.status === 403 || res.status === 202, res.body);
    let listed = "";
    await until(
      "spool list to show the dead letter",
      async () => {
        listed = (await spoolCli(data, "list")).stdout;
        return listed.includes("let me in, eventually");
      },
      30_000,
    );
    assert.match(listed, /registration-required/);
    // As when an operator fixes the membership after a while: the room's next join attempt
    // is far off (its backoff grows to a minute), longer than the spool scan interval (5 s).
    await until(
      "the join backoff to exceed 8 s",
      () =>
        [...g.output().matchAll(/not in retry@\S+ as retry-bot: .*?retrying in (\d+) ms/g)].some(
          (m) => Number(m[1]) >= 8000,
        ),
      40_000,
    );

    await owner.setAffiliation(room, `${GW.user}@${server.domain}`, "member");
    const retried = await spoolCli(data, "retry", "--all");
    assert.equal(retried.code, 0, retried.stderr);
    assert.match(retried.stdout, /1 dead letter queued again/);
    const started = Date.now();
    const got = await owner.waitFor((m) => m.body === "let me in, eventually", 20_000);
    t.diagnostic(`arrived ${Date.now() - started} ms after spool retry`);
    assert.equal(got.nick, "retry-bot");
    await readyAndEmpty(g, 20_000);
    assert.equal((await ready(g)).body.spool.deadLetters, 0);
  } finally {
    await g.stop("SIGTERM");
  }
});
