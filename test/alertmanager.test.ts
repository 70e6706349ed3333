// docs/alertmanager.md, for real: the documented alertmanager.yml passes `amtool
// check-config`, and a real Prometheus Alertmanager started from it (only the gateway's
// address, the credentials file and the group timings changed) delivers a firing and a
// resolved alert through an in-process gateway, configured with the documented route, into
// a room on a real Prosody, where a second account sees them.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { parse, stringify } from "yaml";
import { newToken } from "../src/cli/token.ts";
import { run } from "../src/devserver/certs.ts";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { createLogger } from "../src/log.ts";
import type { Gateway } from "../src/main.ts";
import {
  type AlertmanagerCluster,
  alertmanagerBinaries as binaries,
  startAlertmanagers,
} from "./support/alertmanager.ts";
import { assertEmbedsVerbatim, REPO_ROOT, shownMessages } from "./support/doc-blocks.ts";
import { FAST_TIMING, startTestGateway } from "./support/gateway.ts";
import { bodyWithoutFallback, fallbackText, type Observer, observe } from "./support/witness.ts";

const DOC = "docs/alertmanager/alertmanager.yml";
const ROUTE_DOC = "docs/alertmanager/xmpp-msg-gw.yaml";
const ALERT_DOC = "docs/alertmanager/test-alert.json";
const PAGE = "docs/alertmanager.md";

const GW = { user: "gw", password: "gw-pass-am" };
const WATCHER = { user: "watcher", password: "watcher-pass-am" };
/** Longest wait for a notification to reach the room (group_wait is 1 s in the test copy). */
const ARRIVAL_MS = 30_000;

const read = (path: string): string => readFileSync(join(REPO_ROOT, path), "utf8");

// biome-ignore lint/suspicious/noExplicitAny: a parsed YAML document, checked field by field.
type Yaml = any;

/** The documented webhook_config of the `xmpp` receiver. */
function webhookOf(config: Yaml): Yaml {
  const receiver = config.receivers.find((r: Yaml) => r.name === "xmpp");
  assert.ok(receiver, `${DOC}: a receiver named xmpp`);
  assert.equal(receiver.webhook_configs.length, 1, `${DOC}: one webhook_config`);
  return receiver.webhook_configs[0];
}

