// The SQLite spool's claims and anchors (issue 13) on disk: a spool file of the previous schema
// is brought up to date with what it holds, and a claim acknowledged before a SIGKILL holds.
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { tempDirs } from "../../test/support/temp-dirs.ts";
import { MIGRATIONS, migrate } from "./migrations.ts";
import { openSqliteSpool, spoolPath } from "./sqlite.ts";
import { claimAndKill } from "./sqlite-killed.ts";
import type { NewMessage } from "./types.ts";

const LIMITS = { maxMessages: 1000, maxBytes: 1_000_000 };
const LANE = { room: "ops@conf.example.org", nick: "bot" };
const newDir = tempDirs("gw-dedupe-");
const tempPath = () => spoolPath(newDir());

test("a spool file of schema version 1 is migrated, keeping its messages and dead letters", async () => {
  const path = tempPath();
  // Version 1 exactly as released: migrations are never edited once released.
  const old = new DatabaseSync(path);
  old.exec("PRAGMA journal_mode = WAL");
  migrate(old, path, MIGRATIONS.slice(0, 1));
  assert.equal(old.prepare("PRAGMA user_version").get()?.user_version, 1);
  const columns = "id, post_id, route, room, nick, body, bytes, created_at";
  old.exec(`INSERT INTO messages (${columns}) VALUES
    ('q1', 'p1', 'r', '${LANE.room}', 'bot', 'queued one', 10, 1000),
    ('q2', 'p2', 'r', '${LANE.room}', 'bot', 'queued two', 10, 1001)`);
  old.exec(`INSERT INTO dead_letters (seq, ${columns}, attempts, last_error, failed_at, reason)
    VALUES (7, 'd1', 'p3', 'r', '${LANE.room}', 'bot', 'dead', 4, 900, 2, 'timeout', 950, 'forbidden')`);
  old.close();

  const spool = openSqliteSpool({ path, limits: LIMITS });
  try {
    const check = new DatabaseSync(path);
    assert.equal(check.prepare("PRAGMA user_version").get()?.user_version, MIGRATIONS.length);
    check.close();
    const pending = await spool.pending(LANE, 10);
    assert.deepEqual(
      pending.map((m) => [m.id, m.postId, m.body, m.createdAt, "kind" in m, "thread" in m]),
      [
        ["q1", "p1", "queued one", 1000, false, false],
        ["q2", "p2", "queued two", 1001, false, false],
      ],
    );
    const [dead] = await spool.listDead();
    assert.deepEqual(
      [dead?.id, dead?.seq, dead?.attempts, dead?.reason, dead?.kind, dead?.thread],
      ["d1", 7, 2, "forbidden", undefined, undefined],
    );
    assert.deepEqual(spool.stats(), { messages: 2, bytes: 20, deadLetters: 1 });
    // The new tables work on the migrated file, and the old rows mix with new ones.
    const claim = { route: "r", key: "k", expiresAt: Date.now() + 60_000 };
    const post = [{ ...LANE, postId: "p4", id: "n1", route: "r", body: "new" }];
    assert.equal((await spool.enqueueOnce(post, claim)).duplicate, false);
    assert.equal((await spool.enqueueOnce(post, claim)).duplicate, true);
    assert.equal(await spool.retryDead(), 1);
    assert.deepEqual(
      (await spool.pending(LANE, 10)).map((m) => m.id),
      ["q1", "q2", "n1", "d1"],
    );
    await spool.recordAnchor(LANE.room, "g", { stanzaId: "s", occupant: "o", quote: "q" });
    assert.equal((await spool.anchor(LANE.room, "g"))?.stanzaId, "s");
  } finally {
    await spool.close();
  }
});

test("a claim, its message's thread and an anchor acknowledged before a SIGKILL are there after the reopen", async () => {
  const path = tempPath();
  const thread = { group: "0123456789abcdef0123456789abcdef", status: "firing" } as const;
  const post: NewMessage[] = [
    { ...LANE, postId: "post-1", id: "post-1.0", route: "r", body: "🔥 FIRING", thread },
    { ...LANE, postId: "post-1", id: "post-1.1", route: "r", body: "✅", kind: "reaction" },
  ];
  const claim = { route: "r", key: "idem:abc", expiresAt: Date.now() + 86_400_000 };
  const record = { stanzaId: "room-sid-1", occupant: `${LANE.room}/bot`, quote: "🔥 FIRING" };
  await claimAndKill(path, post, claim, { room: LANE.room, group: thread.group, record });

  const check = new DatabaseSync(path);
  assert.equal(check.prepare("PRAGMA integrity_check").get()?.integrity_check, "ok");
  check.close();
  const spool = openSqliteSpool({ path, limits: LIMITS });
  try {
    const retried = [{ ...LANE, postId: "post-2", id: "post-2", route: "r", body: "🔥 FIRING" }];
    assert.deepEqual(await spool.enqueueOnce(retried, claim), {
      duplicate: true,
      postId: "post-1",
      ids: ["post-1.0", "post-1.1"],
      pending: ["post-1.0", "post-1.1"],
      dead: [],
    });
    assert.deepEqual(
      (await spool.pending(LANE, 10)).map((m) => [m.id, m.kind, m.thread]),
      [
        ["post-1.0", undefined, thread],
        ["post-1.1", "reaction", undefined],
      ],
    );
    assert.deepEqual(await spool.anchor(LANE.room, thread.group), {
      ...record,
      resolvedAt: undefined,
    });
    assert.equal(spool.stats().messages, 2, "the duplicate stored nothing");
  } finally {
    await spool.close();
  }
});
