// The per-account lease (postgres-lease.ts) and the claims it fences, against a real
// PostgreSQL (Debian's 15, started by the harness): each test on a fresh database that a
// PostgreSQL spool migrated, with short leases (300 ms) so that expiry is quick to see.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import pg from "pg";
import { type PostgresServer, startPostgres } from "../src/devserver/postgres.ts";
import { sleep } from "../src/devserver/process.ts";
import { openPostgresSpool, type PostgresSpool } from "../src/spool/postgres.ts";
import { createLeaseClient, type LeaseClient } from "../src/spool/postgres-lease.ts";
import { message, rejectsWith } from "../src/spool/spool.contract.ts";

const TTL = 300;
const ACCOUNT = "bot@example.org";
const LANE = { room: "ops@conf.example.org", nick: "bot" };
const ROOMY = { maxMessages: 100_000, maxBytes: 100_000_000 };

let server: PostgresServer;
before(async () => {
  server = await startPostgres();
});
after(() => server?.stop());

interface Harness {
  readonly url: string;
  readonly spool: PostgresSpool;
  /** A lease client for `holder`, closed with the harness. */
  client(holder: string, ttlMs?: number): LeaseClient;
}

/** Runs `fn` on a fresh database migrated by a spool; closes everything and drops it after. */
async function withLeases(fn: (h: Harness) => Promise<void>): Promise<void> {
  const url = await server.createDatabase();
  const spool = await openPostgresSpool({ url, limits: ROOMY, connectTimeoutMs: 2000 });
  const clients: LeaseClient[] = [];
  const client = (holder: string, ttlMs = TTL) => {
    const c = createLeaseClient(url, { holder, ttlMs });
    clients.push(c);
    return c;
  };
  try {
    await fn({ url, spool, client });
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await spool.close();
    await server.dropDatabase(new URL(url).pathname.slice(1));
  }
}

/** The bodies a fenced claim of LANE gets with `token`. */
async function claim(spool: PostgresSpool, token: number, account = ACCOUNT) {
  return (await spool.claim(LANE, 10, 0, { account, token })).map((m) => m.body);
}

/** Calls `acquire` until it takes the lease (within `ms`); resolves with the lease and when. */
async function acquireSoon(c: LeaseClient, account = ACCOUNT, ms = 5000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const lease = await c.acquire(account);
    if (lease !== undefined) return { lease, at: Date.now() };
    assert.ok(Date.now() < deadline, `the lease of ${account} was not taken within ${ms} ms`);
    await sleep(10);
  }
}

test("one holder acquires; another gets nothing until it expires, then takes it with a higher token; the first's renew is false and its claims empty", () =>
  withLeases(async ({ spool, client }) => {
    const a = client("a");
    const b = client("b");
    await spool.enqueue([message(LANE, "m")]);
    const before = Date.now();
    const first = await a.acquire(ACCOUNT);
    assert.ok(first !== undefined);
    assert.equal(first.expiresInMs, TTL);
    assert.deepEqual(await claim(spool, first.token), ["m"]);
    assert.equal(await b.acquire(ACCOUNT), undefined);
    assert.deepEqual(await a.acquire(ACCOUNT), first, "ours already: extended, same token");

    const taken = await acquireSoon(b);
    assert.ok(taken.at - before >= TTL - 5, `taken after ${taken.at - before} ms`);
    assert.ok(taken.lease.token > first.token);
    assert.equal(await a.renew(ACCOUNT, first.token), false);
    assert.deepEqual(await claim(spool, first.token), [], "the old holder claims nothing");
    assert.deepEqual(await claim(spool, taken.lease.token), ["m"]);
    assert.deepEqual(
      (await spool.pending(LANE, 10)).map((m) => m.body),
      ["m"],
      "unfenced pending is the Spool's, unchanged",
    );
    assert.equal(await a.acquire(ACCOUNT), undefined, "the old holder cannot take it back");
    assert.equal((await a.holder(ACCOUNT))?.holder, "b");
    // A token fences its own account only; an account never leased fences everything.
    assert.deepEqual(await claim(spool, taken.lease.token, "other@example.org"), []);
  }));

