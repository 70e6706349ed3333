// The PostgreSQL spool against a real PostgreSQL (Debian's 15, started by the harness):
// the three contract suites, each test on a fresh database of one server for the file, and
// what only a database server does (migrations, several gateways, the server going away).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import pg from "pg";
import { GatewayError, isCode } from "../src/core/errors.ts";
import { type PostgresServer, startPostgres } from "../src/devserver/postgres.ts";
import { sleep } from "../src/devserver/process.ts";
import { openPostgresSpool, type PostgresSpoolOptions } from "../src/spool/postgres.ts";
import { migratePostgres, PG_MIGRATIONS } from "../src/spool/postgres-migrations.ts";
import {
  message,
  type OpenSpool,
  rejectsWith,
  spoolContract,
} from "../src/spool/spool.contract.ts";
import { spoolAnchorContract } from "../src/spool/spool-anchor.contract.ts";
import { spoolDedupeContract } from "../src/spool/spool-dedupe.contract.ts";
import type { Spool, SpoolLimits } from "../src/spool/types.ts";

const ROOMY: SpoolLimits = { maxMessages: 100_000, maxBytes: 100_000_000 };
const LANE = { room: "ops@conf.example.org", nick: "bot" };

let server: PostgresServer;
before(async () => {
  server = await startPostgres();
});
after(() => server?.stop());

/** A fresh database's URL and name, dropped by `drop`. */
async function freshDatabase() {
  const url = await server.createDatabase();
  const name = new URL(url).pathname.slice(1);
  return { url, drop: () => server.dropDatabase(name) };
}

const openHarness: OpenSpool = async (limits, opts) => {
  const db = await freshDatabase();
  let commits = 0;
  const open = () =>
    openPostgresSpool({ url: db.url, limits, now: opts?.now, onCommit: () => (commits += 1) });
  let current = await open();
  return {
    spool: current,
    async reopen() {
      await current.close();
      current = await open();
      return current;
    },
    commits: () => commits,
    async cleanup() {
      await current.close();
      await db.drop();
    },
  };
};
spoolContract("PostgreSQL", openHarness);
spoolDedupeContract("PostgreSQL", openHarness);
spoolAnchorContract("PostgreSQL", openHarness);

/** Runs `fn` with a spool on a fresh database, then closes it and drops the database. */
async function withSpool(
  fn: (spool: Spool, url: string) => Promise<void>,
  opts: Partial<PostgresSpoolOptions> = {},
): Promise<void> {
  const db = await freshDatabase();
  const spool = await openPostgresSpool({ url: db.url, limits: ROOMY, ...opts });
  try {
    await fn(spool, db.url);
  } finally {
    await spool.close();
    await db.drop();
  }
}

/** Runs `statement` on `url` on a connection of its own; resolves with the rows. */
async function query(url: string, statement: string, values: unknown[] = []) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(statement, values)).rows;
  } finally {
    await client.end();
  }
}

test("an empty database is migrated to the newest version; a reopen changes nothing and keeps the data", async () => {
  const db = await freshDatabase();
  try {
    let spool = await openPostgresSpool({ url: db.url, limits: ROOMY });
    const versions = await query(db.url, "SELECT version FROM schema_version ORDER BY version");
    assert.deepEqual(
      versions.map((r) => r.version),
      PG_MIGRATIONS.map((_, i) => i + 1),
    );
    const tables = await query(
      db.url,
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    );
    assert.deepEqual(
      tables.map((r) => r.table_name),
      [
        "dead_letters",
        "dedupe",
        "leases",
        "messages",
        "schema_version",
        "send_mark_log",
        "send_marks",
        "threads",
      ],
    );
    await spool.enqueue([message(LANE, "kept")]);
    await spool.close();
    spool = await openPostgresSpool({ url: db.url, limits: ROOMY });
    assert.deepEqual(
      (await query(db.url, "SELECT count(*)::int AS n FROM schema_version"))[0]?.n,
      PG_MIGRATIONS.length,
    );
    assert.deepEqual(
      (await spool.pending(LANE, 10)).map((m) => m.body),
      ["kept"],
    );
    assert.deepEqual(spool.stats(), { messages: 1, bytes: 4, deadLetters: 0 });
    await spool.close();
  } finally {
    await db.drop();
  }
});

