// The docs, run: every shell block of README.md and docs/*.md runs here, in bash, against
// a throwaway Prosody and the gateway the README starts, and every output the page quotes
// is compared with what was printed. A block that cannot run here is in CANNOT_RUN with
// the reason, and a listed block that no page holds any more fails the test. (The README's
// replies table and its other quoted outputs: test/docs-replies.test.ts.)
//
// How a page quotes output: a `# …` line right below a command (no blank line between)
// is that command's output, `…` standing for any text; `(status 404)` after it, two
// spaces apart, is the HTTP status. A comment after a command on its line explains it.
//
// What differs from a reader's machine, and nothing else:
// - the reader's checkout is a scratch directory whose bin/xmpp-msg-gw, like `xmpp-msg-gw`
//   and `npx xmpp-msg-gw`, is this checkout's; `npm ci` has been run (a no-op here), and
//   `npm start` runs package.json's start script (test/support/doc-run.ts);
// - the XMPP server is the test Prosody: XMPP_HOST, XMPP_PORT and XMPP_CA_FILE are set, its
//   domain is localhost, so `example.org` reads `localhost` in commands and quotes alike;
// - HTTP listens on a free loopback port (HTTP_HOST=127.0.0.1, HTTP_PORT=0), which stands
//   for `http://localhost:10080`, and for `https://gw.example.org` (nginx in between is
//   test/nginx.test.ts's part);
// - placeholders: `JID_FROM_PASS="…"` is the account's password, `<token>` the README's
//   MYTOKEN, `ID…` the id of a dead letter put in the spool before the gateway starts;
// - curl reads a ~/.curlrc that adds `-sS` and writes the status after the body;
// - the blocks after the one that starts the gateway run once its /ready says 200, as a
//   reader's next command comes seconds later.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { openSqliteSpool, spoolPath } from "../src/spool/sqlite.ts";
import { type CliProcess, killCliChildren } from "./support/cli.ts";
import {
  matchesQuote,
  REPO_ROOT,
  type ShellBlock,
  shellBlocks,
  stepsOf,
} from "./support/doc-blocks.ts";
import { readerDir, runShellBlock, STARTS_GATEWAY, systemCommandIn } from "./support/doc-run.ts";
import { xmppEnv } from "./support/gateway.ts";
import { type Observer, observe } from "./support/witness.ts";

/** Blocks that cannot run here, by page and first line, each with why and what tests it instead. */
const CANNOT_RUN: ReadonlyArray<{ page: string; first: string; why: string }> = [
  {
    page: "docs/migration.md",
    first: "git clone <this repository> xmpp-msg-gw && cd xmpp-msg-gw",
    why: "clones, chowns and runs docker compose; test/container-run.test.ts runs the compose service from a directory holding only an old .pyenv, and `check` in it",
  },
  {
    page: "README.md",
    first:
      "npm ci && npm run demo    # throwaway local Prosody + room + gateway; posts a sample and shows it arriving",
    why: "installs the checkout, runs the demo until Ctrl-C and the whole suite (this test is part of it); test/cli.test.ts runs `demo --once`",
  },
  {
    page: "docs/alertmanager.md",
    first: "amtool check-config /etc/prometheus/alertmanager.yml",
    why: "checks and reloads the system's Alertmanager (/etc/prometheus, systemctl); test/alertmanager.test.ts runs amtool check-config on docs/alertmanager/alertmanager.yml",
  },
  {
    page: "docs/alertmanager.md",
    first:
      "curl -H 'Content-Type: application/json' -d @test-alert.json http://localhost:9093/api/v2/alerts",
    why: "needs an Alertmanager routed to the gateway; test/alertmanager.test.ts posts docs/alertmanager/test-alert.json to one it starts",
  },
  {
    page: "docs/systemd.md",
    first: "git clone <this repository> /opt/xmpp-msg-gw",
    why: "installs a system service (useradd, /etc, systemctl) on the machine; test/systemd.test.ts runs the unit's command line and checks the unit",
  },
];

