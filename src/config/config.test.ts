import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { laneOf } from "../core/routes.ts";
import { withEnvFiles } from "./env-file.ts";
import { ConfigError, loadConfig, loadSpoolSettings, loadXmppSettings } from "./index.ts";

const base = {
  JID_FROM_USER: "bot@example.org",
  JID_FROM_PASS: "pw",
  KNOWN_ROOMS: "tok1:room1@conf.example.org:nick1",
};

function issuesOf(fn: () => unknown): Array<{ setting: string; message: string }> {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
    return [...err.issues];
  }
  assert.fail("expected a ConfigError");
}

test("the old gateway's .pyenv file loads unchanged, with $-brace expansion", () => {
  const dir = mkdtempSync(join(tmpdir(), "gw-cfg-"));
  copyFileSync(new URL("../../examples/pyenv.example", import.meta.url), join(dir, ".pyenv"));
  const config = loadConfig(withEnvFiles({}, dir));
  assert.equal(config.xmpp.jid, "alerts@example.org");
  assert.equal(config.xmpp.password, "change-me");
  assert.equal(config.xmpp.domain, "example.org");
  assert.equal(config.format, "json");
  assert.equal(config.logLevel, "info");
  assert.equal(config.xmpp.logLevel, "warn");
  assert.equal(config.http.port, 10080);
  assert.deepEqual(
    config.routes.map((r) => [
      r.tokens,
      r.targets.map((t) => `${laneOf(t).room}/${laneOf(t).nick}`),
    ]),
    [
      [["grafana-7Hq2"], ["ops@conference.example.org/grafana"]],
      [["ci-Zk81"], ["dev@conference.example.org/ci-bot"]],
      [["cron-P0aw"], ["ops@conference.example.org/cron"]],
    ],
  );
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.routes[0]));
});

test("the real environment wins over .env, which wins over .pyenv", () => {
  const dir = mkdtempSync(join(tmpdir(), "gw-cfg-"));
  writeFileSync(
    join(dir, ".pyenv"),
    'export MESSAGE_FORMAT="yaml"\nexport LOG_LEVEL="DEBUG"\nexport HTTP_PORT="1"\n',
  );
  writeFileSync(join(dir, ".env"), "LOG_LEVEL=error\nHTTP_PORT=2\n");
  const env = withEnvFiles({ HTTP_PORT: "3" }, dir);
  assert.equal(env.MESSAGE_FORMAT, "yaml");
  assert.equal(env.LOG_LEVEL, "error");
  assert.equal(env.HTTP_PORT, "3");
});

test("one token may post to several rooms; one room may have several nicks", () => {
  const config = loadConfig({
    ...base,
    KNOWN_ROOMS:
      "tok1:room1@conf:nick1  tok2:room2@conf:nick2\ntok3:room1@conf:nick3 tok1:room2@conf:nick1",
  });
  assert.deepEqual(
    config.routes.map((r) => ({
      tokens: r.tokens,
      to: r.targets.map((t) => `${laneOf(t).room}/${laneOf(t).nick}`),
    })),
    [
      { tokens: ["tok1"], to: ["room1@conf/nick1", "room2@conf/nick1"] },
      { tokens: ["tok2"], to: ["room2@conf/nick2"] },
      { tokens: ["tok3"], to: ["room1@conf/nick3"] },
    ],
  );
});

test("a KNOWN_ROOMS entry without a nick names the setting, the entry and the valid form", () => {
  const issues = issuesOf(() =>
    loadConfig({ ...base, KNOWN_ROOMS: "tok1:room1@conf:nick1 secrettok:room2@conf" }),
  );
  assert.equal(issues.length, 1);
  assert.equal(issues[0]?.setting, "KNOWN_ROOMS");
  assert.match(
    issues[0]?.message ?? "",
    /entry 2 has no nick; expected token:room@conference\.example\.org:nick/,
  );
  assert.doesNotMatch(JSON.stringify(issues), /secrettok/, "the token must not appear in errors");
});

