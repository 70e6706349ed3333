// One runtime path: the Node 24 that `npm ci` installs into node_modules runs the gateway,
// with no wrapper process in between. Started each way the README and docs/systemd.md
// document (the executable bin/xmpp-msg-gw, as systemd starts it, and `npm start`), the
// PID a user or supervisor has gets SIGHUP (reload, proven by a post to a new route that a
// second account sees arrive) and SIGTERM (a clean stop, exit 0), and nothing is left in
// the process group. Signals during start-up are handled too. /proc tells who is who.
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Socket } from "node:net";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { pathToFileURL } from "node:url";
import { httpPost } from "../src/devserver/http-post.ts";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { type CliProcess, captureCli, killCliChildren, LISTENING } from "./support/cli.ts";
import { REPO_ROOT } from "./support/doc-blocks.ts";
import { gatewayEnv } from "./support/gateway.ts";
import { catches, childrenOf, groupOf, proc } from "./support/procfs.ts";
import { until } from "./support/until.ts";
import { type Observer, observe } from "./support/witness.ts";

const LAUNCHER = join(REPO_ROOT, "bin/xmpp-msg-gw");
const PROGRAM = join(REPO_ROOT, "bin/xmpp-msg-gw.js");
/** The Node 24 `npm ci` installed, where this platform has one (bin/node looks in both places). */
const BUNDLED = [".bin/node", `node-linux-${process.arch}/bin/node`]
  .map((p) => join(REPO_ROOT, "node_modules", p))
  .find((p) => existsSync(p));
const GW = { user: "rtgw", password: "rt-gw-pass" };
const WATCHER = { user: "rtwatch", password: "rt-watch-pass" };
const dirs: string[] = [];
const groups: number[] = [];
let server: ProsodyServer;
let observer: Observer;

before(async () => {
  server = await startProsody({ users: [GW, WATCHER] });
  observer = await observe(server, WATCHER, [`rt@${server.mucDomain}`], "rt-watcher");
});

after(async () => {
  killCliChildren();
  for (const pgid of groups) for (const p of groupOf(pgid)) process.kill(p.pid, "SIGKILL");
  await observer?.stop();
  await server?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "gw-runtime-"));
  dirs.push(dir);
  return dir;
};

/** A CONFIG_FILE with one route per nick, each to the witnessed room, token `tok-<nick>`. */
function writeRoutes(file: string, nicks: string[]): void {
  const route = (nick: string) =>
    `  - name: ${nick}\n    token: tok-${nick}\n    format: text\n    targets:\n      - room: rt@${server.mucDomain}\n        nick: ${nick}\n`;
  writeFileSync(file, `routes:\n${nicks.map(route).join("")}`);
}

/** Starts `file args` in its own process group, in a new dir, with a gateway's settings. */
function start(
  file: string,
  args: string[],
  opts: { cwd?: string; nick: string; env?: Record<string, string> },
) {
  const dir = tempDir();
  const config = join(dir, "config.yaml");
  writeRoutes(config, [opts.nick]);
  const env = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? dir,
    ...gatewayEnv(server, GW),
    CONFIG_FILE: config,
    DATA_DIR: join(dir, "data"),
    LOG_LEVEL: "info",
    ...opts.env,
  };
  const child: ChildProcess = spawn(file, args, { cwd: opts.cwd ?? dir, env, detached: true });
  groups.push(child.pid as number);
  return { p: captureCli(child), config, pid: child.pid as number };
}

const post = (url: string, nick: string, text: string) =>
  httpPost(`${url}/post/tok-${nick}`, text, { "content-type": "text/plain" });

/** Posts until the route of `nick` delivers `text` (200), and the witness has seen it. */
async function delivered(url: string, nick: string, text: string): Promise<void> {
  await until(`${nick} to deliver`, async () => (await post(url, nick, text)).status === 200);
  await observer.waitFor((m) => m.nick === nick && m.body === text);
}

/** `pid` is the gateway itself: the Node in node_modules (when there is one) on the program. */
function assertIsGateway(pid: number): void {
  const gw = proc(pid);
  assert.ok(gw, `process ${pid} runs`);
  if (BUNDLED) assert.equal(gw.exe, realpathSync(BUNDLED));
  assert.deepEqual(
    gw.argv.slice(1).filter((a) => !a.startsWith("--")),
    [PROGRAM, "serve"],
  );
}

