// The SQLite spool's send marks (sqlite-marks.ts): written ahead of need and bounded, and
// a spool file of the previous schema counts everything it holds as possibly sent.
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { tempDirs } from "../../test/support/temp-dirs.ts";
import { MARK_RAISE_TTL_MS } from "./expiry.ts";
import { MIGRATIONS, migrate } from "./migrations.ts";
import { message } from "./spool.contract.ts";
import { openSqliteSpool, spoolPath } from "./sqlite.ts";
import { AHEAD } from "./sqlite-marks.ts";

const LIMITS = { maxMessages: 100_000, maxBytes: 100_000_000 };
const LANE = { room: "ops@conf.example.org", nick: "bot" };
const OTHER = { room: "ops@conf.example.org", nick: "other" };
const newDir = tempDirs("gw-marks-");
const tempPath = () => spoolPath(newDir());

test("a post into a lane that keeps up is marked by its own commit; a long burst is not, and claims mark AHEAD further", async () => {
  const spool = openSqliteSpool({ path: tempPath(), limits: LIMITS });
  try {
    const [one] = await spool.enqueue([message(LANE, "alone")]);
    assert.equal(await spool.sentUpTo(LANE), one?.seq, "marked with the post, before any claim");
    assert.equal(await spool.sentUpTo(OTHER), 0, "a lane never posted to");

    // One commit of more than AHEAD posts: the lane's tail is long, the post marks nothing.
    const burst = await Promise.all(
      Array.from({ length: AHEAD + 50 }, (_, i) => spool.enqueue([message(OTHER, `b${i}`)])),
    );
    const seqs = burst.map(([m]) => m?.seq ?? 0);
    assert.equal(await spool.sentUpTo(OTHER), 0, "a backlog is not marked as sent");
    const claimed = await spool.claim(OTHER, 10, 0);
    assert.equal(claimed.length, 10);
    assert.equal(await spool.sentUpTo(OTHER), seqs[9 + AHEAD], "AHEAD past the last claimed");
    // Claims within the mark write nothing; past it, AHEAD further (here: the lane's end).
    await spool.claim(OTHER, 10, claimed.at(-1)?.seq ?? 0);
    assert.equal(await spool.sentUpTo(OTHER), seqs[9 + AHEAD]);
    await spool.claim(OTHER, AHEAD, seqs[9 + AHEAD] ?? 0);
    assert.equal(await spool.sentUpTo(OTHER), seqs.at(-1));
  } finally {
    await spool.close();
  }
});

test("a spool file of schema version 2 is migrated with every queued message marked as possibly sent", async () => {
  const path = tempPath();
  // Version 2 exactly as released: migrations are never edited once released.
  const old = new DatabaseSync(path);
  old.exec("PRAGMA journal_mode = WAL");
  migrate(old, path, MIGRATIONS.slice(0, 2));
  const columns = "id, post_id, route, room, nick, body, bytes, created_at";
  old.exec(`INSERT INTO messages (${columns}) VALUES
    ('q1', 'p1', 'r', '${LANE.room}', 'bot', 'one', 3, 1000),
    ('q2', 'p2', 'r', '${LANE.room}', 'bot', 'two', 3, 1001),
    ('q3', 'p3', 'r', '${LANE.room}', 'other', 'three', 5, 1002)`);
  old.close();

  const spool = openSqliteSpool({ path, limits: LIMITS });
  try {
    const seqOf = async (lane: typeof LANE) => (await spool.pending(lane, 10)).at(-1)?.seq;
    assert.equal(await spool.sentUpTo(LANE), await seqOf(LANE));
    assert.equal(await spool.sentUpTo(OTHER), await seqOf(OTHER));
  } finally {
    await spool.close();
  }
});

test("the log of raises keeps what the lane's queued messages need and is swept below them", async () => {
  const path = tempPath();
  const clock = { now: 1_700_000_000_000 };
  const spool = openSqliteSpool({ path, limits: LIMITS, now: () => clock.now });
  const logged = () => {
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      return db
        .prepare("SELECT upto FROM send_mark_log ORDER BY upto")
        .all()
        .map((r) => r.upto);
    } finally {
      db.close();
    }
  };
  try {
    const [one] = await spool.enqueue([message(LANE, "one")]);
    clock.now += 1000;
    const [two] = await spool.enqueue([message(LANE, "two")]);
    assert.ok(one && two);
    assert.deepEqual(logged(), [one.seq, two.seq], "a raise each (marked with each post)");
    assert.equal(await spool.sentSince(LANE, one.seq), one.createdAt);
    assert.equal(await spool.sentSince(LANE, two.seq), two.createdAt);
    await spool.delivered([one.id]);
    clock.now += 10 * 60_000; // past the sweep interval: the next commit sweeps
    await spool.enqueue([message(OTHER, "elsewhere")]);
    assert.ok(!logged().includes(one.seq), "below the oldest queued message: swept");
    assert.ok(logged().includes(two.seq), "still needed for two");
    assert.equal(await spool.sentUpTo(LANE), two.seq, "the mark itself stays");
    clock.now += MARK_RAISE_TTL_MS; // two is still queued, but its raise is old now
    await spool.enqueue([message(OTHER, "later")]);
    assert.ok(!logged().includes(two.seq), "older than MARK_RAISE_TTL_MS: swept");
    assert.equal(await spool.sentSince(LANE, two.seq), undefined, "unknown: read from acceptance");
  } finally {
    await spool.close();
  }
});
