import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { accountsOf, type Route } from "../core/routes.ts";
import { ConfigError, loadConfig, loadXmppSettings } from "./index.ts";

const account = { JID_FROM_USER: "bot@example.org", JID_FROM_PASS: "pw" };

/** Writes `yaml` as config.yaml and `files` next to it in a fresh directory; returns the path. */
function configFile(yaml: string, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "gw-file-"));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  const path = join(dir, "config.yaml");
  writeFileSync(path, yaml);
  return path;
}

function messagesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
    return err.issues.map((i) => `${i.setting}: ${i.message}`);
  }
  assert.fail("expected a ConfigError");
}

const load = (yaml: string, files?: Record<string, string>, env = {}) =>
  loadConfig({ ...account, ...env, CONFIG_FILE: configFile(yaml, files) });
const fileErrors = (yaml: string, files?: Record<string, string>, env = {}) =>
  messagesOf(() => load(yaml, files, env));

/** Route fields without the compiled template, which deepEqual cannot compare. */
const plain = ({ template: _, ...rest }: Route) => rest;

const ROOM = "  - room: ops@conference.example.org\n        nick: bot";

describe("CONFIG_FILE", () => {
  it("builds every route of a full file: tokens, targets, formats, template, limits, HMAC", () => {
    const config = load(
      `
routes:
  - name: grafana
    token_file: secrets/grafana.tokens
    format: auto
    hmac:
      secret_file: secrets/hmac
      timestamp_header: X-Grafana-Alerting-Signature-Timestamp
    rate_limit: { per_minute: 60, burst: 10 }
    targets:
      - room: Ops@Conference.Example.org
        nick: grafana
        password: room-pw
      - room: dev@conference.example.org
        nick: grafana
        password_file: secrets/dev-room
  - name: ci.builds
    tokens: ["ci-1", "ci-2"]
    template_file: templates/ci.liquid
    preformatted: true
    dedupe: false
    rate_limit: { per_minute: 5 }
    hmac: { secret: inline-hmac, header: X-Sig, max_skew: 90 }
    targets:
      - user: Alice@Example.org
  - name: plain
    token: plain-1
    targets:
      - room: ops@conference.example.org
        nick: plain
`,
      {
        "secrets/grafana.tokens": "# rotated 2024-05\ngf-new\n\n  gf-old  \n",
        "secrets/hmac": "hmac-secret\n",
        "secrets/dev-room": "dev-pw\n",
        "templates/ci.liquid": "{{ project }}: {{ status }}\n",
      },
      { MESSAGE_FORMAT: "yaml" },
    );
    assert.deepEqual(config.routes.map(plain), [
      {
        name: "grafana",
        tokens: ["gf-new", "gf-old"],
        targets: [
          {
            kind: "room",
            room: "ops@conference.example.org",
            nick: "grafana",
            password: "room-pw",
          },
          { kind: "room", room: "dev@conference.example.org", nick: "grafana", password: "dev-pw" },
        ],
        format: "auto",
        preformatted: false,
        rateLimit: { perMinute: 60, burst: 10 },
        hmac: {
          secret: "hmac-secret",
          header: "X-Grafana-Alerting-Signature",
          timestampHeader: "X-Grafana-Alerting-Signature-Timestamp",
          maxSkewMs: 300_000,
        },
      },
      {
        name: "ci.builds",
        tokens: ["ci-1", "ci-2"],
        targets: [{ kind: "user", jid: "alice@example.org" }],
        format: "yaml",
        preformatted: true,
        dedupe: false,
        rateLimit: { perMinute: 5, burst: 5 },
        hmac: { secret: "inline-hmac", header: "X-Sig", maxSkewMs: 90_000 },
      },
      {
        name: "plain",
        tokens: ["plain-1"],
        targets: [{ kind: "room", room: "ops@conference.example.org", nick: "plain" }],
        format: "yaml",
        preformatted: false,
        // No rate_limit of its own: RATE_LIMIT_PER_MINUTE's default applies.
        rateLimit: { perMinute: 600, burst: 600 },
      },
    ]);
    assert.equal(config.routes[0]?.template, undefined);
    assert.equal(config.routes[1]?.template?.({ project: "shop", status: "ok" }), "shop: ok");
    assert.ok(Object.isFrozen(config.routes[1]?.hmac));
  });

  it("adds its routes to KNOWN_ROOMS routes, which are then optional", () => {
    const yaml = `routes:\n  - name: file\n    token: file-tok\n    targets:\n    ${ROOM}\n`;
    const merged = load(yaml, {}, { KNOWN_ROOMS: "env-tok:dev@conference.example.org:envbot" });
    assert.deepEqual(
      merged.routes.map((r) => [r.name, r.tokens]),
      [
        ["dev@conference.example.org/envbot", ["env-tok"]],
        ["file", ["file-tok"]],
      ],
    );
    assert.deepEqual(
      load(yaml).routes.map((r) => r.name),
      ["file"],
    );
  });

  it("refuses a token that both KNOWN_ROOMS and the file use, without printing it", () => {
    const yaml = `routes:\n  - name: file\n    tokens: [a-tok, shared-tok]\n    targets:\n    ${ROOM}\n`;
    const errors = fileErrors(yaml, {}, { KNOWN_ROOMS: "shared-tok:dev@conference.example.org:n" });
    assert.deepEqual(errors, [
      "CONFIG_FILE: routes[0].tokens[1]: is also a token in KNOWN_ROOMS; a token selects one route",
    ]);
  });

  it("says clearly when no route is defined anywhere", () => {
    const errors = fileErrors("settings:\n  LOG_LEVEL: debug\n");
    assert.equal(errors.length, 1);
    assert.match(
      errors[0] ?? "",
      /^CONFIG_FILE: \/.*config\.yaml defines no routes and KNOWN_ROOMS is not set; at least one route is needed: add routes to the file or set KNOWN_ROOMS$/,
    );
    assert.deepEqual(
      messagesOf(() => loadConfig(account)),
      [
        "KNOWN_ROOMS: is required, unless CONFIG_FILE defines routes: routes like token:room@conference.example.org:nick, space-separated",
      ],
    );
  });

  it("takes settings from the file, under the real environment", () => {
    const yaml = `
settings:
  MESSAGE_FORMAT: text
  HTTP_PORT: 8080
  LOG_LEVEL: debug
  JID_FROM_USER: file@example.org
  JID_FROM_PASS: file-pw
routes:
  - name: r
    token: t
    targets:
    ${ROOM}
`;
    const path = configFile(yaml);
    const c = loadConfig({ CONFIG_FILE: path, LOG_LEVEL: "error" });
    assert.equal(c.format, "text", "the file's MESSAGE_FORMAT is the routes' default");
    assert.equal(c.routes[0]?.format, "text");
    assert.equal(c.http.port, 8080);
    assert.equal(c.logLevel, "error", "the environment wins");
    assert.equal(c.xmpp.jid, "file@example.org");
    assert.equal(c.http.host, "0.0.0.0", "defaults stay below both");
    // A secret given in the environment in either form hides both forms in the file.
    const dir = dirname(path);
    writeFileSync(join(dir, "pass"), "env-file-pw\n");
    const withFile = loadConfig({ CONFIG_FILE: path, JID_FROM_PASS_FILE: join(dir, "pass") });
    assert.equal(withFile.xmpp.password, "env-file-pw");
    assert.equal(loadXmppSettings({ CONFIG_FILE: path }).jid, "file@example.org");
  });

  it("names a bad or unknown setting of the file by its path in the file", () => {
    const env = { KNOWN_ROOMS: "t:r@conf:n" };
    const errors = fileErrors(`settings:\n  HTTP_PROT: 8080\n  LOG_LEVEL: [debug]\n`, {}, env);
    assert.equal(errors.length, 2);
    assert.equal(
      errors[0],
      "CONFIG_FILE: settings.LOG_LEVEL: expected a string, number or boolean",
    );
    assert.match(
      errors[1] ?? "",
      /^CONFIG_FILE: settings\.HTTP_PROT: unknown setting; expected one of JID_FROM_USER, .*KNOWN_ROOMS_FILE, SPOOL_URL_FILE$/,
    );
    // A value the file's schema lets through is checked like the environment's.
    assert.deepEqual(fileErrors("settings:\n  HTTP_PORT: 99999\n", {}, env), [
      'CONFIG_FILE: settings.HTTP_PORT: expected a port number from 0 (any free port) to 65535 (got "99999")',
    ]);
  });

  it("reports every problem in the routes at once, by path, with what would be valid", () => {
    const errors = fileErrors(`
routes:
  - name: a
    token: tok-a
    format: xml
    targets:
      - room: ops@conference.example.org
        nick: a
  - name: b
    token: tok-b
    preformatted: "yes"
    targets:
      - room: ops@conference.example.org
      - user: not a jid
      - room: ops@conference.example.org
        nick: b
        user: alice@example.org
  - name: a
    targets: []
    tempate: "{{ x }}"
  - name: "bad name"
    token: tok-d
    template: "{{ x }}"
    template_file: x.liquid
    rate_limit: { per_minute: 0 }
    hmac: { header: "bad header", max_skew: 1.5h }
    targets: room@conference.example.org
  - token: tok-e
    targets:
    ${ROOM}
`);
    assert.deepEqual(errors, [
      'CONFIG_FILE: routes[0].format: expected one of json, yaml, text, auto (got "xml")',
      'CONFIG_FILE: routes[1].preformatted: expected true or false (got "yes")',
      "CONFIG_FILE: routes[1].targets[0]: expected either room + nick, or user",
      'CONFIG_FILE: routes[1].targets[1].user: expected a user JID like alice@example.org (got "not a jid")',
      "CONFIG_FILE: routes[1].targets[2]: expected either room + nick, or user",
      "CONFIG_FILE: routes[2].targets: expected a list of targets (room + nick, or user), not empty",
      'CONFIG_FILE: routes[2]: unknown key "tempate"; expected name, token, tokens, token_file, format, template, template_file, preformatted, dedupe, rate_limit, hmac, account, targets',
      "CONFIG_FILE: routes[2]: expected exactly one of token, tokens or token_file",
      'CONFIG_FILE: routes[3].name: expected a route name of letters, digits, _ . and - (it labels metrics) (got "bad name")',
      "CONFIG_FILE: routes[3].rate_limit.per_minute: expected a whole number of posts per minute, 1 or more (got 0)",
      'CONFIG_FILE: routes[3].hmac.header: expected an HTTP header name: letters, digits and - (got "bad header")',
      'CONFIG_FILE: routes[3].hmac.max_skew: expected seconds (e.g. 3600) or a duration like 90s, 15m, 24h or 7d (got "1.5h")',
      "CONFIG_FILE: routes[3].hmac: expected exactly one of secret or secret_file",
      'CONFIG_FILE: routes[3].targets: expected a list of targets (room + nick, or user) (got "room@conference.example.org")',
      "CONFIG_FILE: routes[3]: set template or template_file, not both",
      "CONFIG_FILE: routes[4].name: is required: a route name of letters, digits, _ . and - (it labels metrics)",
      'CONFIG_FILE: routes[2].name: "a" is already the name of routes[0]; route names must be unique',
    ]);
    assert.deepEqual(fileErrors("routes:\n  - name: a\n    token: t\n"), [
      "CONFIG_FILE: routes[0].targets: is required: a list of targets (room + nick, or user)",
    ]);
    assert.deepEqual(fileErrors("- just a list\n"), [
      "CONFIG_FILE: expected a mapping with settings and/or routes",
    ]);
  });

  it("refuses a token used by two routes, naming both places", () => {
    const errors = fileErrors(
      `routes:
  - name: one
    token: same-tok
    targets:
    ${ROOM}
  - name: two
    token_file: two.tokens
    targets:
    ${ROOM}
`,
      { "two.tokens": "other-tok\nsame-tok\n" },
    );
    assert.deepEqual(errors, [
      "CONFIG_FILE: routes[1].token_file line 2: is the same token as routes[0].token; a token selects one route",
    ]);
  });

  it("names the file and line of a YAML syntax error", () => {
    const path = configFile("routes:\n  - name: a\n     token: x\n");
    const errors = messagesOf(() => loadConfig({ ...account, CONFIG_FILE: path }));
    assert.equal(
      errors[0],
      `CONFIG_FILE: ${path}: line 2, column 11: Nested mappings are not allowed in compact mappings`,
    );
  });

  it("names the path and errno of a file it cannot read", () => {
    const missing = join(tmpdir(), "no-such-dir-gw", "config.yaml");
    assert.deepEqual(
      messagesOf(() => loadConfig({ ...account, CONFIG_FILE: missing })),
      [`CONFIG_FILE: cannot read ${missing} (ENOENT)`],
    );
    const path = configFile(
      `routes:
  - name: r
    token_file: nope.tokens
    hmac: { secret_file: empty }
    targets:
      - room: ops@conference.example.org
        nick: n
        password_file: nope.pw
  - name: s
    token_file: comments-only
    targets:
    ${ROOM}
`,
      { empty: "\n", "comments-only": "# nothing yet\n\n" },
    );
    const dir = dirname(path);
    assert.deepEqual(
      messagesOf(() => loadConfig({ ...account, CONFIG_FILE: path })),
      [
        `CONFIG_FILE: routes[0].token_file: cannot read ${join(dir, "nope.tokens")} (ENOENT)`,
        `CONFIG_FILE: routes[0].targets[0].password_file: cannot read ${join(dir, "nope.pw")} (ENOENT)`,
        `CONFIG_FILE: routes[0].hmac.secret_file: ${join(dir, "empty")} is empty`,
        `CONFIG_FILE: routes[1].token_file: ${join(dir, "comments-only")} holds no token; expected one per line (# starts a comment)`,
      ],
    );
  });

  it("compiles every template at load time, naming the template's file or path and line", () => {
    const path = configFile(
      `routes:
  - name: inline
    token: t1
    template: "{{ title }}\\n{{ title | upcas }}"
    targets:
    ${ROOM}
  - name: from-file
    token: t2
    template_file: t.liquid
    targets:
    ${ROOM}
`,
      { "t.liquid": "ok\n{% if x %}\nnever closed\n" },
    );
    assert.deepEqual(
      messagesOf(() => loadConfig({ ...account, CONFIG_FILE: path })),
      [
        "CONFIG_FILE: routes[0].template: line 2, column 1: undefined filter: upcas",
        `CONFIG_FILE: routes[1].template_file: ${join(dirname(path), "t.liquid")}: line 2, column 1: tag {% if x %} not closed`,
      ],
    );
  });

  it("never echoes a token, password or secret in an error", () => {
    const secrets = ["tok-Zq81", "tok-Yb27", "room-pw-Kd3", "hmac-Xp9", "99887766", "jid-pw-Q1"];
    const leaks = (errors: string[]) => secrets.filter((s) => errors.join("\n").includes(s));
    const shape = fileErrors(`
settings:
  JID_FROM_PASS: [jid-pw-Q1]
routes:
  - name: r
    tokens: ["tok-Zq81", "", 99887766]
    hmac: { secret: "hmac-Xp9", secret_file: s }
    targets:
      - room: ops@conference.example.org
        nick: n
        password: room-pw-Kd3
        password_file: p
      - user: alice@example.org
        password: room-pw-Kd3
`);
    assert.equal(shape.length, 6, shape.join("\n"));
    assert.deepEqual(leaks(shape), []);
    const reuse = fileErrors(
      `
routes:
  - name: r
    tokens: ["tok-Zq81", "tok-Yb27"]
    targets:
    ${ROOM}
  - name: r2
    token: "tok-Zq81"
    targets:
    ${ROOM}
`,
      {},
      { KNOWN_ROOMS: "tok-Yb27:dev@conf.example.org:n" },
    );
    assert.equal(reuse.length, 2, reuse.join("\n"));
    assert.deepEqual(leaks(reuse), []);
    const syntax = fileErrors('routes:\n  - name: r\n    token: "tok-Zq81\n');
    assert.equal(syntax.length, 1);
    assert.deepEqual(leaks(syntax), []);
  });

  it("gives a route an XMPP account of its own, its password from a file", () => {
    const config = load(
      `
routes:
  - name: alerts
    token: tok-a
    account: { jid: Alerts@Example.org, password_file: secrets/alerts.password }
    targets:
      - room: ops@conference.example.org
        nick: alerts-bot
      - room: dev@conference.example.org
        nick: alerts-bot
  - name: more-alerts
    token: tok-b
    account: { jid: alerts@example.org, password: alerts-pw }
    targets:
      - room: ops@conference.example.org
        nick: second-bot
  - name: ci
    token: tok-c
    targets:
    ${ROOM}`,
      { "secrets/alerts.password": "alerts-pw\n" },
    );
    assert.deepEqual(config.routes[0]?.account, {
      jid: "alerts@example.org",
      password: "alerts-pw",
    });
    assert.equal(config.routes[2]?.account, undefined);
    assert.deepEqual(
      [...accountsOf(config.routes)].map(([nick, a]) => `${nick}=${a.jid}`),
      ["alerts-bot=alerts@example.org", "second-bot=alerts@example.org"],
    );
  });

  it("refuses a nick sent from two accounts, an account with two passwords, a direct message from a route's account", () => {
    // Three routes whose accounts conflict across routes, and with KNOWN_ROOMS.
    const conflicting = `
routes:
  - name: a
    token: tok-a
    account: { jid: alerts@example.org, password: pw-1 }
    targets:
      - room: ops@conference.example.org
        nick: shared
      - user: alice@example.org
  - name: b
    token: tok-b
    account: { jid: alerts@example.org, password: pw-2 }
    targets:
      - room: dev@conference.example.org
        nick: other
  - name: c
    token: tok-c
    targets:
      - room: dev@conference.example.org
        nick: shared`;
    const errors = fileErrors(
      `${conflicting}
  - name: d
    token: tok-d
    account: { jid: not-a-jid }
    targets:
    ${ROOM}`,
    );
    assert.deepEqual(errors, [
      'CONFIG_FILE: routes[3].account.jid: expected an XMPP account JID like alerts@example.org (got "not-a-jid")',
      "CONFIG_FILE: routes[3].account: expected exactly one of password or password_file",
    ]);
    const cross = fileErrors(
      conflicting,
      {},
      { KNOWN_ROOMS: "tok-k:r@conference.example.org:other" },
    );
    assert.deepEqual(cross, [
      "CONFIG_FILE: routes[0].targets[1]: direct messages are sent from JID_FROM_USER, not from the route's account alerts@example.org: move this user target to a route without account",
      "CONFIG_FILE: routes[1].account: alerts@example.org has another password in routes[0].account; one account has one password",
      'CONFIG_FILE: routes[1].targets[0]: nick "other" is sent from alerts@example.org here and from JID_FROM_USER in KNOWN_ROOMS; a nick is sent from one account: use another nick',
      'CONFIG_FILE: routes[2].targets[0]: nick "shared" is sent from JID_FROM_USER here and from alerts@example.org in routes[0].targets[0]; a nick is sent from one account: use another nick',
    ]);
    assert.ok(!cross.some((e) => /pw-[12]/.test(e)), "no password in the errors");
  });

  it("refuses a target listed twice in a route and a nick XMPP does not allow", () => {
    const errors = fileErrors(`
routes:
  - name: a
    token: tok-a
    targets:
      - { room: ops@conference.example.org, nick: bot }
      - { room: Ops@conference.example.org, nick: bot }
      - { room: dev@conference.example.org, nick: "bad\\u0007bell" }
      - { user: alice@example.org }
      - { user: Alice@example.org }
`);
    assert.deepEqual(errors, [
      "CONFIG_FILE: routes[0].targets[1]: repeats routes[0].targets[0]: every post would arrive twice; remove one",
      "CONFIG_FILE: routes[0].targets[2].nick: the nick holds U+0007, a control character; XMPP does not allow it in a nick (RFC 7622 §3.4)",
      "CONFIG_FILE: routes[0].targets[4]: repeats routes[0].targets[3]: every post would arrive twice; remove one",
    ]);
  });

  it("loads examples/config.example.yaml verbatim, with its secret files stubbed", () => {
    const path = configFile("", {
      "secrets/grafana.token": "grafana-tok\n",
      "secrets/grafana-hmac.secret": "hmac\n",
      "secrets/ops-room.password": "ops-pw\n",
      "secrets/alertmanager.token": "# alertmanager\nam-tok\n",
      "secrets/cron.token": "cron-tok\n",
      "secrets/cron-account.password": "cron-pw\n",
    });
    copyFileSync(new URL("../../examples/config.example.yaml", import.meta.url), path);
    const config = loadConfig({ CONFIG_FILE: path, JID_FROM_PASS: "pw" });
    assert.equal(config.xmpp.jid, "alerts@example.org");
    assert.equal(config.format, "auto");
    assert.deepEqual(
      config.routes.map((r) => [r.name, r.format, r.targets.length, r.preformatted]),
      [
        ["grafana", "auto", 1, false],
        ["alertmanager", "auto", 2, false],
        ["ci", "auto", 2, false],
        ["cron", "yaml", 1, true],
      ],
    );
    assert.equal(config.routes[0]?.hmac?.secret, "hmac");
    assert.deepEqual(config.routes[3]?.account, { jid: "cron@example.org", password: "cron-pw" });
    const ci = config.routes[2]?.template;
    assert.equal(
      ci?.({ project: "shop", ref: "main", status: "failed", duration: 312, url: "https://ci/1" }),
      "shop main: FAILED after 312s\nhttps://ci/1",
    );
  });
});
