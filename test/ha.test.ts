// Two gateways on one PostgreSQL spool (issue 14): both accept posts, one sends per
// account (by lease). Real parts: the PostgreSQL and Prosody harnesses, two
// `xmpp-msg-gw serve` processes, and the slixmpp witness in a persistent room, which counts
// what arrived live and in the room's archive (XEP-0313). The sender is killed (-9),
// frozen past its lease (SIGSTOP), and the database stopped, each during a burst of posts.
import assert from "node:assert/strict";
import { after, before, type TestContext, test } from "node:test";
import { httpPost } from "../src/devserver/http-post.ts";
import { type PostgresServer, startPostgres } from "../src/devserver/postgres.ts";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { killCliChildren, type ServeProcess, startServe } from "./support/cli.ts";
import { type Account, gatewayEnv } from "./support/gateway.ts";
import { until } from "./support/until.ts";
import { type Observer, observe } from "./support/witness.ts";

const WATCHER = { user: "hawatch", password: "ha-watch-pass-1" };
/** One account per scenario: a lease is per account, and each scenario has its own database. */
const GW = {
  kill: { user: "hagw-kill", password: "ha-kill-pass-1" },
  stop: { user: "hagw-stop", password: "ha-stop-pass-1" },
  pg: { user: "hagw-pg", password: "ha-pg-pass-1" },
};
const LEASE_TTL_MS = 2000;
const NICK = "ha-bot";
let server: ProsodyServer;
let pg: PostgresServer;
const observers = new Set<Observer>();
const frozen = new Set<ServeProcess>();

before(async () => {
  [server, pg] = await Promise.all([
    startProsody({ users: [WATCHER, ...Object.values(GW)] }),
    startPostgres(),
  ]);
});

after(async () => {
  for (const g of frozen) g.child.kill("SIGCONT");
  killCliChildren();
  await Promise.allSettled([...observers].map((o) => o.stop()));
  await Promise.allSettled([server?.stop(), pg?.stop()]);
});

/** Joins `room` as the witness, its first occupant (so its owner), and makes it persistent. */
async function witness(room: string): Promise<Observer> {
  const o = await observe(server, WATCHER, [room], "ha-witness");
  observers.add(o);
  await o.configureRoom(room, { "muc#roomconfig_persistentroom": "1" });
  return o;
}

/** Starts `serve` on the spool at `spoolUrl`, sending as `account` to `room` under {@link NICK}. */
function replica(account: Account, spoolUrl: string, room: string): Promise<ServeProcess> {
  return startServe({
    ...gatewayEnv(server, account),
    SPOOL_URL: spoolUrl,
    LEASE_TTL: `${LEASE_TTL_MS / 1000}s`,
    KNOWN_ROOMS: `ha:${room}:${NICK}`,
    LOG_LEVEL: "info",
    RATE_LIMIT_PER_MINUTE: "0",
    SHUTDOWN_GRACE_MS: "1000",
  });
}

interface ReadyBody {
  ready: boolean;
  spool: { messages: number };
  leases?: Array<{ account: string; role: "leader" | "standby"; token?: number }>;
}

async function ready(g: ServeProcess): Promise<{ status: number; body: ReadyBody }> {
  const res = await fetch(`${g.url}/ready`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: (await res.json()) as ReadyBody };
}

const role = async (g: ServeProcess) => (await ready(g)).body.leases?.[0]?.role;