test("the documented alertmanager.yml is valid for amtool and says what the docs say", async () => {
  const { amtool } = binaries();
  const out = await run(amtool, ["check-config", join(REPO_ROOT, DOC)]);
  assert.match(out, /SUCCESS/);
  const config = parse(read(DOC));
  assert.equal(config.route.receiver, "xmpp");
  for (const key of ["group_wait", "group_interval", "repeat_interval"]) {
    assert.match(String(config.route[key]), /^\d+[smh]$/, `${DOC}: route.${key}`);
  }
  const webhook = webhookOf(config);
  // Alertmanager 0.25 (Debian bookworm) rejects url_file; the docs mention it in prose only.
  assert.deepEqual(Object.keys(webhook).sort(), ["http_config", "send_resolved", "url"]);
  assert.equal(new URL(webhook.url).pathname, "/post", "the token is not in the URL");
  assert.equal(webhook.send_resolved, true);
  assert.deepEqual(Object.keys(webhook.http_config), ["authorization"]);
  assert.equal(webhook.http_config.authorization.type, "Bearer");
  assert.match(webhook.http_config.authorization.credentials_file, /^\//);
  const route = parse(read(ROUTE_DOC)).routes[0];
  assert.equal(route.format, "auto");
  assert.ok(route.token_file, `${ROUTE_DOC}: the token is kept in a file`);
});

test("docs/alertmanager.md quotes the tested files verbatim", () => {
  assertEmbedsVerbatim(PAGE, [DOC, ROUTE_DOC, ALERT_DOC]);
});

// ---------------------------------------------------------------------------------------
// End to end: Alertmanager → gateway → Prosody → observer.

let server: ProsodyServer | undefined;
let observer: Observer | undefined;
let gateway: Gateway | undefined;
let am: AlertmanagerCluster | undefined;
let dir: string | undefined;

before(async () => {
  binaries(); // fail with the install line before starting anything
  server = await startProsody({ users: [GW, WATCHER] });
  const routes = parse(read(ROUTE_DOC));
  // The documented room, on the test server's MUC service.
  const rooms: string[] = [];
  for (const target of routes.routes[0].targets) {
    target.room = `${String(target.room).split("@")[0]}@${server.mucDomain}`;
    rooms.push(target.room);
  }
  observer = await observe(server, WATCHER, rooms);

  dir = mkdtempSync(join(tmpdir(), "gw-alertmanager-"));
  const token = newToken();
  // The gateway's side: the documented route, its token file where the route says.
  const tokenFile = join(dir, "gw", routes.routes[0].token_file);
  mkdirSync(dirname(tokenFile), { recursive: true });
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  writeFileSync(join(dir, "gw", "config.yaml"), stringify(routes));
  gateway = await startTestGateway(
    server,
    GW,
    {
      DATA_DIR: join(dir, "gw", "data"),
      CONFIG_FILE: join(dir, "gw", "config.yaml"),
    },
    { log: createLogger("fatal"), timing: FAST_TIMING },
  );

  // Alertmanager's side: the documented file with the gateway's address, a credentials
  // file holding the same token, and short group timings so the test is quick.
  const config = parse(read(DOC));
  config.route.group_wait = "1s";
  config.route.group_interval = "1s";
  const webhook = webhookOf(config);
  const documented = new URL(webhook.url);
  webhook.url = new URL(`${documented.pathname}${documented.search}`, gateway.url).href;
  webhook.http_config.authorization.credentials_file = join(dir, "am", "xmpp-msg-gw.token");
  mkdirSync(join(dir, "am"));
  writeFileSync(webhook.http_config.authorization.credentials_file, `${token}\n`, { mode: 0o600 });
  am = await startAlertmanagers({ config }); // one, clustering off; checked by amtool first
});

after(async () => {
  await am?.stop();
  await gateway?.stop();
  await observer?.stop();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("a real Alertmanager posts a firing and then a resolved alert into the room", {
  timeout: 90_000,
}, async () => {
  assert.ok(am && observer);
  const [documented] = JSON.parse(read(ALERT_DOC));
  const { alertname, severity, instance } = documented.labels;
  const { summary, description } = documented.annotations;
  const title = `${alertname} · ${severity} · ${instance}`;
  const rest = `${summary}\n${description}\nSource: ${documented.generatorURL}`;
  // A fixed start (Alertmanager takes one in the past), for the line docs/alertmanager.md shows.
  const startsAt = "2026-12-01T12:00:00Z";

  await am.postAlerts([{ ...documented, startsAt }]); // throws unless 200
  const firing = await am.explain(
    observer.waitFor(
      (m) => m.nick === "alertmanager" && m.body.startsWith("🔥 FIRING"),
      ARRIVAL_MS,
    ),
  );
  assert.equal(
    firing.body,
    `🔥 FIRING (1) · ${alertname}\n\n${title}\nFiring since 2026-12-01 12:00 UTC\n${rest}`,
  );

  // Resolving: the same alert with an end in the past.
  const endsAt = new Date().toISOString();
  await am.postAlerts([{ ...documented, startsAt, endsAt }]);
  const gone = await am.explain(
    observer.waitFor(
      (m) => m.nick === "alertmanager" && bodyWithoutFallback(m).startsWith("✅ RESOLVED"),
      ARRIVAL_MS,
    ),
  );
  // A reply to the firing message in its thread (XEP-0461, XEP-0201), the quote a fallback.
  assert.equal(gone.reply?.id, firing.stanzaId);
  assert.equal(gone.thread, firing.thread);
  assert.equal(fallbackText(gone), `> 🔥 FIRING (1) · ${alertname}\n`);
  const [header, blank, resolvedTitle, when, ...tail] = bodyWithoutFallback(gone).split("\n");
  assert.deepEqual([header, blank, resolvedTitle], [`✅ RESOLVED (1) · ${alertname}`, "", title]);
  assert.match(when ?? "", /^Resolved at \d{4}-\d\d-\d\d \d\d:\d\d UTC, fired for .+$/);
  assert.equal(tail.join("\n"), rest);
  const reaction = await observer.waitFor((m) => m.nick === "alertmanager" && !!m.reactions);
  assert.deepEqual(reaction.reactions, { id: firing.stanzaId, emojis: ["✅"] });
  const fromAm = observer.messages.filter((m) => m.nick === "alertmanager");
  assert.equal(
    fromAm.filter((m) => !m.reactions).length,
    2,
    "one message per notification, nothing else",
  );
  const shown = shownMessages(PAGE, "alertmanager");
  assert.ok(shown.length >= 1, `${PAGE} shows a room message`);
  for (const message of shown)
    assert.ok(
      fromAm.some((m) => m.body === message),
      message,
    );
});
