// `xmpp-msg-gw spool …` as operators run it: a separate process on the spool file, while
// another connection (standing in for the running gateway) holds the same file open.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { openSqliteSpool, spoolPath } from "../src/spool/sqlite.ts";
import type { Spool } from "../src/spool/types.ts";

const BIN = new URL("../bin/xmpp-msg-gw.js", import.meta.url).pathname;
const LANE = { room: "ops@conf.example.org", nick: "grafana" };
const LONG = `first line\nsecond line ${"x".repeat(100)}`;
let dir: string;
let gateway: Spool;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "gw-spool-cli-"));
  gateway = openSqliteSpool({
    path: spoolPath(join(dir, "data")),
    limits: { maxMessages: 100, maxBytes: 100_000 },
  });
  const post = (id: string, body: string) => ({ id, postId: id, route: "r", ...LANE, body });
  await gateway.enqueue([post("dead-1", LONG), post("dead-2", "short"), post("alive", "ok")]);
  await gateway.recordFailure("dead-1", "forbidden");
  await gateway.deadLetter("dead-1", "forbidden: not a member");
  await gateway.deadLetter("dead-2", "expired after 24h");
});

after(async () => {
  await gateway?.close();
  rmSync(dir, { recursive: true, force: true });
});

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, "spool", ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "", HOME: dir, DATA_DIR: join(dir, "data") },
    encoding: "utf8",
    timeout: 20_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("list shows every dead letter: id, room, nick, when, attempts, reason, the body's start", () => {
  const r = run("list");
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  assert.equal(lines.length, 3);
  assert.match(lines[0] ?? "", /^ID\s+ROOM\s+NICK\s+FAILED AT\s+ATTEMPTS\s+REASON\s+BODY$/);
  assert.match(
    lines[1] ?? "",
    /^dead-1\s+ops@conf\.example\.org\s+grafana\s+\d{4}-\d\d-\d\dT[\d:.]+Z\s+1\s+forbidden: not a member\s+first line second line x+…$/,
  );
  const body = (lines[1] ?? "").split(/\s{2,}/).at(-1) ?? "";
  assert.equal([...body].length, 61, "60 characters and an ellipsis");
  assert.match(lines[2] ?? "", /^dead-2\s.*\s0\s+expired after 24h\s+short$/);
});

test("retry and purge without ids need --all; unknown actions are usage errors", () => {
  for (const args of [["retry"], ["purge"], [], ["frobnicate"], ["purge", "x", "--all"]]) {
    const r = run(...args);
    assert.equal(r.code, 2, `spool ${args.join(" ")}`);
    assert.match(r.stderr, /Usage:/);
  }
  assert.match(run("purge").stderr, /--all/);
  assert.equal(gateway.stats().deadLetters, 2, "nothing was touched");
});

test("retry moves one dead letter back to the end of its lane; the open gateway sees it", async () => {
  const r = run("retry", "dead-2");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /1 dead letter queued again/);
  assert.deepEqual(
    (await gateway.pending(LANE, 10)).map((m) => m.id),
    ["alive", "dead-2"],
  );
  assert.deepEqual(
    (await gateway.listDead()).map((d) => d.id),
    ["dead-1"],
  );
  assert.equal(gateway.stats().messages, 2);
  const unknown = run("retry", "no-such-id");
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /not a dead letter: no-such-id/);
});

test("purge --all empties the dead letters", () => {
  const r = run("purge", "--all");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /1 dead letter purged/);
  assert.equal(gateway.stats().deadLetters, 0);
  const list = run("list");
  assert.equal(list.code, 0);
  assert.equal(list.stdout, "no dead letters\n");
});

test("a DATA_DIR without a spool is reported, not created", () => {
  const r = spawnSync(process.execPath, [BIN, "spool", "list"], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "", HOME: dir, DATA_DIR: join(dir, "nowhere") },
    encoding: "utf8",
  });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no spool at .*nowhere.*spool\.sqlite; set DATA_DIR/);
});