test("gateways opening one empty database at once migrate it once", async () => {
  const db = await freshDatabase();
  try {
    const spools = await Promise.all(
      [1, 2, 3].map(() => openPostgresSpool({ url: db.url, limits: ROOMY })),
    );
    const rows = await query(db.url, "SELECT version FROM schema_version");
    assert.equal(rows.length, PG_MIGRATIONS.length);
    await Promise.all(spools.map((s) => s.close()));
  } finally {
    await db.drop();
  }
});

test("a database of schema version 2 is migrated with every queued message marked as possibly sent", async () => {
  const db = await freshDatabase();
  try {
    // Version 2 exactly as released: migrations are never edited once released.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await migratePostgres(client, "test", PG_MIGRATIONS.slice(0, 2));
      await client.query(
        `INSERT INTO messages (id, post_id, route, room, nick, body, bytes, created_at) VALUES
         ('q1', 'p1', 'r', $1, 'bot', 'one', 3, 1000), ('q2', 'p2', 'r', $1, 'bot', 'two', 3, 1001),
         ('q3', 'p3', 'r', $1, 'other', 'three', 5, 1002)`,
        [LANE.room],
      );
    } finally {
      await client.end();
    }
    const spool = await openPostgresSpool({ url: db.url, limits: ROOMY });
    try {
      for (const lane of [LANE, { ...LANE, nick: "other" }]) {
        const last = (await spool.pending(lane, 10)).at(-1)?.seq;
        assert.ok(last !== undefined);
        assert.equal(await spool.sentUpTo(lane), last, lane.nick);
      }
    } finally {
      await spool.close();
    }
  } finally {
    await db.drop();
  }
});

test("a database written by a newer gateway is refused, untouched", async () => {
  const db = await freshDatabase();
  try {
    await (await openPostgresSpool({ url: db.url, limits: ROOMY })).close();
    await query(db.url, "INSERT INTO schema_version (version) VALUES (99)");
    const err = await openPostgresSpool({ url: db.url, limits: ROOMY }).catch((e: unknown) => e);
    assert.ok(isCode(err, "UNAVAILABLE"), String(err));
    assert.match(
      (err as Error).message,
      new RegExp(`schema version 99.*versions up to ${PG_MIGRATIONS.length}\\b.*newer xmpp-msg-gw`),
    );
    const rows = await query(db.url, "SELECT max(version) AS v FROM schema_version");
    assert.equal(rows[0]?.v, 99);
  } finally {
    await db.drop();
  }
});

test("posts the database refuses (a reused id, a NUL in a body) fail alone; their commit's others are stored", () =>
  withSpool(async (spool) => {
    const first = message(LANE, "first");
    await spool.enqueue([first]);
    const [dup, nul, ok] = await Promise.allSettled([
      spool.enqueue([message(LANE, "new-in-same-post"), first]),
      spool.enqueue([message(LANE, "nul\u0000byte")]),
      spool.enqueue([message(LANE, "ok")]),
    ]);
    assert.ok(dup?.status === "rejected" && isCode(dup.reason, "INTERNAL"), String(dup));
    assert.ok(nul?.status === "rejected" && isCode(nul.reason, "INTERNAL"), String(nul));
    assert.equal(ok?.status, "fulfilled");
    assert.deepEqual(
      (await spool.pending(LANE, 10)).map((m) => m.body),
      ["first", "ok"],
    );
    assert.deepEqual(spool.stats(), { messages: 2, bytes: 7, deadLetters: 0 });
  }));

test("two gateways on one database: one sees the other's posts, and its counts within a second or so", async () => {
  const db = await freshDatabase();
  const a = await openPostgresSpool({ url: db.url, limits: ROOMY });
  const b = await openPostgresSpool({ url: db.url, limits: ROOMY });
  try {
    const posts = Array.from({ length: 10 }, (_, i) => message(LANE, `p${i}`));
    await Promise.all(posts.map((m, i) => (i % 2 ? a : b).enqueue([m])));
    const seen = await b.pending(LANE, 100);
    assert.equal(seen.length, 10);
    assert.ok(seen.every((m, i) => i === 0 || m.seq > (seen[i - 1]?.seq ?? 0)));
    const deadline = Date.now() + 5000;
    while (b.stats().messages !== 10 && Date.now() < deadline) await sleep(50);
    assert.deepEqual(b.stats(), { messages: 10, bytes: 20, deadLetters: 0 });
  } finally {
    await a.close();
    await b.close();
    await db.drop();
  }
});