/** SIGHUP to `pid` loads a second route (a new nick), which then delivers. */
async function reloadsOnHup(
  pid: number,
  run: ReturnType<typeof start>,
  url: string,
  nicks: string[],
) {
  writeRoutes(run.config, nicks);
  process.kill(pid, "SIGHUP");
  await run.p.waitFor(new RegExp(`configuration reloaded: ${nicks.length} route`), 15_000);
  await delivered(url, nicks.at(-1) as string, `after SIGHUP to ${pid}`);
}

/** Nothing of what was started runs any more (zombies, which have exited, aside). */
const assertNothingLeft = (pgid: number) =>
  until(`process group ${pgid} to be empty`, () => groupOf(pgid).length === 0, 10_000);

test("bin/xmpp-msg-gw serve (systemd's ExecStart): its PID is the gateway's; SIGHUP reloads, SIGTERM stops", async () => {
  const run = start(LAUNCHER, ["serve"], { nick: "exe-a" });
  const [, url] = await run.p.waitFor(LISTENING, 20_000);
  assertIsGateway(run.pid); // the shell exec'd Node: the same PID, no wrapper left
  await delivered(url as string, "exe-a", "before");
  await reloadsOnHup(run.pid, run, url as string, ["exe-a", "exe-b"]);
  const exit = await run.p.stop("SIGTERM");
  assert.deepEqual([exit.code, exit.signal], [0, null], run.p.output());
  assert.match(run.p.output(), /stopped; 0 message\(s\) stay in the spool/);
  await assertNothingLeft(run.pid);
});

test("npm start: the gateway is npm's only child; SIGHUP to it reloads, SIGTERM to npm stops it", async () => {
  const run = start("npm", ["start"], { cwd: REPO_ROOT, nick: "npm-a" });
  const [, url] = await run.p.waitFor(LISTENING, 30_000);
  const children = childrenOf(run.pid);
  assert.equal(children.length, 1, JSON.stringify(children));
  const gw = (children[0] as { pid: number }).pid;
  assertIsGateway(gw); // no `sh -c` in between: the script `exec`s the launcher
  await delivered(url as string, "npm-a", "before");
  // npm does not pass SIGHUP on: a reload goes to the gateway's own PID.
  await reloadsOnHup(gw, run, url as string, ["npm-a", "npm-b"]);
  // npm passes SIGTERM (and SIGINT) on, and exits with the gateway's code.
  const exit = await run.p.stop("SIGTERM");
  assert.deepEqual([exit.code, exit.signal], [0, null], run.p.output());
  assert.match(run.p.output(), /stopped; 0 message\(s\) stay in the spool/);
  await assertNothingLeft(run.pid);
});

test("npm start: a SIGHUP to npm, which ends npm, stops the gateway instead of orphaning it", async () => {
  const run = start("npm", ["start"], { cwd: REPO_ROOT, nick: "npm-hup" });
  await run.p.waitFor(LISTENING, 30_000);
  const [gw] = childrenOf(run.pid);
  assert.ok(gw);
  const exit = await run.p.stop("SIGHUP");
  assert.equal(exit.signal, "SIGHUP");
  await run.p.waitFor(/has gone: stopping[\s\S]*stopped; /, 10_000);
  await assertNothingLeft(run.pid);
});

/**
 * NODE_OPTIONS that hold the loading of the gateway's modules (src/cli/index.ts) for
 * 1.5 s, with `mark` saying "held" meanwhile and "released" after: a start-up window that
 * is long and known, instead of the few hundred milliseconds it takes.
 */
function holdModuleLoading(mark: string): Record<string, string> {
  const dir = tempDir();
  writeFileSync(
    join(dir, "hooks.mjs"),
    `import { writeFileSync } from "node:fs";
export async function load(url, context, next) {
  if (url.endsWith("/src/cli/index.ts")) {
    writeFileSync(${JSON.stringify(mark)}, "held");
    await new Promise((r) => setTimeout(r, 1500));
    writeFileSync(${JSON.stringify(mark)}, "released");
  }
  return next(url, context);
}
`,
  );
  writeFileSync(
    join(dir, "register.mjs"),
    `import { register } from "node:module";\nregister("./hooks.mjs", import.meta.url);\n`,
  );
  return { NODE_OPTIONS: `--import=${pathToFileURL(join(dir, "register.mjs")).href}` };
}

