// docs/grafana.md, as far as it can be without a Grafana server: the documented provisioning
// file uses only field names verified against Grafana's sources, and this test does what
// Grafana does with it — expands its `$__file{…}` references, signs the body with
// HMAC-SHA256 over `<timestamp>:<body>` under the configured headers, sends the
// Authorization header from authorization_scheme/authorization_credentials — against an
// in-process gateway configured with the documented route, delivering into a room on a real
// Prosody where a second account checks what arrived.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { parse, stringify } from "yaml";
import { newToken } from "../src/cli/token.ts";
import { httpPost } from "../src/devserver/http-post.ts";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { createLogger } from "../src/log.ts";
import type { Gateway } from "../src/main.ts";
import { assertEmbedsVerbatim, REPO_ROOT, shownMessages } from "./support/doc-blocks.ts";
import { FAST_TIMING, startTestGateway } from "./support/gateway.ts";
import { fallbackText, type Observer, observe, type RoomMessage } from "./support/witness.ts";

const CONTACT_POINT = "docs/grafana/contact-point.yaml";
const ROUTE_DOC = "docs/grafana/xmpp-msg-gw.yaml";
const PAGE = "docs/grafana.md";
const FIRING = "test/fixtures/grafana-firing.json";
const RESOLVED = "test/fixtures/grafana-resolved.json";
/** What the contact point's Test button sends. */
const TEST_BUTTON = "test/fixtures/grafana-test.json";

const GW = { user: "gw", password: "gw-pass-gf" };
const WATCHER = { user: "watcher", password: "watcher-pass-gf" };

const read = (path: string): string => readFileSync(join(REPO_ROOT, path), "utf8");

// biome-ignore lint/suspicious/noExplicitAny: a parsed YAML document, checked field by field.
type Yaml = any;

/**
 * Keys Grafana reads, checked against its sources (Grafana 12): the provisioning file in
 * grafana/grafana pkg/services/provisioning/alerting (types.go, contact_point_types.go), the
 * webhook settings in grafana/alerting receivers/webhook/v1/config.go (the yaml/json tags and
 * the schema's PropertyName values). Grafana ignores unknown keys silently, so a typo here
 * would quietly turn authentication or signing off: the test refuses anything else.
 */
const ALLOWED = {
  file: ["apiVersion", "contactPoints"],
  contactPoint: ["orgId", "name", "receivers"],
  receiver: ["uid", "type", "settings", "disableResolveMessage"],
  webhook: [
    "url",
    "httpMethod",
    "maxAlerts",
    "authorization_scheme",
    "authorization_credentials",
    "username",
    "password",
    "title",
    "message",
    "tlsConfig",
    "hmacConfig",
    "headers",
    "payload",
  ],
  hmacConfig: ["secret", "header", "timestampHeader"],
};

function assertKeys(where: string, value: Yaml, allowed: readonly string[]): void {
  assert.ok(value !== null && typeof value === "object", `${where}: a mapping`);
  for (const key of Object.keys(value)) {
    assert.ok(allowed.includes(key), `${where}: "${key}" is not a key Grafana reads (${allowed})`);
  }
}

/** The documented webhook receiver, after checking every key on the way to it. */
function documentedReceiver(): Yaml {
  const file = parse(read(CONTACT_POINT));
  assertKeys(CONTACT_POINT, file, ALLOWED.file);
  assert.equal(file.apiVersion, 1);
  assert.equal(file.contactPoints.length, 1);
  const cp = file.contactPoints[0];
  assertKeys(`${CONTACT_POINT}: contactPoints[0]`, cp, ALLOWED.contactPoint);
  assert.equal(cp.receivers.length, 1);
  const receiver = cp.receivers[0];
  assertKeys(`${CONTACT_POINT}: receivers[0]`, receiver, ALLOWED.receiver);
  assert.equal(receiver.type, "webhook");
  assert.ok(receiver.uid, "provisioning requires a uid");
  assertKeys(`${CONTACT_POINT}: settings`, receiver.settings, ALLOWED.webhook);
  assertKeys(`${CONTACT_POINT}: settings.hmacConfig`, receiver.settings.hmacConfig, [
    ...ALLOWED.hmacConfig,
  ]);
  return receiver;
}

test("the provisioning file uses Grafana's field names and matches the gateway route", () => {
  const { settings } = documentedReceiver();
  assert.equal(new URL(settings.url).pathname, "/post", "the token is not in the URL");
  assert.equal(settings.httpMethod, "POST");
  assert.equal(settings.authorization_scheme, "Bearer");
  assert.ok(settings.authorization_credentials);
  assert.ok(settings.hmacConfig.secret);
  // Grafana's own default for `header` differs between its docs (X-Grafana-Alerting-Signature)
  // and grafana/alerting's code (X-Grafana-Alert-Signature): the docs always set it.
  assert.ok(settings.hmacConfig.header, "hmacConfig.header is set explicitly");
  assert.ok(settings.hmacConfig.timestampHeader, "signatures carry a timestamp (no replays)");
  const route = parse(read(ROUTE_DOC)).routes[0];
  assert.equal(route.format, "auto");
  assert.ok(route.token_file && route.hmac.secret_file, "the secrets are kept in files");
  assert.equal(route.hmac.header, settings.hmacConfig.header);
  assert.equal(route.hmac.timestamp_header, settings.hmacConfig.timestampHeader);
});