test("every bad setting is reported at once, by name, with what would be valid", () => {
  const issues = issuesOf(() =>
    loadConfig({
      JID_FROM_USER: "not-a-jid",
      KNOWN_ROOMS: "t:room@conf:n",
      MESSAGE_FORMAT: "xml",
      HTTP_PORT: "99999",
      XMPP_TLS: "maybe",
      LOG_LEVEL: "loud",
    }),
  );
  const by = Object.fromEntries(issues.map((i) => [i.setting, i.message]));
  assert.match(by.JID_FROM_USER ?? "", /bare JID like bot@example\.org \(got "not-a-jid"\)/);
  assert.match(by.JID_FROM_PASS ?? "", /is required/);
  assert.match(by.MESSAGE_FORMAT ?? "", /expected one of json, yaml, text, auto \(got "xml"\)/);
  assert.match(by.HTTP_PORT ?? "", /from 0 \(any free port\) to 65535 \(got "99999"\)/);
  assert.match(by.XMPP_TLS ?? "", /starttls \(default\) or direct/);
  assert.match(by.LOG_LEVEL ?? "", /expected one of/);
});

test("secrets may come from <NAME>_FILE, and are never echoed in errors", () => {
  const dir = mkdtempSync(join(tmpdir(), "gw-cfg-"));
  writeFileSync(join(dir, "pass"), "from-file\n");
  const s = loadXmppSettings({
    JID_FROM_USER: "bot@example.org",
    JID_FROM_PASS_FILE: join(dir, "pass"),
  });
  assert.equal(s.password, "from-file");
  const issues = issuesOf(() =>
    loadXmppSettings({
      JID_FROM_USER: "bot@example.org",
      JID_FROM_PASS_FILE: join(dir, "missing"),
    }),
  );
  assert.equal(issues[0]?.setting, "JID_FROM_PASS_FILE");
  assert.match(issues[0]?.message ?? "", /cannot read .*missing \(ENOENT\)/);
  const both = issuesOf(() => loadXmppSettings({ ...base, JID_FROM_PASS_FILE: join(dir, "pass") }));
  assert.match(both[0]?.message ?? "", /set only one/);
});

test("defaults: STARTTLS, DNS SRV, port 10080 on all interfaces, json", () => {
  const c = loadConfig(base);
  assert.equal(c.xmpp.tls, "starttls");
  assert.equal(c.xmpp.host, undefined);
  assert.equal(c.http.host, "0.0.0.0");
  assert.equal(c.http.port, 10080);
  assert.equal(c.format, "json");
  assert.equal(c.dataDir, "./data");
});

test("spool limits and MESSAGE_TTL default to 100000 messages, 256 MiB and 24 hours", () => {
  const c = loadConfig(base);
  assert.deepEqual(c.spool, { maxMessages: 100_000, maxBytes: 256 * 1024 * 1024 });
  assert.equal(c.messageTtlMs, 24 * 3600 * 1000);
  assert.ok(Object.isFrozen(c.spool));
});

test("SPOOL_MAX_MESSAGES and SPOOL_MAX_BYTES take whole numbers", () => {
  const c = loadConfig({ ...base, SPOOL_MAX_MESSAGES: "500", SPOOL_MAX_BYTES: " 1048576 " });
  assert.deepEqual(c.spool, { maxMessages: 500, maxBytes: 1_048_576 });
  const issues = issuesOf(() =>
    loadConfig({ ...base, SPOOL_MAX_MESSAGES: "0", SPOOL_MAX_BYTES: "256MB" }),
  );
  const by = Object.fromEntries(issues.map((i) => [i.setting, i.message]));
  assert.match(by.SPOOL_MAX_MESSAGES ?? "", /whole number of messages, 1 or more.*\(got "0"\)/);
  assert.match(by.SPOOL_MAX_BYTES ?? "", /whole number of bytes, 1 or more.*\(got "256MB"\)/);
  assert.match(
    issuesOf(() => loadConfig({ ...base, SPOOL_MAX_MESSAGES: "1.5" }))[0]?.message ?? "",
    /whole number/,
  );
});

test("MESSAGE_TTL takes seconds or a duration in s, m, h or d, stored as ms", () => {
  const ttl = (v: string) => loadConfig({ ...base, MESSAGE_TTL: v }).messageTtlMs;
  assert.equal(ttl("3600"), 3_600_000);
  assert.equal(ttl("90s"), 90_000);
  assert.equal(ttl("15m"), 900_000);
  assert.equal(ttl("24H"), 86_400_000);
  assert.equal(ttl("7d"), 7 * 86_400_000);
  for (const bad of ["1.5h", "-5", "10 minutes", "1h30m", "0", "0s", "366d"]) {
    const issues = issuesOf(() => loadConfig({ ...base, MESSAGE_TTL: bad }));
    assert.equal(issues[0]?.setting, "MESSAGE_TTL", bad);
    assert.match(issues[0]?.message ?? "", /expected/, bad);
    assert.match(issues[0]?.message ?? "", new RegExp(`\\(got "${bad}"\\)`), bad);
  }
});