test("while its modules load: a SIGHUP is survived, a SIGTERM ends it with 0", async () => {
  for (const signal of ["SIGHUP", "SIGTERM"] as const) {
    const mark = join(tempDir(), "mark");
    const run = start(LAUNCHER, ["serve"], { nick: "early", env: holdModuleLoading(mark) });
    await until("the module loading to be held", () => read(mark) === "held", 15_000);
    // The program's first lines catch the signals, before any of the gateway is loaded.
    assert.ok(catches(run.pid, constants.signals.SIGHUP), "SIGHUP is caught");
    assert.ok(catches(run.pid, constants.signals.SIGTERM), "SIGTERM is caught");
    process.kill(run.pid, signal);
    if (signal === "SIGHUP") {
      await run.p.waitFor(LISTENING, 20_000);
      assert.equal(read(mark), "released", "the signal came while the modules were loading");
      await stopped(run.p);
    } else {
      // Stopped before anything started, or (where the loading kept the signal waiting)
      // by serve's own clean stop once up: 0 either way, never killed by the signal.
      const exit = await run.p.closed;
      assert.deepEqual([exit.code, exit.signal], [0, null], run.p.output());
      assert.match(run.p.output(), /SIGTERM while starting: stopped|stopped; 0 message/);
    }
    await assertNothingLeft(run.pid);
  }
});

const read = (file: string) => (existsSync(file) ? readFileSync(file, "utf8") : "");

test("a SIGHUP after the settings were read but before the gateway is up reloads once it is", async () => {
  // An XMPP server that accepts and says nothing for 2 s holds the start-up in its wait
  // for the first logins, after HTTP listens.
  const held = new Set<Socket>();
  const silent = createServer((s) => {
    held.add(s);
    setTimeout(() => s.destroy(), 2000);
  });
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  const port = (silent.address() as { port: number }).port;
  try {
    const dir = tempDir();
    const config = join(dir, "config.yaml");
    writeFileSync(config, routesYaml(["one"]));
    const child = spawn(LAUNCHER, ["serve"], {
      cwd: dir,
      detached: true,
      env: {
        PATH: process.env.PATH ?? "",
        JID_FROM_USER: "gw@silent.example",
        JID_FROM_PASS: "x",
        XMPP_HOST: "127.0.0.1",
        XMPP_PORT: String(port),
        HTTP_HOST: "127.0.0.1",
        HTTP_PORT: "0",
        CONFIG_FILE: config,
        LOG_LEVEL: "info",
      },
    });
    groups.push(child.pid as number);
    const p = captureCli(child);
    await p.waitFor(LISTENING, 20_000);
    writeFileSync(config, routesYaml(["one", "two"]));
    child.kill("SIGHUP");
    await p.waitFor(/configuration reloaded: 2 route\(s\)/, 25_000);
    await stopped(p);
    await assertNothingLeft(child.pid as number);
  } finally {
    for (const s of held) s.destroy();
    silent.close();
  }
});

function routesYaml(names: string[]): string {
  const route = (n: string) =>
    `  - name: ${n}\n    token: tok-${n}\n    targets:\n      - room: r@conference.silent.example\n        nick: ${n}\n`;
  return `routes:\n${names.map(route).join("")}`;
}

async function stopped(p: CliProcess): Promise<void> {
  const exit = await p.stop("SIGTERM");
  assert.deepEqual([exit.code, exit.signal], [0, null], p.output());
}