test("renewals keep the lease past its ttl; once it lapses even its holder claims nothing, until it acquires again with a new token", () =>
  withLeases(async ({ spool, client }) => {
    const ttl = 1000;
    const a = client("a", ttl);
    const b = client("b", ttl);
    await spool.enqueue([message(LANE, "m")]);
    const lease = await a.acquire(ACCOUNT);
    assert.ok(lease !== undefined);
    const start = Date.now();
    while (Date.now() - start < 2 * ttl) {
      await sleep(ttl / 4);
      assert.equal(await a.renew(ACCOUNT, lease.token), true);
      assert.equal(await b.acquire(ACCOUNT), undefined);
    }
    assert.equal(await a.renew(ACCOUNT, lease.token + 1), false, "another token is not ours");
    await sleep(ttl + 50);
    assert.deepEqual(await claim(spool, lease.token), [], "expired: fenced, though nobody took it");
    assert.equal(await a.holder(ACCOUNT), undefined);
    assert.equal(await a.renew(ACCOUNT, lease.token), false);
    const again = await a.acquire(ACCOUNT);
    assert.ok(again !== undefined && again.token > lease.token, "a new tenure, a new token");
    assert.deepEqual(await claim(spool, again.token), ["m"]);
  }));

test("holder() reports who holds the lease and since when; release lets another take it at once", () =>
  withLeases(async ({ client }) => {
    const a = client("a", 60_000);
    const b = client("b", 60_000);
    assert.equal(await a.holder(ACCOUNT), undefined, "never taken");
    const lease = await a.acquire(ACCOUNT);
    assert.ok(lease !== undefined);
    const held = await b.holder(ACCOUNT);
    assert.ok(held !== undefined);
    assert.deepEqual(
      { holder: held.holder, token: held.token, ttl: held.expiresAt - held.renewedAt },
      { holder: "a", token: lease.token, ttl: 60_000 },
    );
    // The database's clock; this test's database runs on this machine.
    assert.ok(Math.abs(held.renewedAt - Date.now()) < 2000, String(held.renewedAt));
    assert.ok(held.ageMs >= 0 && held.ageMs < 2000, String(held.ageMs));
    await sleep(50);
    assert.ok(((await a.holder(ACCOUNT))?.ageMs ?? 0) >= 50, "the lease ages");
    assert.equal(await a.renew(ACCOUNT, lease.token), true);
    const renewed = await a.holder(ACCOUNT);
    assert.ok(renewed !== undefined && renewed.renewedAt >= held.renewedAt + 50);
    assert.ok(renewed.ageMs < 50);

    await a.release(ACCOUNT, lease.token);
    assert.equal(await b.holder(ACCOUNT), undefined, "given up: nobody holds it");
    assert.equal(await a.renew(ACCOUNT, lease.token), false, "a released lease stays released");
    const taken = await b.acquire(ACCOUNT);
    assert.ok(taken !== undefined && taken.token > lease.token, "taken at once");
    await a.release(ACCOUNT, lease.token); // no longer a's: left alone
    assert.deepEqual(
      { holder: (await a.holder(ACCOUNT))?.holder, renew: await b.renew(ACCOUNT, taken.token) },
      { holder: "b", renew: true },
    );
    await b.release(ACCOUNT, taken.token);
    const back = await a.acquire(ACCOUNT);
    assert.ok(back !== undefined && back.token > taken.token);
  }));

test("clients racing for a free or an expired lease: exactly one wins each", () =>
  withLeases(async ({ client }) => {
    const clients = ["a", "b", "c", "d", "e"].map((h) => client(h));
    const accounts = Array.from({ length: 10 }, (_, i) => `bot${i}@example.org`);
    const race = (cs: readonly LeaseClient[], account: string) =>
      Promise.all(cs.map((c) => c.acquire(account)));
    for (const account of accounts) {
      const won = (await race(clients, account)).flatMap((l, i) => (l ? [i] : []));
      assert.equal(won.length, 1, `${account}: winners ${won}`);
      const winner = won[0] ?? -1;
      assert.equal((await clients[0]?.holder(account))?.holder, "abcde"[winner]);
    }
    // The same, once they have all expired: exactly one takes each over.
    await sleep(TTL + 50);
    const results = await Promise.all(accounts.map((account) => race(clients, account)));
    for (const [i, leases] of results.entries()) {
      assert.equal(leases.filter(Boolean).length, 1, `${accounts[i]}: ${JSON.stringify(leases)}`);
    }
  }));

test("a spool busy writing does not hold up a renewal", () =>
  withLeases(async ({ url, spool, client }) => {
    const a = client("a", 60_000);
    const lease = await a.acquire(ACCOUNT);
    assert.ok(lease !== undefined);
    // Another session holds the spool's write lock (postgres-commit.ts): commits wait.
    const blocker = new pg.Client({ connectionString: url });
    await blocker.connect();
    try {
      await blocker.query("SELECT pg_advisory_lock(2020438128, 1)");
      let stored = false;
      const post = spool.enqueue([message(LANE, "waits")]).then(() => {
        stored = true;
      });
      await sleep(100);
      assert.equal(stored, false, "the commit waits for the lock");
      const started = performance.now();
      assert.equal(await a.renew(ACCOUNT, lease.token), true);
      assert.ok(await a.holder(ACCOUNT));
      assert.ok(performance.now() - started < 1000, "renewed without waiting");
      assert.equal(stored, false);
      await blocker.query("SELECT pg_advisory_unlock(2020438128, 1)");
      await post;
    } finally {
      await blocker.end();
    }
  }));