test("DEDUPE_WINDOW: 24 hours by default, a duration, or 0 for no de-duplication", () => {
  const window = (v?: string) =>
    loadConfig(v === undefined ? base : { ...base, DEDUPE_WINDOW: v }).dedupeWindowMs;
  assert.equal(window(), 86_400_000);
  assert.equal(window("15m"), 900_000);
  assert.equal(window("0"), 0);
  const issues = issuesOf(() => loadConfig({ ...base, DEDUPE_WINDOW: "1 day" }));
  assert.equal(issues[0]?.setting, "DEDUPE_WINDOW");
  assert.match(issues[0]?.message ?? "", /or 0 \(no de-duplication\)/);
});

test("SPOOL_URL selects a PostgreSQL spool; a bad one is named, its password never echoed", () => {
  assert.equal(loadConfig(base).spoolUrl, undefined, "SQLite by default");
  const url = "postgres://gw:s3cret-pw@db.example.org:5432/xmpp_msg_gw";
  assert.equal(loadConfig({ ...base, SPOOL_URL: url }).spoolUrl, url);
  assert.equal(loadSpoolSettings({ SPOOL_URL: url }).spoolUrl, url, "the spool command too");
  const issues = issuesOf(() => loadConfig({ ...base, SPOOL_URL: "mysql://gw:s3cret-pw@db/x" }));
  assert.equal(issues[0]?.setting, "SPOOL_URL");
  assert.match(issues[0]?.message ?? "", /expected a PostgreSQL URL like postgres:\/\//);
  assert.doesNotMatch(JSON.stringify(issues), /s3cret-pw/);
  const dir = mkdtempSync(join(tmpdir(), "gw-spool-url-"));
  writeFileSync(join(dir, "url"), `${url}\n`);
  assert.equal(loadConfig({ ...base, SPOOL_URL_FILE: join(dir, "url") }).spoolUrl, url);
});

test("LEASE_TTL: 10 s by default, a duration; 0 is refused, naming the setting", () => {
  assert.equal(loadConfig(base).leaseTtlMs, 10_000);
  assert.equal(loadConfig({ ...base, LEASE_TTL: "3s" }).leaseTtlMs, 3000);
  assert.equal(issuesOf(() => loadConfig({ ...base, LEASE_TTL: "0" }))[0]?.setting, "LEASE_TTL");
});

test("the spool command's settings need no XMPP account", () => {
  assert.deepEqual(loadSpoolSettings({}), {
    dataDir: "./data",
    spoolUrl: undefined,
    spool: { maxMessages: 100_000, maxBytes: 256 * 1024 * 1024 },
  });
  assert.equal(loadSpoolSettings({ DATA_DIR: "/var/lib/gw" }).dataDir, "/var/lib/gw");
  assert.throws(() => loadSpoolSettings({ SPOOL_MAX_BYTES: "lots" }), ConfigError);
});

test("rate limits: 600 a minute per route by default, a route's own wins, 0 turns them off", () => {
  const c = loadConfig(base);
  assert.deepEqual(c.routes[0]?.rateLimit, { perMinute: 600, burst: 600 });
  assert.equal(c.globalRateLimit, undefined);
  const off = loadConfig({
    ...base,
    RATE_LIMIT_PER_MINUTE: "0",
    GLOBAL_RATE_LIMIT_PER_MINUTE: "6000",
    GLOBAL_RATE_LIMIT_BURST: "100",
  });
  assert.equal(off.routes[0]?.rateLimit, undefined);
  assert.deepEqual(off.globalRateLimit, { perMinute: 6000, burst: 100 });
  const bad = issuesOf(() => loadConfig({ ...base, RATE_LIMIT_PER_MINUTE: "-1" }));
  assert.match(
    bad[0]?.message ?? "",
    /expected posts per minute: a whole number, 0 for no limit \(got "-1"\)/,
  );
});

test("a .pyenv the gateway cannot read is a configuration error naming the file and why", () => {
  const dir = mkdtempSync(join(tmpdir(), "gw-env-"));
  mkdirSync(join(dir, ".pyenv")); // read(2) fails with EISDIR; EACCES takes a non-root user
  assert.throws(
    () => withEnvFiles({}, dir),
    (err: unknown) =>
      err instanceof ConfigError && /\.pyenv: cannot be read \(EISDIR\)/.test(err.message),
  );
  rmSync(dir, { recursive: true, force: true });
});
