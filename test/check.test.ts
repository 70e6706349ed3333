// `xmpp-msg-gw check` as an operator runs it, against a real Prosody.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { startPostgres } from "../src/devserver/postgres.ts";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { createLogger } from "../src/log.ts";
import { runCli } from "./support/cli.ts";
import { startTestGateway, xmppEnv } from "./support/gateway.ts";
import { type Observer, observe } from "./support/witness.ts";

const GW = { user: "checkbot", password: "check-pass-1" };
const OWNER = { user: "owner", password: "owner-pass-1" };
let server: ProsodyServer;
let owner: Observer;

before(async () => {
  server = await startProsody({ users: [GW, OWNER] });
  const members = `members@${server.mucDomain}`;
  owner = await observe(server, OWNER, [members], "room-owner");
  await owner.configureRoom(members, {
    "muc#roomconfig_membersonly": "1",
    "muc#roomconfig_persistentroom": "1",
  });
});

after(async () => {
  await owner?.stop();
  await server?.stop();
});

/** Runs `xmpp-msg-gw check` as GW with `env` on top; its stdout and stderr as one `out`. */
async function check(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const r = await runCli(["check"], { ...xmppEnv(server, GW), ...env }, { ms: 45_000 });
  return { code: r.code, out: r.output };
}

test("everything works: a table of what was checked, exit 0", async () => {
  const r = await check({
    KNOWN_ROOMS: `t1:ops@${server.mucDomain}:bot1 t2:dev@${server.mucDomain}:bot2`,
  });
  assert.equal(r.code, 0, r.out);
  assert.match(
    r.out,
    /^ ok {3}configuration +2 route\(s\): ops@conference\.localhost\/bot1, dev@conference\.localhost\/bot2$/m,
  );
  assert.match(
    r.out,
    /^ ok {3}login \(nick bot1\) +checkbot@localhost via xmpp:\/\/127\.0\.0\.1:\d+$/m,
  );
  assert.match(r.out, /^ ok {3}room ops@conference\.localhost +joined as bot1$/m);
  assert.match(r.out, /^everything works$/m);
  assert.doesNotMatch(r.out, /check-pass-1|t1:|t2:/, "no password or token in the report");
});

test("a wrong password: the login fails with what to check, exit 1", async () => {
  const r = await check({
    KNOWN_ROOMS: `t1:ops@${server.mucDomain}:bot1`,
    JID_FROM_PASS: "wrong-password",
  });
  assert.equal(r.code, 1, r.out);
  assert.match(
    r.out,
    /FAIL {2}login \(nick bot1\) +checkbot@localhost via .*: authentication failed for checkbot@localhost: not-authorized — check JID_FROM_PASS/,
  );
  assert.doesNotMatch(r.out, /wrong-password/);
});

test("a members-only room: the room fails with the reason and the remedy, exit 1", async () => {
  const r = await check({
    KNOWN_ROOMS: `t1:members@${server.mucDomain}:bot1 t2:ops@${server.mucDomain}:bot1`,
  });
  assert.equal(r.code, 1, r.out);
  assert.match(
    r.out,
    /FAIL {2}room members@conference\.localhost +as bot1: registration-required.* — the room is members-only: make checkbot@localhost a member/,
  );
  assert.match(r.out, /^ ok {3}room ops@conference\.localhost +joined as bot1$/m);
  assert.match(r.out, /^1 problem\(s\)$/m);
});

test("an invalid configuration: the setting and what would be valid, exit 2", async () => {
  const r = await check({ KNOWN_ROOMS: "t1:room-without-nick@conf" });
  assert.equal(r.code, 2);
  assert.match(
    r.out,
    /KNOWN_ROOMS: entry 1 has no nick; expected token:room@conference\.example\.org:nick/,
  );
});

test("a check while the gateway runs on the same account leaves the gateway's sessions alone", async () => {
  const room = `live@${server.mucDomain}`;
  const env = { KNOWN_ROOMS: `lv:${room}:live-bot`, DATA_DIR: mkdtempSync(join(tmpdir(), "gw-")) };
  const g = await startTestGateway(server, GW, env, { log: createLogger("fatal") });
  try {
    const r = await check(env);
    assert.equal(r.code, 0, r.out);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const ready = await fetch(`${g.url}/ready`);
    assert.equal(ready.status, 200, await ready.text());
    const metrics = await (await fetch(`${g.url}/metrics`)).text();
    assert.doesNotMatch(
      metrics,
      /xmpp_msg_gw_xmpp_reconnects_total\{[^}]*\} [1-9]/,
      "the gateway never reconnected",
    );
    const res = await fetch(`${g.url}/post/lv`, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: "after the check",
    });
    assert.equal(res.status, 200, await res.text());
  } finally {
    await g.stop();
  }
});

test("with SPOOL_URL the spool checked is the PostgreSQL database, not DATA_DIR; unreachable, it says which setting", async () => {
  const pg = await startPostgres();
  try {
    const dataDir = mkdtempSync(join(tmpdir(), "gw-check-pg-"));
    const env = { KNOWN_ROOMS: `t1:ops@${server.mucDomain}:bot1`, DATA_DIR: dataDir };
    const ok = await check({ ...env, SPOOL_URL: pg.url });
    assert.equal(ok.code, 0, ok.out);
    assert.match(
      ok.out,
      /^ ok {3}spool +postgres:\/\/gateway@127\.0\.0\.1:\d+\/\S+ \(PostgreSQL\): 0 queued, 0 dead letter\(s\)$/m,
    );
    assert.ok(!existsSync(join(dataDir, "spool.sqlite")), "no SQLite file made in DATA_DIR");
    assert.doesNotMatch(ok.out, new RegExp(pg.password), "no database password in the report");

    await pg.down();
    const down = await check({ ...env, SPOOL_URL: pg.url });
    assert.equal(down.code, 1, down.out);
    assert.match(down.out, /^FAIL {2}spool +.*ECONNREFUSED.* — check SPOOL_URL$/m);
  } finally {
    await pg.stop();
  }
});
