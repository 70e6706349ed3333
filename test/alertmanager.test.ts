// docs/alertmanager.md, for real: the documented alertmanager.yml passes `amtool
// check-config`, and a real Prometheus Alertmanager started from it (only the gateway's
// address, the credentials file and the group timings changed) delivers a firing and a
// resolved alert through an in-process gateway, configured with the documented route, into
// a room on a real Prosody, where a second account sees them.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { parse, stringify } from "yaml";
import { newToken } from "../src/cli/token.ts";
import { run } from "../src/devserver/certs.ts";
import { httpPost } from "../src/devserver/http-post.ts";
import {
  freePort,
  PortInUseError,
  requireExecutable,
  retryWhilePortInUse,
  spawnServer,
} from "../src/devserver/process.ts";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { createLogger } from "../src/log.ts";
import type { Gateway } from "../src/main.ts";
import { assertEmbedsVerbatim, REPO_ROOT, shownMessages } from "./support/doc-blocks.ts";
import { FAST_TIMING, startTestGateway } from "./support/gateway.ts";
import { type Observer, observe } from "./support/witness.ts";

const DOC = "docs/alertmanager/alertmanager.yml";
const ROUTE_DOC = "docs/alertmanager/xmpp-msg-gw.yaml";
const ALERT_DOC = "docs/alertmanager/test-alert.json";
const PAGE = "docs/alertmanager.md";

const GW = { user: "gw", password: "gw-pass-am" };
const WATCHER = { user: "watcher", password: "watcher-pass-am" };
/** Longest wait for a notification to reach the room (group_wait is 1 s in the test copy). */
const ARRIVAL_MS = 30_000;

const INSTALL =
  "Prometheus Alertmanager is not installed: run `sudo apt-get install -y prometheus-alertmanager` " +
  "(Debian/Ubuntu); test/alertmanager.test.ts runs a real one.";

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

function binaries(): { alertmanager: string; amtool: string } {
  return {
    alertmanager: requireExecutable(["prometheus-alertmanager", "alertmanager"], INSTALL),
    amtool: requireExecutable("amtool", INSTALL),
  };
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
let am: Alertmanager | undefined;
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
  writeFileSync(join(dir, "am", "alertmanager.yml"), stringify(config));
  await run(binaries().amtool, ["check-config", join(dir, "am", "alertmanager.yml")]);
  am = await startAlertmanager(binaries().alertmanager, join(dir, "am"));
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
  const block = `${alertname} · ${severity} · ${instance}\n${summary}\n${description}\nSource: ${documented.generatorURL}`;
  const startsAt = new Date(Date.now() - 1000).toISOString();

  const fired = await am.post("/api/v2/alerts", [{ ...documented, startsAt }]);
  assert.equal(fired.status, 200, fired.body);
  const firing = await am.explain(
    observer.waitFor(
      (m) => m.nick === "alertmanager" && m.body.startsWith("🔥 FIRING"),
      ARRIVAL_MS,
    ),
  );
  assert.equal(firing.body, `🔥 FIRING (1) · ${alertname}\n\n${block}`);

  // Resolving: the same alert with an end in the past.
  const endsAt = new Date().toISOString();
  const resolved = await am.post("/api/v2/alerts", [{ ...documented, startsAt, endsAt }]);
  assert.equal(resolved.status, 200, resolved.body);
  const gone = await am.explain(
    observer.waitFor(
      (m) => m.nick === "alertmanager" && m.body.startsWith("✅ RESOLVED"),
      ARRIVAL_MS,
    ),
  );
  assert.equal(gone.body, `✅ RESOLVED (1) · ${alertname}\n\n${block}`);
  const fromAm = observer.messages.filter((m) => m.nick === "alertmanager");
  assert.equal(fromAm.length, 2, "one message per notification, nothing else");
  const shown = shownMessages(PAGE, "alertmanager");
  assert.ok(shown.length >= 1, `${PAGE} shows a room message`);
  for (const message of shown)
    assert.ok(
      fromAm.some((m) => m.body === message),
      message,
    );
});

// ---------------------------------------------------------------------------------------
// A throwaway Alertmanager: own config and storage, loopback port, clustering off, killed by
// PID (SIGTERM, then SIGKILL) on stop() and when the test process exits.

interface Alertmanager {
  readonly url: string;
  post(path: string, body: unknown): Promise<{ status: number; body: string }>;
  /** `waiting`, or its error with the tail of Alertmanager's log appended. */
  explain<T>(waiting: Promise<T>): Promise<T>;
  stop(): Promise<void>;
}

const START_MS = 15_000;

function startAlertmanager(bin: string, dir: string): Promise<Alertmanager> {
  const logFile = join(dir, "alertmanager.log");
  const tail = (): string => {
    try {
      return readFileSync(logFile, "utf8").trim().split("\n").slice(-30).join("\n");
    } catch {
      return "(no log)";
    }
  };
  return retryWhilePortInUse(async () => {
    const port = await freePort();
    const proc = await spawnServer(
      bin,
      [
        `--config.file=${join(dir, "alertmanager.yml")}`,
        `--storage.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--cluster.listen-address=", // no gossip port, no peers to wait for
        "--log.level=debug",
      ],
      { cwd: dir, stdout: logFile, env: withoutProxies(process.env) },
    );
    const url = `http://127.0.0.1:${port}`;
    const ready = async () => (await httpGet(`${url}/-/ready`).catch(() => 0)) === 200;
    if (await proc.waitUntil(ready, START_MS, 50)) {
      return {
        url,
        post: (path, body) =>
          httpPost(`${url}${path}`, JSON.stringify(body), { "content-type": "application/json" }),
        explain: (waiting) =>
          waiting.catch((err: Error) => {
            throw new Error(`${err.message}\n--- alertmanager.log (tail)\n${tail()}`);
          }),
        stop: () => proc.stop(),
      };
    }
    const died = proc.hasExited(); // read before stop() kills it
    await proc.stop();
    const busy = /address already in use/i.test(tail());
    throw new (busy ? PortInUseError : Error)(
      `Alertmanager ${died ? "exited during start-up" : `did not get ready within ${START_MS} ms`}; log tail:\n${tail()}`,
    );
  });
}

/** Alertmanager must reach the gateway on loopback directly, whatever proxy CI sets. */
function withoutProxies(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  for (const key of Object.keys(copy)) if (/^(https?|all|no)_proxy$/i.test(key)) delete copy[key];
  return copy;
}

function httpGet(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: 1000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}
