// The container, built and run for real: buildah builds both images from the Dockerfile
// as it is (the stand-in base image, cached, see support/container.ts), and podman runs
// them on the host network against a throwaway Prosody, with an independent witness in
// the room. The gateway is started as docker-compose.yml's service, in a directory that
// holds only the old gateway's .pyenv (and the override the migration guide shows), with
// exactly the mounts and environment the compose files give it.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { httpPost } from "../src/devserver/http-post.ts";
import { freePort } from "../src/devserver/process.ts";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import {
  buildImage,
  type ContainerTools,
  containerTools,
  removeLeftovers,
  snapshotContext,
  TEST_PREFIX,
} from "./support/container.ts";
import { type BaseImageSource, ensureBaseImage } from "./support/container-base.ts";
import { type ComposeService, composeService } from "./support/container-compose.ts";
import {
  type ComposeProject,
  composeProject,
  type OldPyenv,
  oldPyenv,
} from "./support/container-project.ts";
import { REPO_ROOT } from "./support/doc-blocks.ts";
import { rawRequest } from "./support/raw-http.ts";
import { until } from "./support/until.ts";
import { type Observer, observe } from "./support/witness.ts";

const SERVICE = "xmpp-msg-gw";
const PROJECT = `${TEST_PREFIX}${process.pid}`;
const GATEWAY_IMAGE = `localhost/${TEST_PREFIX}gateway:latest`;
const DEMO_IMAGE = `localhost/${TEST_PREFIX}demo:latest`;
const WATCHER = { user: "watcher", password: randomBytes(9).toString("base64url") };
/** Where the test CA is mounted in the container (the test server's, not a user's). */
const CA_IN_CONTAINER = "/run/test-xmpp-ca.pem";

let tools: ContainerTools;
let server: ProsodyServer | undefined;
let observer: Observer | undefined;
let project: ComposeProject | undefined;
let contextDir: string | undefined;
let gateway: ComposeService;
let pyenv: OldPyenv;
let room: string;
const timings: string[] = [];
const started: string[] = [];

