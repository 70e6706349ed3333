// The Dockerfile and the compose files, read: the essentials an operator relies on, in
// the words of the files themselves. test/container-run.test.ts builds and runs them.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { parse } from "yaml";
import { DEPLOYED_NODE_ARGS } from "../bench/gateway.ts";
import { assertEmbedsVerbatim } from "./support/doc-blocks.ts";

const read = (name: string) => readFileSync(new URL(`../${name}`, import.meta.url), "utf8");
const dockerfile = read("Dockerfile");
/** Instructions with their continuation lines joined, comments dropped. */
const instructions = dockerfile
  .replace(/\\\n(\s*#.*\n)*\s*/g, " ")
  .split("\n")
  .map((l) => l.trim())
  .filter((l) => l !== "" && !l.startsWith("#"));
const froms = instructions.filter((l) => l.startsWith("FROM "));
const stage = (name: string) => {
  const start = instructions.findIndex((l) => new RegExp(`^FROM \\S+ AS ${name}$`, "i").test(l));
  assert.ok(start >= 0, `stage ${name} exists`);
  const end = instructions.findIndex((l, i) => i > start && l.startsWith("FROM "));
  return instructions.slice(start, end < 0 ? undefined : end);
};

test("Dockerfile: the last stage is the production image, so `docker build .` gives the gateway", () => {
  assert.match(froms.at(-1) ?? "", / AS runtime$/);
  assert.ok(
    froms.some((l) => / AS demo$/.test(l)),
    "the demo is an earlier, named stage",
  );
});

test("Dockerfile: multi-stage on Node 24, production dependencies only, compiled JavaScript", () => {
  for (const f of froms) assert.match(f, /^FROM node:24[-\w.]* AS \w+$/);
  // Not the optional Node binaries a checkout runs under: the image has its own Node.
  assert.ok(stage("deps").some((l) => /^RUN npm ci --omit=dev --omit=optional\b/.test(l)));
  assert.ok(stage("build").includes("RUN npm run build"));
  for (const name of ["runtime", "demo"]) {
    const s = stage(name);
    assert.ok(s.includes("COPY --from=deps /app/node_modules ./node_modules"), name);
    // The compiled JavaScript, which bin/xmpp-msg-gw.js runs when src/ is absent.
    assert.ok(s.includes("COPY --from=build /app/dist ./dist"), name);
    assert.ok(s.includes("COPY bin ./bin"), name);
    assert.ok(!s.some((l) => /^COPY (\.|src|test|bench)\b/.test(l)), `${name}: only bin/, dist/`);
  }
});

test("Dockerfile: non-root, /data volume, /config working directory, port 10080, health check", () => {
  const runtime = stage("runtime");
  assert.ok(runtime.includes("USER node"));
  assert.ok(runtime.includes('VOLUME ["/data"]'));
  assert.ok(runtime.some((l) => /^ENV .*DATA_DIR=\/data/.test(l)));
  // Where docker-compose.yml mounts the directory holding .env or the old .pyenv.
  assert.ok(runtime.includes("WORKDIR /config"));
  assert.ok(runtime.includes("EXPOSE 10080"));
  assert.match(runtime.find((l) => l.startsWith("HEALTHCHECK")) ?? "", /\/health/);
  assert.ok(stage("demo").includes("USER node"), "the demo runs as node too");
});

test("Dockerfile: the gateway's node options are the ones bin/xmpp-msg-gw and the bench use", () => {
  const launcher = readFileSync(new URL("../bin/xmpp-msg-gw", import.meta.url), "utf8");
  const options = /export NODE_OPTIONS="([^$"]+)\$\{/.exec(launcher)?.[1];
  assert.equal(options, DEPLOYED_NODE_ARGS);
  assert.ok(stage("runtime").some((l) => l.startsWith(`ENV NODE_OPTIONS=${DEPLOYED_NODE_ARGS} `)));
});

test("Dockerfile: exec-form entry point, so SIGTERM reaches node as PID 1", () => {
  const runtime = stage("runtime");
  assert.ok(runtime.includes('ENTRYPOINT ["node", "/app/bin/xmpp-msg-gw.js"]'));
  assert.ok(runtime.includes('CMD ["serve"]'));
  const demo = stage("demo");
  assert.ok(demo.includes('ENTRYPOINT ["node", "/app/bin/xmpp-msg-gw.js"]'));
  assert.ok(demo.includes('CMD ["demo"]'));
  assert.ok(demo.some((l) => /apt-get install .*prosody/.test(l)));
});

test("docker-compose.yml: the gateway alone, reading .env or the old .pyenv from the compose directory", () => {
  const compose = parse(read("docker-compose.yml"));
  assert.deepEqual(Object.keys(compose.services), ["xmpp-msg-gw"], "no demo service to start");
  const gw = compose.services["xmpp-msg-gw"];
  assert.equal(gw.build, ".", "the Dockerfile's last stage");
  assert.equal(gw.profiles, undefined);
  // The gateway parses the files itself (`export KEY="value"`, ${VAR}); compose's env_file
  // would need `.env` to exist and reads `export` lines its own way.
  assert.equal(gw.env_file, undefined);
  assert.ok(gw.volumes.includes(".:/config:ro"));
  assert.ok(gw.volumes.includes("gw-data:/data"));
  assert.ok("gw-data" in compose.volumes);
  assert.equal(gw.restart, "unless-stopped");
  assert.deepEqual(gw.ports, ["10080:10080"]);
});

test("docker-compose.demo.yml: only the demo, in a project of its own", () => {
  const compose = parse(read("docker-compose.demo.yml"));
  assert.equal(compose.name, "xmpp-msg-gw-demo");
  assert.deepEqual(Object.keys(compose.services), ["demo"]);
  assert.equal(compose.services.demo.build.target, "demo");
  assert.equal(compose.volumes, undefined, "nothing of the gateway's");
});

test(".dockerignore keeps secrets, data and node_modules out, and what the image needs in", () => {
  const ignored = read(".dockerignore")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  for (const entry of [".env", ".pyenv", "node_modules", "data", ".git"]) {
    assert.ok(ignored.includes(entry), entry);
  }
  const needed = ["package.json", "package-lock.json", "tsconfig.json", "tsconfig.build.json"];
  for (const path of [...needed, "src", "bin"]) {
    const glob = (p: string) => new RegExp(`^${p.replace(/\./g, "\\.").replace(/\*/g, ".*")}$`);
    assert.ok(!ignored.some((p) => glob(p).test(path) || p === "*"), `${path} stays in`);
  }
});

test("docs/migration.md shows the docker-compose.override.yml the container test runs", () => {
  assertEmbedsVerbatim("docs/migration.md", ["docs/migration/docker-compose.override.yml"]);
});
