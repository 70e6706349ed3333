// The throwaway PostgreSQL of the tests: on loopback only, as an unprivileged user, with a
// test user that is not a superuser, fresh databases on demand, data kept over a restart
// and a crash, and nothing left behind by stop().
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import pg from "pg";
import { type PostgresServer, requirePostgres, startPostgres } from "../src/devserver/postgres.ts";

let server: PostgresServer;
before(async () => {
  server = await startPostgres();
});
after(() => server?.stop());

async function query(url: string, statement: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(statement)).rows;
  } finally {
    await client.end();
  }
}

/** The real uid of a process (Linux /proc). */
function uidOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8")
    .split("\n")
    .find((l) => l.startsWith("Uid:"));
  return Number(line?.split(/\s+/)[1]);
}

test("finds Debian's binaries (off PATH) or says how to install them", () => {
  const bin = requirePostgres();
  assert.ok(existsSync(`${bin}/initdb`) && existsSync(`${bin}/postgres`), bin);
});

test("serves the test user's database on 127.0.0.1 only, as a user that is not root", async () => {
  assert.match(server.url, /^postgres:\/\/gateway:[0-9a-f]+@127\.0\.0\.1:\d+\/gateway$/);
  const [row] = await query(
    server.url,
    "SELECT current_user AS u, current_database() AS d, current_setting('listen_addresses') AS l, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS su",
  );
  assert.deepEqual(row, { u: "gateway", d: "gateway", l: "127.0.0.1", su: false });
  assert.notEqual(uidOf(server.pid), 0);
  // A wrong password is refused: the cluster does not trust loopback connections.
  const bad = new URL(server.url);
  bad.password = "wrong";
  await assert.rejects(query(bad.href, "SELECT 1"), /password authentication failed/);
});

test("createDatabase gives an empty database of the test user; dropDatabase removes it", async () => {
  const url = await server.createDatabase("t_harness");
  assert.equal(new URL(url).pathname, "/t_harness");
  await query(url, "CREATE TABLE t (x int)");
  const [owner] = await query(
    server.adminUrl,
    "SELECT pg_get_userbyid(datdba) AS o FROM pg_database WHERE datname = 't_harness'",
  );
  assert.equal(owner?.o, "gateway");
  await server.dropDatabase("t_harness");
  const rows = await query(
    server.adminUrl,
    "SELECT 1 FROM pg_database WHERE datname = 't_harness'",
  );
  assert.equal(rows.length, 0);
});

test("down and start keep the data and the port; so does a crash (SIGQUIT: recovery at start)", async () => {
  const url = await server.createDatabase();
  await query(url, "CREATE TABLE t (x int); INSERT INTO t VALUES (1)");
  const first = server.pid;
  await server.down();
  await assert.rejects(query(url, "SELECT 1"), /ECONNREFUSED/);
  await server.start();
  assert.notEqual(server.pid, first);
  await query(url, "INSERT INTO t VALUES (2)");
  await server.down({ crash: true });
  await server.start();
  const rows = await query(url, "SELECT x FROM t ORDER BY x");
  assert.deepEqual(
    rows.map((r) => r.x),
    [1, 2],
  );
});

test("stop ends the server and removes its directory; a second stop is harmless", async () => {
  const other = await startPostgres();
  const { pid, dir } = other;
  await other.stop();
  await other.stop();
  assert.equal(existsSync(dir), false);
  assert.throws(() => process.kill(pid, 0), /ESRCH/);
});