test("docs/grafana.md quotes the tested files verbatim", () => {
  assertEmbedsVerbatim(PAGE, [CONTACT_POINT, ROUTE_DOC]);
});

// ---------------------------------------------------------------------------------------
// What Grafana sends, against the documented gateway route.

let server: ProsodyServer | undefined;
let observer: Observer | undefined;
let gateway: Gateway | undefined;
let dir: string | undefined;
/** The contact point's settings after Grafana's `$__file{…}` expansion. */
let settings: Yaml;

before(async () => {
  server = await startProsody({ users: [GW, WATCHER] });
  const routes = parse(read(ROUTE_DOC));
  const route = routes.routes[0];
  const rooms: string[] = [];
  for (const target of route.targets) {
    target.room = `${String(target.room).split("@")[0]}@${server.mucDomain}`;
    rooms.push(target.room);
  }
  observer = await observe(server, WATCHER, rooms);

  dir = mkdtempSync(join(tmpdir(), "gw-grafana-"));
  // Made as the docs say: `xmpp-msg-gw token`, once for the token, once for the secret.
  const token = newToken();
  const secret = newToken();
  const put = (file: string, text: string): void => {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${text}\n`, { mode: 0o600 });
  };
  put(join(dir, "gw", route.token_file), token);
  put(join(dir, "gw", route.hmac.secret_file), secret);
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

  // Grafana's side: its files live under `root` at the paths the provisioning file names.
  const receiver = documentedReceiver();
  const root = join(dir, "grafana");
  const fileRef = (value: string): string => {
    const m = /^\$__file\{([^}]+)\}$/.exec(value);
    assert.ok(m, `${CONTACT_POINT}: "${value}" should be a $__file{…} reference`);
    return m[1] as string;
  };
  const tokenPath = fileRef(receiver.settings.authorization_credentials);
  const secretPath = fileRef(receiver.settings.hmacConfig.secret);
  assert.notEqual(tokenPath, secretPath);
  put(join(root, tokenPath), token);
  put(join(root, secretPath), secret);
  settings = expandFiles(receiver.settings, root);
  const documented = new URL(settings.url);
  settings.url = new URL(`${documented.pathname}${documented.search}`, gateway.url).href;
});

after(async () => {
  await gateway?.stop();
  await observer?.stop();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * Grafana's provisioning interpolation of one string (pkg/setting/expanders.go): each
 * `$__file{path}` becomes the file's contents, whitespace trimmed. Other `$` forms are not
 * used by the documented file and are refused here rather than guessed.
 */
function expandFiles(value: Yaml, root: string): Yaml {
  if (typeof value === "string") {
    const out = value.replace(/\$__file\{([^}]+)\}/g, (_, path: string) =>
      readFileSync(join(root, path), "utf8").trim(),
    );
    assert.ok(!/\$/.test(value.replace(/\$__file\{[^}]+\}/g, "")), `unexpected $ in "${value}"`);
    return out;
  }
  if (Array.isArray(value)) return value.map((v) => expandFiles(v, root));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expandFiles(v, root)]));
  }
  return value;
}

/**
 * The request Grafana's webhook notifier makes (grafana/alerting http/hmac.go): hex
 * HMAC-SHA256 of `<unix seconds>:<body>` in `header`, the seconds in `timestampHeader`, and
 * `Authorization: <scheme> <credentials>`.
 */
function grafanaHeaders(body: Buffer, nowSeconds: number): Record<string, string> {
  const { secret, header, timestampHeader } = settings.hmacConfig;
  const ts = String(nowSeconds);
  const signature = createHmac("sha256", secret).update(`${ts}:`).update(body).digest("hex");
  return {
    "content-type": "application/json",
    "user-agent": "Grafana",
    authorization: `${settings.authorization_scheme} ${settings.authorization_credentials}`,
    [header]: signature,
    [timestampHeader]: ts,
  };
}

const now = (): number => Math.floor(Date.now() / 1000);

test("a signed Grafana notification is delivered into the room, firing and resolved", async () => {
  assert.ok(observer);
  const body = readFileSync(join(REPO_ROOT, FIRING));
  const res = await httpPost(settings.url, body, grafanaHeaders(body, now()));
  assert.equal(res.status, 200, res.body);
  assert.equal(JSON.parse(res.body).status, "delivered");
  const firing = await observer.waitFor((m) => m.nick === "grafana" && /FIRING/.test(m.body));
  const lines = firing.body.split("\n");
  assert.equal(lines[0], "🔥 FIRING (2) · HighCPU");
  assert.ok(lines.includes("High CPU usage on web-1"), firing.body);
  assert.ok(lines.includes("Runbook: https://runbooks.example.org/high-cpu"), firing.body);

  const done = readFileSync(join(REPO_ROOT, RESOLVED));
  const res2 = await httpPost(settings.url, done, grafanaHeaders(done, now()));
  assert.equal(res2.status, 200, res2.body);
  const resolved = await observer.waitFor((m) => m.nick === "grafana" && /RESOLVED/.test(m.body));
  // The same group: a XEP-0461 reply to the firing message, in its thread, and a ✅ on it.
  assert.ok(firing.stanzaId, "the room gave the firing message a stanza-id");
  assert.equal(resolved.reply?.id, firing.stanzaId);
  assert.equal(resolved.thread, firing.thread);
  assert.equal(firstLineAfterFallback(resolved), "✅ RESOLVED (1) · HighCPU");
  const reaction = await observer.waitFor((m) => m.nick === "grafana" && m.reactions !== undefined);
  assert.deepEqual(reaction.reactions, { id: firing.stanzaId, emojis: ["✅"] });
});

/** The first line a client that shows replies shows: after the quoted fallback (XEP-0428). */
function firstLineAfterFallback(m: RoomMessage): string | undefined {
  const quote = fallbackText(m) ?? "";
  assert.ok(m.body.startsWith(quote), "the fallback is the start of the body");
  return m.body.slice(quote.length).split("\n")[0];
}

test("a tampered, stale or unsigned body is refused with 401 and never reaches the room", async () => {
  assert.ok(observer);
  const body = readFileSync(join(REPO_ROOT, FIRING));
  const tampered = Buffer.from(body.toString("utf8").replace("web-1:9100", "web-9:9100"));
  assert.notDeepEqual(tampered, body);
  const cases: Array<[string, Buffer, Record<string, string>]> = [
    ["tampered body", tampered, grafanaHeaders(body, now())],
    ["stale timestamp", body, grafanaHeaders(body, now() - 3600)],
    [
      "no signature",
      body,
      Object.fromEntries(
        Object.entries(grafanaHeaders(body, now())).filter(
          ([k]) => k !== settings.hmacConfig.header,
        ),
      ),
    ],
  ];
  const before = observer.messages.length;
  for (const [what, sent, headers] of cases) {
    const res = await httpPost(settings.url, sent, headers);
    assert.equal(res.status, 401, `${what}: ${res.body}`);
    assert.match(JSON.parse(res.body).error, /^401 Unauthorized: /, what);
  }
  // A valid post after the refused ones: it arrives, and nothing else arrived before it.
  // (The test before posted the same notification: a key of its own makes it a new post.)
  const ok = readFileSync(join(REPO_ROOT, RESOLVED));
  const headers = { ...grafanaHeaders(ok, now()), "idempotency-key": "after-the-refused-ones" };
  const res = await httpPost(settings.url, ok, headers);
  assert.equal(res.status, 200, res.body);
  const seen = observer.messages;
  await observer.waitFor((m) => seen.indexOf(m) >= before && m.reactions !== undefined);
  assert.deepEqual(
    seen.slice(before).map((m) => (m.reactions ? "(reaction)" : firstLineAfterFallback(m))),
    ["✅ RESOLVED (1) · HighCPU", "(reaction)"],
    "only the valid post reached the room",
  );
});

test("the Test button's notification arrives as the docs show it", async () => {
  assert.ok(observer);
  const body = readFileSync(join(REPO_ROOT, TEST_BUTTON));
  const res = await httpPost(settings.url, body, grafanaHeaders(body, now()));
  assert.equal(res.status, 200, res.body);
  const seen = await observer.waitFor((m) => m.nick === "grafana" && /TestAlert/.test(m.body));
  assert.ok(shownMessages(PAGE, "grafana").includes(seen.body), `${PAGE} shows:\n${seen.body}`);
});

test("every room message docs/grafana.md shows is one the room received", () => {
  const received = (observer?.messages ?? [])
    .filter((m) => m.nick === "grafana")
    .map((m) => m.body);
  const shown = shownMessages(PAGE, "grafana");
  assert.ok(shown.length >= 2, `${PAGE} shows the firing and the Test button's messages`);
  for (const message of shown) assert.ok(received.includes(message), `received:\n${message}`);
});

test("HTTP Basic auth with the token as password (Grafana's username/password) works too", async () => {
  const body = readFileSync(join(REPO_ROOT, RESOLVED));
  const headers = grafanaHeaders(body, now());
  const basic = Buffer.from(`grafana:${settings.authorization_credentials}`).toString("base64");
  headers.authorization = `Basic ${basic}`;
  const res = await httpPost(settings.url, body, headers);
  assert.equal(res.status, 200, res.body);
});