/** Runs `step`, noting how long it took for the last test's report. */
async function timed<T>(what: string, step: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  const result = await step();
  timings.push(`${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return result;
}

before(
  async () => {
    tools = await containerTools();
    await removeLeftovers(tools);
    const base: BaseImageSource = await timed("base image", () => ensureBaseImage(tools));
    timings.push(`base image was ${base}`);

    pyenv = await oldPyenv("localhost");
    server = await startProsody({
      users: [{ user: pyenv.user, password: pyenv.password }, WATCHER],
    });
    assert.equal(server.domain, "localhost");
    room = `${pyenv.roomName}@${server.mucDomain}`;
    observer = await observe(server, WATCHER, [room]);

    // This machine's difference from a Docker host: the host network (bridge addresses are
    // not allowed here), so the port comes from HTTP_PORT instead of `ports:`, and the test
    // server's address and CA, which no old .pyenv names.
    project = await composeProject(pyenv, {
      services: {
        [SERVICE]: {
          network_mode: "host",
          environment: {
            HTTP_PORT: String(await freePort()),
            XMPP_HOST: server.host,
            XMPP_PORT: String(server.c2sPort),
            XMPP_CA_FILE: CA_IN_CONTAINER,
          },
          volumes: [`${server.caFile}:${CA_IN_CONTAINER}:ro`],
        },
      },
    });
    gateway = composeService(project.files, SERVICE, PROJECT);

    // Built from the repository, where docker-compose.yml's build context points.
    const repoService = composeService([join(REPO_ROOT, "docker-compose.yml")], SERVICE, PROJECT);
    assert.equal(repoService.build?.context, ".", "the gateway is built from this repository");
    contextDir = await snapshotContext(REPO_ROOT);
    const context = contextDir;
    await timed("gateway image build", () =>
      buildImage(tools, {
        context,
        target: repoService.build?.target,
        tag: GATEWAY_IMAGE,
      }),
    );
    const demo = composeService([join(REPO_ROOT, "docker-compose.demo.yml")], "demo", PROJECT);
    await timed("demo image build", () =>
      buildImage(tools, { context, target: demo.build?.target, tag: DEMO_IMAGE }),
    );
  },
  { timeout: 45 * 60_000 },
);

after(async () => {
  if (tools !== undefined) {
    if (started.length > 0)
      await tools.podman(["rm", "--force", "--ignore", ...started], { allowFail: true });
    const volumes = gateway?.volumes ?? [];
    if (volumes.length > 0) {
      await tools.podman(["volume", "rm", "--force", ...volumes], { allowFail: true });
    }
    await tools.cleanup();
  }
  await observer?.stop();
  await server?.stop();
  await project?.cleanup();
  if (contextDir) await rm(contextDir, { recursive: true, force: true });
});

/** The image's configuration, as `docker inspect` shows it. */
async function imageConfig(image: string): Promise<Record<string, unknown>> {
  const out = await tools.podman(["image", "inspect", "--format", "{{json .Config}}", image]);
  return JSON.parse(out.stdout);
}

test("docker build . gives the gateway: the last stage runs serve as node, checks /health, keeps no build-time CA", {
  timeout: 120_000,
}, async () => {
  const config = await imageConfig(GATEWAY_IMAGE);
  assert.equal(config.User, "node");
  assert.deepEqual(config.Entrypoint, ["node", "/app/bin/xmpp-msg-gw.js"]);
  assert.deepEqual(config.Cmd, ["serve"]);
  assert.equal(config.WorkingDir, "/config");
  assert.ok("10080/tcp" in (config.ExposedPorts as object), "exposes 10080");
  const health = await tools.podman([
    "image",
    "inspect",
    "--format",
    "{{json .HealthCheck}}",
    GATEWAY_IMAGE,
  ]);
  assert.match(health.stdout, /\/health/, "HEALTHCHECK kept (docker format)");
  // The CA bundle and npmrc were mounted on /usr/local/etc for the RUN steps only; the
  // image runs its own Node, not the optional Node package a checkout runs under.
  const inside = await tools.podman([
    "run",
    "--rm",
    "--network",
    "host",
    "--entrypoint",
    "sh",
    GATEWAY_IMAGE,
    "-c",
    "ls -A /usr/local/etc /config; ls /app/node_modules | grep '^node-linux-'; test ! -e /app/src && test -f /app/dist/cli/index.js && echo ok",
  ]);
  assert.equal(inside.stdout, "/config:\n\n/usr/local/etc:\nok\n");
});

test("docker compose up in a directory holding only the old .pyenv: the gateway runs with it", {
  timeout: 180_000,
}, async (t) => {
  assert.equal(gateway.environment.LOG_LEVEL, "debug", "the override's LOG_LEVEL is passed");
  assert.deepEqual(gateway.ports, ["10080:10080"], "compose publishes the old port");
  const url = `http://127.0.0.1:${gateway.environment.HTTP_PORT}`;
  await tools.podman(["run", "--detach", ...gateway.runArgs, GATEWAY_IMAGE, ...gateway.command]);
  started.push(gateway.containerName);
  const logs = async () =>
    (await tools.podman(["logs", gateway.containerName], { allowFail: true })).stdout;

  await t.test("/health answers 200", async () => {
    await until(
      "/health",
      async () => (await fetch(`${url}/health`).catch(() => undefined))?.status === 200,
      30_000,
    ).catch(async (err) => {
      throw new Error(`${err.message}; the container logged:\n${await logs()}`);
    });
  });

  await t.test("/ready: logged in with the .pyenv's account, in every room", async () => {
    await until(
      "/ready",
      async () => (await fetch(`${url}/ready`).catch(() => undefined))?.status === 200,
      30_000,
    ).catch(async (err) => {
      throw new Error(`${err.message}; the container logged:\n${await logs()}`);
    });
  });

  await t.test("docker compose run --rm xmpp-msg-gw check: everything works", async () => {
    const oneOff = composeService(project?.files ?? [], SERVICE, PROJECT, { oneOff: true });
    started.push(oneOff.containerName);
    const check = await tools.podman(["run", "--rm", ...oneOff.runArgs, GATEWAY_IMAGE, "check"], {
      allowFail: true,
      timeoutMs: 60_000,
    });
    assert.equal(check.code, 0, `${check.stdout}${check.stderr}`);
    assert.match(check.stdout, /^everything works$/m);
  });

  await t.test("a post to the .pyenv's token arrives in its room as its nick", async () => {
    const marker = randomBytes(6).toString("hex");
    const res = await httpPost(
      `${url}/post/${pyenv.token}`,
      JSON.stringify({ title: "from the container", marker }),
      { "content-type": "application/json" },
    );
    assert.equal(res.status, 200, res.body);
    assert.equal(JSON.parse(res.body).status, "delivered");
    const got = await observer?.waitFor((m) => m.body.includes(marker), 15_000);
    assert.equal(got?.room, room);
    assert.equal(got?.nick, pyenv.nick);
    assert.match(got?.body ?? "", /"title": "from the container"/);
  });

  await t.test(
    "LOG_LEVEL=debug from docker-compose.override.yml wins over .pyenv's INFO",
    async () => {
      // A request cut short is logged at debug only (src/http/edge.ts).
      const reply = await rawRequest(Number(gateway.environment.HTTP_PORT), "GARBAGE\r\n\r\n");
      assert.match(reply, /^HTTP\/1\.1 400 /);
      await until("a debug line", async () => /"level":20\b/.test(await logs()), 10_000);
    },
  );

  await t.test("the gateway runs as the node user, as PID 1", async () => {
    const id = await tools.podman(["exec", gateway.containerName, "id", "-u"]);
    assert.equal(id.stdout.trim(), "1000");
    const pid1 = await tools.podman(["exec", gateway.containerName, "cat", "/proc/1/cmdline"]);
    assert.match(pid1.stdout.replaceAll("\0", " "), /^node \/app\/bin\/xmpp-msg-gw\.js serve/);
  });

  await t.test("podman healthcheck run passes", async () => {
    const health = await tools.podman(["healthcheck", "run", gateway.containerName], {
      allowFail: true,
    });
    assert.equal(health.code, 0, `${health.stdout}${health.stderr}`);
  });

  await t.test(
    "SIGHUP (compose kill -s SIGHUP) reloads the edited .pyenv: a new token works",
    async () => {
      const fresh = `reload-${randomBytes(4).toString("hex")}`;
      const file = join(project?.dir ?? "", ".pyenv");
      const text = await readFile(file, "utf8");
      const route = `${fresh}:${pyenv.roomName}@conference.\${XMPP_DOMAIN}:${pyenv.nick}`;
      const edited = text.replace(/^export KNOWN_ROOMS="/m, `$&${route} `);
      assert.notEqual(edited, text);
      // Saved as editors save: a new file renamed over the old one, a new inode, which only a
      // mount of the directory (not of the file alone) shows the container.
      await writeFile(`${file}.new`, edited, { mode: 0o644 });
      await rename(`${file}.new`, file);
      await tools.podman(["kill", "--signal", "HUP", gateway.containerName]);
      await until("the reload", async () => /configuration reloaded/.test(await logs()), 15_000);
      const marker = randomBytes(6).toString("hex");
      const res = await httpPost(`${url}/post/${fresh}`, `reloaded ${marker}`, {
        "content-type": "text/plain",
      });
      assert.equal(res.status, 200, res.body);
      const got = await observer?.waitFor((m) => m.body.includes(marker), 15_000);
      assert.equal(got?.body, `reloaded ${marker}`);
    },
  );

  await t.test("SIGTERM (compose stop) ends it with exit 0 within the grace period", async () => {
    const t0 = Date.now();
    await tools.podman(["stop", gateway.containerName], {
      timeoutMs: (gateway.stopGraceSeconds + 30) * 1000,
    });
    const seconds = (Date.now() - t0) / 1000;
    const state = await tools.podman([
      "inspect",
      "--format",
      "{{.State.ExitCode}}",
      gateway.containerName,
    ]);
    assert.equal(state.stdout.trim(), "0", `exit code; the container logged:\n${await logs()}`);
    assert.ok(seconds < gateway.stopGraceSeconds, `stopped in ${seconds} s`);
    assert.match(
      await logs(),
      /"signal":"SIGTERM"[^\n]*"msg":"stopping"/,
      "the gateway's own stop",
    );
  });
});

test("docker-compose.demo.yml's image: demo --once shows the sample message arriving", {
  timeout: 120_000,
}, async () => {
  const demo = composeService([join(REPO_ROOT, "docker-compose.demo.yml")], "demo", PROJECT);
  assert.deepEqual(demo.ports, ["10080:10080"]);
  const config = await imageConfig(DEMO_IMAGE);
  assert.equal(config.User, "node", "the demo runs as node too");
  const name = `${PROJECT}-demo-once`;
  started.push(name);
  const run = await tools.podman(
    [
      "run",
      "--rm",
      "--name",
      name,
      "--network",
      "host",
      "--env",
      `HTTP_PORT=${await freePort()}`,
      DEMO_IMAGE,
      "demo",
      "--once",
    ],
    { timeoutMs: 90_000, allowFail: true },
  );
  assert.equal(run.code, 0, `${run.stdout}${run.stderr}`);
  assert.match(
    run.stdout,
    /<alerts>\n\{\n {2}"title": "Test message",\n {2}"text": "Hello World!"/,
  );
  assert.match(run.stdout, /demo: reply 200 \{"success":true,[^\n]*"status":"delivered"\}/);
});

test("timings", (t) => {
  for (const line of timings) t.diagnostic(line);
});