/** The value of the counter `name` in `/metrics` (0 when absent). */
async function counter(g: ServeProcess, name: string): Promise<number> {
  const text = await (await fetch(`${g.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`xmpp_msg_gw_${name}`));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

/** Starts two replicas, the first one sending (leader, joined) before the second starts. */
async function pair(account: Account, room: string): Promise<[ServeProcess, ServeProcess]> {
  const url = await pg.createDatabase();
  const first = await replica(account, url, room);
  await until(
    "the first replica to lead and be ready",
    async () => {
      const r = await ready(first);
      return r.status === 200 && r.body.leases?.[0]?.role === "leader";
    },
    30_000,
  );
  const second = await replica(account, url, room);
  await until("the second replica to be a ready standby", async () => {
    const r = await ready(second);
    return r.status === 200 && r.body.leases?.[0]?.role === "standby";
  });
  return [first, second];
}

/** The replica of `gs` whose `/ready` says it leads; the other one. */
async function sender(gs: ServeProcess[]): Promise<[ServeProcess, ServeProcess]> {
  const roles = await Promise.all(gs.map(role));
  assert.equal(roles.filter((r) => r === "leader").length, 1, `roles ${roles.join(", ")}`);
  const i = roles.indexOf("leader");
  return [gs[i] as ServeProcess, gs[1 - i] as ServeProcess];
}

/** What a burst of posts got back. */
interface Burst {
  /** Bodies answered 2xx, in the order acknowledged. */
  readonly accepted: string[];
  /** Per connection, its acknowledged bodies in order (each posted after the last's 2xx). */
  readonly byConnection: string[][];
  /** Bodies not acknowledged, with the status (0: no reply) and Retry-After. */
  readonly refused: Array<{ text: string; to: string; status: number; retryAfter?: string }>;
  /** Posts made so far. */
  posted(): number;
  readonly done: Promise<void>;
}

/**
 * Posts `prefix 0…total-1` with `?wait=0` over `connections` sequential posters, post i to
 * `targets()[i % n]`, until `total` or `stop()`. After a refusal a poster waits `pauseMs`.
 */
function burst(opts: {
  prefix: string;
  total: number;
  connections: number;
  targets: () => ServeProcess[];
  stop?: () => boolean;
  pauseMs?: number;
  paceMs?: number;
}): Burst {
  let next = 0;
  const accepted: string[] = [];
  const refused: Burst["refused"] = [];
  const byConnection = Array.from({ length: opts.connections }, () => [] as string[]);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const poster = async (mine: string[]) => {
    while (next < opts.total && !opts.stop?.()) {
      const i = next++;
      const targets = opts.targets();
      const to = targets[i % targets.length] as ServeProcess;
      const text = `${opts.prefix} ${i}`;
      const res = await httpPost(`${to.url}/post/ha?wait=0`, text, {
        "content-type": "text/plain",
      }).catch(() => ({ status: 0, headers: {} as Record<string, string>, body: "" }));
      if (res.status >= 200 && res.status < 300) {
        accepted.push(text);
        mine.push(text);
        if (opts.paceMs) await sleep(opts.paceMs);
        continue;
      }
      const retryAfter = res.headers["retry-after"];
      refused.push({ text, to: to.url, status: res.status, retryAfter: retryAfter as string });
      if (opts.pauseMs) await sleep(opts.pauseMs);
    }
  };
  const done = Promise.all(byConnection.map(poster)).then(() => {});
  return { accepted, byConnection, refused, posted: () => next, done };
}

/** Waits until `g` leads, is ready, and the shared spool holds nothing. */
async function drained(g: ServeProcess, ms = 60_000): Promise<void> {
  let last: unknown;
  await until(
    "the sender to empty the spool",
    async () => {
      const r = await ready(g);
      last = r.body;
      return (
        r.status === 200 && r.body.leases?.[0]?.role === "leader" && r.body.spool.messages === 0
      );
    },
    ms,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last /ready ${JSON.stringify(last)}\n${g.output()}`);
  });
}

/**
 * What {@link NICK} said in `room`: how many times each body arrived (the larger of the live
 * and the archived count: one arrival seen both ways is one), and the archive's order.
 */
async function arrivals(o: Observer, room: string) {
  const count = (bodies: string[]) => {
    const m = new Map<string, number>();
    for (const b of bodies) m.set(b, (m.get(b) ?? 0) + 1);
    return m;
  };
  const order = (await o.archive(room)).filter((m) => m.nick === NICK).map((m) => m.body);
  const live = o.messages.filter((m) => m.room === room && m.nick === NICK).map((m) => m.body);
  const counts = count(order);
  for (const [b, n] of count(live)) counts.set(b, Math.max(n, counts.get(b) ?? 0));
  return { counts, order };
}

/**
 * Asserts that every acknowledged post arrived, nothing twice, and each connection's posts
 * in the order it posted them; resolves with the arrival counts.
 */