const PAGES = [
  "README.md",
  ...readdirSync(join(REPO_ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => `docs/${f}`),
];
const BLOCKS = PAGES.flatMap(shellBlocks);
const skipReason = (b: ShellBlock) =>
  b.file !== undefined
    ? `the file ${b.file}, not commands: the test that uses it checks that the page shows it verbatim`
    : CANNOT_RUN.find((s) => s.page === b.page && s.first === b.first)?.why;

const ALERTS = { user: "alerts", password: "docs-alerts-pass-1" };
const WITNESS = { user: "docswitness", password: "docs-witness-1" };
let server: ProsodyServer;
let observer: Observer;
let work: string; // the reader's checkout: cwd of every block, HOME, the gateway's ./data
let env: Record<string, string>;
let gateway: { process: CliProcess; url: string } | undefined;
const deadIds: string[] = [];

before(async () => {
  server = await startProsody({ users: [ALERTS, WITNESS] });
  observer = await observe(server, WITNESS, [`ops@${server.mucDomain}`], "docs-witness");
  work = mkdtempSync(join(tmpdir(), "gw-docs-"));
  env = readerDir(work, { ...xmppEnv(server), HTTP_HOST: "127.0.0.1", HTTP_PORT: "0" });
  // Two dead letters for `spool retry ID…` and `spool purge ID…`, before the gateway opens the spool.
  const spool = openSqliteSpool({
    path: spoolPath(join(work, "data")),
    limits: { maxMessages: 100, maxBytes: 100_000 },
  });
  for (const n of [1, 2]) {
    const id = `docs-dead-${n}`;
    const room = `ops@${server.mucDomain}`;
    await spool.enqueue([
      { postId: id, id, route: "docs", room, nick: "grafana", body: `dead letter ${n}` },
    ]);
    await spool.deadLetter(id, "put here by test/docs-run.test.ts");
    deadIds.push(id);
  }
  await spool.close();
});

after(async () => {
  await gateway?.process.stop("SIGTERM", 10_000).catch(() => {});
  killCliChildren();
  await observer?.stop();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The gateway's address, once a block has started it. */
function url(): string {
  assert.ok(gateway, "this block posts to the gateway, and no block before it started one");
  return gateway.url;
}

/** A command as it runs here: the substitutions in the header, nothing else. */
function substitute(command: string, ids: string[]): string {
  return command
    .replace(/http:\/\/localhost:10080|https:\/\/gw\.example\.org/g, () => url())
    .replaceAll("<token>", "MYTOKEN")
    .replaceAll('JID_FROM_PASS="…"', `JID_FROM_PASS="${ALERTS.password}"`)
    .replace(/ID…/g, () => ids.shift() ?? "ID…")
    .replaceAll("example.org", server.domain);
}

/** Waits until `/ready` says every room is joined. */
async function untilReady(at: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while ((await fetch(`${at}/ready`)).status !== 200) {
    assert.ok(Date.now() < deadline, "the gateway the README starts is not ready within 15 s");
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs a block as the reader would; each command must succeed and print what the page quotes. */
async function runBlock(block: ShellBlock): Promise<void> {
  const at = `${block.page}:${block.line}`;
  const steps = stepsOf(block.text);
  assert.ok(steps.length > 0, `${at} has no command`);
  for (const { command } of steps) {
    const found = systemCommandIn(command);
    assert.equal(
      found,
      undefined,
      `${at} runs ${found}, which changes this machine: list the block in CANNOT_RUN in test/docs-run.test.ts with the reason`,
    );
  }
  const ids = [...deadIds];
  const run = await runShellBlock(block, {
    dir: work,
    env,
    substitute: (c) => substitute(c, ids),
  });
  if (run.url) {
    assert.equal(gateway, undefined, "one block starts the gateway");
    gateway = { process: run.process, url: run.url };
    await untilReady(run.url);
  }
  for (const { step, rc, printed, status } of run.results) {
    const where = `${at}: ${step.command}`;
    assert.equal(
      rc,
      "0",
      `${where}\nexited ${rc ?? "before it ran"} (a block that cannot run here goes in CANNOT_RUN in test/docs-run.test.ts, with the reason):\n${run.process.output()}`,
    );
    if (step.quoted.length > 0) {
      const quoted = step.quoted.join("\n").replaceAll("example.org", server.domain);
      assert.ok(matchesQuote(printed, quoted), `${where}\nquoted:  ${quoted}\nprinted: ${printed}`);
    }
    if (step.status !== undefined) assert.equal(status, step.status, `${where}: the quoted status`);
  }
}

test("how a block is read: quotes right below a command, explanations after it, … as a wildcard", () => {
  const steps = stepsOf(
    "# about the block\ncurl -X POST \\\n  -d '{}' x   # explained\n# {\"a\":1}      (status 404)\n\necho hi\n\n# not a quote\n",
  );
  assert.deepEqual(steps, [
    { command: "curl -X POST \\\n  -d '{}' x   # explained", quoted: ['{"a":1}'], status: 404 },
    { command: "echo hi", quoted: [], status: undefined },
  ]);
  assert.ok(matchesQuote('{"id":"abc","status":"delivered"}', '{"id":"…","status":"delivered"}'));
  assert.ok(!matchesQuote('{"id":"abc","status":"queued"}', '{"id":"…","status":"delivered"}'));
  assert.ok(!matchesQuote("a (b)", "a (c)"), "the rest is compared literally");
  assert.equal(systemCommandIn("npm ci && sudo apt-get install -y prosody"), "sudo");
  assert.equal(systemCommandIn("curl x   # then git push"), undefined);
});

test("every shell block of README.md and docs/ runs here or is listed with the reason it cannot", (t) => {
  assert.ok(BLOCKS.length >= 8, "the pages have shell blocks");
  for (const s of CANNOT_RUN) {
    assert.ok(
      BLOCKS.some((b) => b.page === s.page && b.first === s.first),
      `CANNOT_RUN lists a block ${s.page} no longer has; remove it from test/docs-run.test.ts: ${s.first}`,
    );
  }
  const gateways = BLOCKS.filter(
    (b) => !skipReason(b) && STARTS_GATEWAY.test(stepsOf(b.text).at(-1)?.command ?? ""),
  );
  assert.equal(gateways.length, 1, "one block, the README's, starts the gateway the others use");
  const notRun = BLOCKS.filter((b) => skipReason(b)).map((b) => `${b.page}:${b.line}`);
  t.diagnostic(
    `not run here, each with its reason in CANNOT_RUN or a file block: ${notRun.join(", ")}`,
  );
  assert.ok(notRun.length < BLOCKS.length / 2, "most blocks run");
});

// The blocks that cannot run here are not tests: each is named, with its reason, by the
// test above (a stale entry fails it) and run by the test its reason names.
for (const block of BLOCKS.filter((b) => !skipReason(b))) {
  test(`${block.page}:${block.line} runs as the page says: ${block.first}`, () => runBlock(block));
}

test("README.md: the room shows the message as the README shows it", async () => {
  const readme = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
  const shown = /^```[a-z]*\n<grafana> ([\s\S]*?)\n```$/m.exec(readme)?.[1];
  assert.ok(shown, "README.md shows a message from the nick grafana");
  const got = await observer.waitFor(
    (m) => m.nick === "grafana" && m.body.includes('"Test message"'),
    10_000,
  );
  assert.equal(got.body, shown);
});