test("the server stopped: calls fail UNAVAILABLE with Retry-After and health says why; started again, the spool recovers by itself", () =>
  withSpool(
    async (spool) => {
      const [kept] = await spool.enqueue([message(LANE, "before")]);
      await server.down();
      try {
        const err = await rejectsWith(spool.enqueue([message(LANE, "lost")]), "UNAVAILABLE");
        assert.equal(err.retryAfter, 30);
        assert.match(err.message, /could not be written/);
        const health = spool.health();
        assert.equal(health.writable, false);
        assert.match(health.error ?? "", /ECONNREFUSED|terminat|connect/i);
        assert.ok(!(health.error ?? "").includes(server.password), "no password in health");
        assert.ok(!err.message.includes(server.password), "no password in errors");
        for (const p of [
          spool.pending(LANE, 10),
          spool.lanes(),
          spool.delivered([kept?.id ?? ""]),
        ]) {
          assert.equal((await rejectsWith(p, "UNAVAILABLE")).retryAfter, 30);
        }
        assert.deepEqual(spool.stats(), { messages: 1, bytes: 6, deadLetters: 0 }, "never throws");
      } finally {
        await server.start();
      }
      // Nobody posts: health() alone (a /ready probe) finds the database back.
      const deadline = Date.now() + 10_000;
      while (!spool.health().writable && Date.now() < deadline) await sleep(100);
      assert.deepEqual(spool.health(), { writable: true });
      await spool.enqueue([message(LANE, "after")]);
      assert.deepEqual(
        (await spool.pending(LANE, 10)).map((m) => m.body),
        ["before", "after"],
      );
      assert.deepEqual(spool.stats(), { messages: 2, bytes: 11, deadLetters: 0 });
    },
    { connectTimeoutMs: 2000 },
  ));

test("a database that cannot be reached at open is refused UNAVAILABLE, without the password", async () => {
  const url = new URL(server.url);
  url.password = "not-the-password-1234";
  const err = await openPostgresSpool({ url: url.href, limits: ROOMY }).catch((e: unknown) => e);
  assert.ok(err instanceof GatewayError && err.code === "UNAVAILABLE", String(err));
  assert.match(err.message, /password authentication failed/);
  assert.ok(!err.message.includes("not-the-password-1234"));
  assert.match(err.message, new RegExp(`postgres://gateway@127\\.0\\.0\\.1:${server.port}/`));
});

test("the server crashes mid-burst: every acknowledged post is there, once, after it restarts; the rest were refused UNAVAILABLE", () =>
  withSpool(
    async (spool) => {
      const acked: string[] = [];
      const refused: unknown[] = [];
      const posts: Promise<unknown>[] = [];
      const post = (tag: string) => {
        const m = message(LANE, tag);
        posts.push(
          spool.enqueue([m]).then(
            () => acked.push(m.id),
            (e) => refused.push(e),
          ),
        );
      };
      const round = async (r: number) => {
        for (let i = 0; i < 10; i++) post(`r${r}-${i}`);
        await sleep(10);
      };
      let r = 0;
      while (r < 10) await round(r++);
      let back = false;
      const crash = server
        .down({ crash: true }) // SIGQUIT: connections drop mid-commit, no checkpoint
        .then(() => sleep(200))
        .then(() => server.start())
        .then(() => {
          back = true;
        });
      while (!back) await round(r++);
      await crash;
      const ackedBeforeEnd = acked.length;
      for (let end = r + 30; r < end; ) await round(r++);
      await Promise.all(posts);
      assert.ok(refused.length > 0, "some posts met the crash");
      for (const e of refused) {
        assert.ok(isCode(e, "UNAVAILABLE") && (e as GatewayError).retryAfter === 30, String(e));
      }
      assert.ok(acked.length > ackedBeforeEnd, "posts are taken again once the server is back");
      const stored = (await spool.pending(LANE, 100_000)).map((m) => m.id);
      const missing = acked.filter((id) => !stored.includes(id));
      assert.deepEqual(missing, [], "lost = 0 among acknowledged posts");
      assert.equal(new Set(stored).size, stored.length, "no duplicates");
      // A commit whose outcome the crash hid may have stored a refused post; the counts
      // find out by the recount.
      const deadline = Date.now() + 5000;
      while (spool.stats().messages !== stored.length && Date.now() < deadline) await sleep(50);
      assert.equal(spool.stats().messages, stored.length);
      assert.deepEqual(spool.health(), { writable: true });
    },
    { connectTimeoutMs: 2000 },
  ));