async function exactlyOnce(t: TestContext, o: Observer, room: string, ...bursts: Burst[]) {
  const { counts, order } = await arrivals(o, room);
  const b = {
    accepted: bursts.flatMap((x) => x.accepted),
    byConnection: bursts.flatMap((x) => x.byConnection),
    refused: bursts.flatMap((x) => x.refused),
    posted: () => bursts.reduce((n, x) => n + x.posted(), 0),
  };
  const lost = b.accepted.filter((text) => !counts.has(text));
  const twice = [...counts].filter(([, n]) => n > 1).map(([text, n]) => `${text} ×${n}`);
  const at = new Map(order.map((text, i) => [text, i]));
  const earlier = (x: string, y: string) => (at.get(x) ?? -1) < (at.get(y) ?? -1);
  const outOfOrder = b.byConnection.filter((mine) =>
    mine.some((text, i) => i > 0 && earlier(text, mine[i - 1] as string)),
  ).length;
  t.diagnostic(
    `posted ${b.posted()}, acknowledged ${b.accepted.length}, refused ${b.refused.length}; ` +
      `arrived ${counts.size}, lost ${lost.length}, duplicates ${twice.length}, ` +
      `connections out of order ${outOfOrder} (targets 0)`,
  );
  assert.deepEqual(lost.slice(0, 20), [], `${lost.length} acknowledged post(s) never arrived`);
  assert.deepEqual(twice.slice(0, 20), [], `${twice.length} post(s) arrived more than once`);
  assert.equal(outOfOrder, 0, "each connection's acknowledged posts arrive in the order posted");
  return counts;
}

test("kill -9 of the sender during 2,000 posts over 16 connections: the standby takes over; lost 0, duplicates 0", async (t) => {
  const room = `ha-kill@${server.mucDomain}`;
  const o = await witness(room);
  const replicas = await pair(GW.kill, room);
  const [leader, survivor] = await sender(replicas);
  assert.doesNotMatch(survivor.output(), /took the lease/);
  const b = burst({ prefix: "kill", total: 2000, connections: 16, targets: () => replicas });
  await until("a third of the posts to be acknowledged", () => b.accepted.length >= 650, 60_000);
  const liveBefore = o.messages.length;
  await leader.stop("SIGKILL");
  const killedAt = Date.now();
  await survivor.waitFor(/took the lease/, 20_000);
  const leaseAt = Date.now();
  const sinceLease = o.messages.length;
  await until(
    "the survivor's first message to arrive",
    () => o.messages.length > sinceLease,
    20_000,
  );
  const firstAt = Date.now();
  t.diagnostic(
    `takeover ${firstAt - killedAt} ms from the kill to the survivor's first arrival ` +
      `(lease taken after ${leaseAt - killedAt} ms, then join + check + send ${firstAt - leaseAt} ms; ` +
      `LEASE_TTL ${LEASE_TTL_MS} ms); ${o.messages.length - liveBefore} live arrivals since the kill`,
  );
  await b.done;
  const started = Date.now();
  await drained(survivor);
  const found = survivor.output().match(/found in the room history after a rejoin/g)?.length ?? 0;
  t.diagnostic(
    `spool emptied ${Date.now() - started} ms after the last post; ${found} unconfirmed message(s) found in the room, not resent`,
  );

  const unexpected = b.refused.filter((r) => r.to !== leader.url);
  assert.deepEqual(unexpected.slice(0, 5), [], "the survivor acknowledges every post it gets");
  await exactlyOnce(t, o, room, b);
  assert.equal(await counter(survivor, "lease_takeovers_total"), 1);
  await survivor.stop("SIGTERM");
});