test("the launcher execs the Node in node_modules, else the one on PATH, and says when there is none", () => {
  const root = tempDir();
  mkdirSync(join(root, "bin"));
  for (const script of ["xmpp-msg-gw", "node"]) {
    copyFileSync(join(REPO_ROOT, "bin", script), join(root, "bin", script));
    chmodSync(join(root, "bin", script), 0o755);
  }
  // A stand-in for the program: prints how it was started.
  writeFileSync(
    join(root, "bin/xmpp-msg-gw.js"),
    "console.log(JSON.stringify({ pid: process.pid, exe: process.execPath, execArgv: process.execArgv, args: process.argv.slice(2) }));\n",
  );
  const run = (file: string, env: Record<string, string>) => {
    const r = spawnSync(file, ["a b", "c"], { env, encoding: "utf8" });
    return { ...r, out: r.status === 0 ? JSON.parse(r.stdout) : undefined };
  };
  const node = (where: string) => {
    rmSync(join(root, "node_modules"), { recursive: true, force: true });
    mkdirSync(join(root, "node_modules", where, ".."), { recursive: true });
    symlinkSync(process.execPath, join(root, "node_modules", where));
  };

  // Through a symlink, as npm links node_modules/.bin/xmpp-msg-gw, with node_modules' Node;
  // also where npm 9 dropped the .bin/node link and only the package is there.
  const link = join(tempDir(), "xmpp-msg-gw");
  symlinkSync(join(root, "bin/xmpp-msg-gw"), link);
  for (const where of [".bin/node", `node-linux-${process.arch}/bin/node`]) {
    node(where);
    const r = run(link, { PATH: "/usr/bin:/bin" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.out.pid, r.pid, "exec'd: the launcher's PID is the program's");
    assert.equal(r.out.exe, realpathSync(process.execPath));
    assert.deepEqual([r.out.execArgv, r.out.args], [[], ["a b", "c"]]);
  }

  // None in node_modules: the node on PATH; a Node 22.13 to 22.17 is asked to strip types.
  rmSync(join(root, "node_modules"), { recursive: true });
  const fakes = tempDir();
  const fake = (version: string) => {
    writeFileSync(
      join(fakes, "node"),
      `#!/bin/sh\n[ "$1" = --version ] && { echo ${version}; exit 0; }\nexec "${process.execPath}" "$@"\n`,
    );
    chmodSync(join(fakes, "node"), 0o755);
    return run(join(root, "bin/xmpp-msg-gw"), { PATH: `${fakes}:/usr/bin:/bin` });
  };
  const old22 = fake("v22.15.0");
  assert.equal(old22.status, 0, old22.stderr);
  assert.deepEqual(old22.out.execArgv, [
    "--experimental-strip-types",
    "--disable-warning=ExperimentalWarning",
  ]);
  assert.deepEqual(fake("v24.22.3").out.execArgv, []);

  const none = spawnSync(join(root, "bin/xmpp-msg-gw"), ["token"], {
    env: { PATH: "/usr/bin:/bin".replace(/\/bin/g, "/nothing") },
    encoding: "utf8",
  });
  assert.equal(none.status, 127);
  assert.match(none.stderr, /no Node\.js: run `npm ci` in .* or install Node\.js 22\.13 or newer/);
});

test("with an older Node first on PATH: the executable runs quietly under Node 24; that Node itself is told what to run", (t) => {
  if (!BUNDLED) {
    t.skip("no Node in node_modules on this platform");
    return;
  }
  const path = `/usr/bin:/bin:${process.env.PATH ?? ""}`;
  const token = spawnSync(LAUNCHER, ["token"], { env: { PATH: path }, encoding: "utf8" });
  assert.equal(token.status, 0, token.stderr);
  assert.match(token.stdout, /^[A-Za-z0-9_-]{32}\n$/);
  assert.equal(token.stderr, "", "nothing but the token: no warnings");
  const machine = spawnSync("node", ["-p", "process.versions.node"], {
    env: { PATH: path },
    encoding: "utf8",
  });
  const [major = 0, minor = 0] = machine.stdout.trim().split(".").map(Number);
  if (machine.status !== 0 || major > 22 || (major === 22 && minor >= 13)) {
    t.diagnostic(`the machine's node is ${machine.stdout.trim() || "absent"}: not old`);
    return;
  }
  const old = spawnSync("node", [PROGRAM, "token"], { env: { PATH: path }, encoding: "utf8" });
  assert.equal(old.status, 1);
  assert.match(old.stderr, /is too old \(22\.13 or newer is needed\)\. `npm ci` installs Node 24/);
});