test("the database stopped: every call rejects UNAVAILABLE, without the password; started again, leases work again", () =>
  withLeases(async ({ client }) => {
    const a = client("a");
    const lease = await a.acquire(ACCOUNT);
    assert.ok(lease !== undefined);
    await server.down();
    try {
      const calls = {
        taken: a.acquire(ACCOUNT),
        renewed: a.renew(ACCOUNT, lease.token),
        "given up": a.release(ACCOUNT, lease.token),
        read: a.holder(ACCOUNT),
      };
      for (const [what, p] of Object.entries(calls)) {
        const err = await rejectsWith(p, "UNAVAILABLE");
        assert.match(
          err.message,
          new RegExp(
            `^the lease of ${ACCOUNT} in postgres://gateway@127\\.0\\.0\\.1:${server.port}/t_\\w+ could not be ${what}: .*(ECONNREFUSED|terminat|connect)`,
            "i",
          ),
        );
        assert.ok(!err.message.includes(server.password), `no password: ${err.message}`);
        assert.equal(err.retryAfter, 30);
      }
    } finally {
      await server.start();
    }
    const again = await a.acquire(ACCOUNT);
    assert.ok(again !== undefined, "the lease is taken again");
    assert.equal(await a.renew(ACCOUNT, again.token), true);
    assert.equal((await a.holder(ACCOUNT))?.token, again.token);
  }));

test("a lease client with a wrong password fails UNAVAILABLE without it; bad options are refused", async () => {
  const url = new URL(server.url);
  url.password = "not-the-password-1234";
  const c = createLeaseClient(url.href, { holder: "a", ttlMs: TTL });
  try {
    const err = await rejectsWith(c.acquire(ACCOUNT), "UNAVAILABLE");
    assert.match(err.message, /password authentication failed/);
    assert.ok(!err.message.includes("not-the-password-1234"));
  } finally {
    await c.close();
  }
  await rejectsWith(c.acquire(ACCOUNT), "UNAVAILABLE"); // closed
  assert.throws(() => createLeaseClient(server.url, { holder: "", ttlMs: TTL }), RangeError);
  assert.throws(() => createLeaseClient(server.url, { holder: "a", ttlMs: 0 }), RangeError);
});

test("a fenced claim raises its lane's send mark to the last seq it handed out, committed before it returns; reads and refused claims do not", () =>
  withLeases(async ({ url, spool, client }) => {
    const stored = await spool.enqueue(["one", "two", "three"].map((b) => message(LANE, b)));
    const [one, two, three] = stored.map((m) => m.seq);
    assert.ok(one !== undefined && two !== undefined && three !== undefined);
    assert.equal(await spool.sentUpTo(LANE), 0, "nothing claimed yet");
    await spool.pending(LANE, 10);
    assert.equal(await spool.sentUpTo(LANE), 0, "an unfenced read is not a claim");
    const { lease } = await acquireSoon(client("a"));
    assert.deepEqual(await claim(spool, lease.token + 1), [], "a wrong token claims nothing");
    assert.equal(await spool.sentUpTo(LANE), 0, "nor raises the mark");

    assert.deepEqual(
      (await spool.claim(LANE, 2, 0, { account: ACCOUNT, token: lease.token })).map((m) => m.seq),
      [one, two],
    );
    // Another connection sees it at once: the claim's statement committed it.
    const other = new pg.Client({ connectionString: url });
    await other.connect();
    try {
      const { rows } = await other.query(
        "SELECT upto FROM send_marks WHERE room = $1 AND nick = $2",
        [LANE.room, LANE.nick],
      );
      assert.deepEqual(
        rows.map((r) => Number(r.upto)),
        [two],
      );
    } finally {
      await other.end();
    }
    // A claim again from the start (a resend) never lowers it; one further raises it.
    await spool.claim(LANE, 1, 0, { account: ACCOUNT, token: lease.token });
    assert.equal(await spool.sentUpTo(LANE), two);
    await spool.claim(LANE, 10, two, { account: ACCOUNT, token: lease.token });
    assert.equal(await spool.sentUpTo(LANE), three);
    assert.equal(await spool.sentUpTo({ ...LANE, nick: "other" }), 0, "per lane");
    // Without a fence (one gateway alone on the database) a claim marks all the same.
    await spool.enqueue([message({ ...LANE, nick: "other" }, "four")]);
    const [four] = await spool.claim({ ...LANE, nick: "other" }, 10, 0);
    assert.equal(await spool.sentUpTo({ ...LANE, nick: "other" }), four?.seq);
  }));