test("SIGSTOP of the sender past its lease, then SIGCONT: the standby took over; the old sender stays standby and sends nothing", async (t) => {
  const room = `ha-stop@${server.mucDomain}`;
  const o = await witness(room);
  const replicas = await pair(GW.stop, room);
  const [paused, other] = await sender(replicas);
  // Posts keep coming to the other replica, paced, before, during and after the pause.
  let stopPosting = false;
  const b = burst({
    prefix: "stop",
    total: 100_000,
    connections: 4,
    targets: () => [other],
    stop: () => stopPosting,
    paceMs: 20,
  });
  await until("posts to flow", () => b.accepted.length >= 100, 30_000);
  // A burst to the sender itself, frozen right after its last 202: it has messages in
  // flight (sent, not yet confirmed) or not yet sent.
  const last = burst({ prefix: "stop-last", total: 64, connections: 8, targets: () => [paused] });
  await last.done;
  paused.child.kill("SIGSTOP");
  frozen.add(paused);
  const stoppedAt = Date.now();
  try {
    await other.waitFor(/took the lease/, 20_000);
    t.diagnostic(`the other replica took the lease ${Date.now() - stoppedAt} ms after SIGSTOP`);
    await new Promise((r) => setTimeout(r, Math.max(0, stoppedAt + 3 * LEASE_TTL_MS - Date.now())));
    assert.equal(await role(other), "leader");
  } finally {
    paused.child.kill("SIGCONT");
    frozen.delete(paused);
  }
  const resumedAt = Date.now();
  await paused.waitFor(/lost the lease/, 10_000);
  t.diagnostic(`the resumed replica logged the loss ${Date.now() - resumedAt} ms after SIGCONT`);
  const confirmedAtLoss = await counter(paused, "messages_delivered_total");
  // Keep posting a while with the resumed one back, then let the leader drain.
  await new Promise((r) => setTimeout(r, 2000));
  stopPosting = true;
  await b.done;
  await drained(other);
  const found = other.output().match(/found in the room history after a rejoin/g)?.length ?? 0;
  t.diagnostic(
    `${found} unconfirmed message(s) of the paused sender found in the room, not resent`,
  );

  const r = await ready(paused);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.leases?.[0]?.role, "standby", JSON.stringify(r.body));
  assert.equal(await role(other), "leader");
  assert.equal(await counter(paused, "lease_losses_total"), 1);
  assert.equal(await counter(other, "lease_takeovers_total"), 1);
  assert.equal(
    await counter(paused, "messages_delivered_total"),
    confirmedAtLoss,
    "the resumed replica confirmed nothing after it lost the lease",
  );
  assert.deepEqual(b.refused.slice(0, 5), [], "the other replica acknowledges every post");
  assert.equal(last.accepted.length, 64, "the sender acknowledged the posts before its pause");
  await exactlyOnce(t, o, room, b, last);
  await Promise.all(replicas.map((g) => g.stop("SIGTERM")));
});

test("PostgreSQL stopped mid-burst: 503 with Retry-After while it is down; back by itself; every acknowledged post once", async (t) => {
  const room = `ha-pg@${server.mucDomain}`;
  const o = await witness(room);
  const replicas = await pair(GW.pg, room);
  let phase: "before" | "down" | "back" = "before";
  let acceptedWhenBack = 0;
  const b = burst({
    prefix: "pg",
    total: 100_000,
    connections: 16,
    targets: () => replicas,
    stop: () => phase === "back" && b.accepted.length >= acceptedWhenBack + 400,
    pauseMs: 100,
  });
  await until("posts to flow", () => b.accepted.length >= 400, 30_000);
  const [leaderBefore] = await sender(replicas);
  const downAt = Date.now();
  const refusedBefore = b.refused.length;
  await pg.down();
  phase = "down";
  await new Promise((r) => setTimeout(r, 3000));
  await pg.start();
  const upAt = Date.now();
  acceptedWhenBack = b.accepted.length;
  phase = "back";
  await b.done;
  const whileDown = b.refused.length - refusedBefore;
  t.diagnostic(
    `down ${upAt - downAt} ms; ${b.refused.length} refused (${whileDown} from pg.down() on)`,
  );
  const [leader] = await until(
    "one replica to lead again",
    async () => {
      const roles = await Promise.all(replicas.map(role));
      return roles.filter((x) => x === "leader").length === 1;
    },
    30_000,
  ).then(() => sender(replicas));
  await drained(leader);
  t.diagnostic(
    `spool emptied ${Date.now() - upAt} ms after the database came back; ` +
      `the sender is ${leader === leaderBefore ? "the same replica" : "the other replica"}`,
  );
  // Unrenewable for longer than its TTL, the lease was given up, then taken anew: the
  // messages confirmed by the room but not in the spool went through the rejoin's check.
  assert.match(leaderBefore.output(), /lost the lease/);

  assert.ok(whileDown > 0, "posts were refused while the database was down");
  const not503 = b.refused.filter((r) => r.status !== 503 || !(Number(r.retryAfter) > 0));
  assert.deepEqual(not503.slice(0, 5), [], "every refusal is a 503 with Retry-After");
  const counts = await exactlyOnce(t, o, room, b);
  // A 503 wrote nothing: none of the refused posts reached the room.
  const halfWritten = b.refused.filter((r) => counts.has(r.text)).map((r) => r.text);
  assert.deepEqual(halfWritten, [], "a refused post is not delivered");
  await Promise.all(replicas.map((g) => g.stop("SIGTERM")));
});
