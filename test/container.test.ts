// No Docker engine runs here: these read the Dockerfile and the compose file and check
// the essentials an operator relies on, including that the container starts the gateway
// with the very command the tests start on the host.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { parse } from "yaml";

const read = (name: string) => readFileSync(new URL(`../${name}`, import.meta.url), "utf8");
const dockerfile = read("Dockerfile");
/** Instructions with their continuation lines joined, comments dropped. */
const instructions = dockerfile
  .replace(/\\\n\s*/g, " ")
  .split("\n")
  .map((l) => l.trim())
  .filter((l) => l !== "" && !l.startsWith("#"));
const stage = (name: string) => {
  const start = instructions.findIndex((l) => new RegExp(`^FROM \\S+ AS ${name}$`, "i").test(l));
  assert.ok(start >= 0, `stage ${name} exists`);
  const end = instructions.findIndex((l, i) => i > start && l.startsWith("FROM "));
  return instructions.slice(start, end < 0 ? undefined : end);
};

test("Dockerfile: multi-stage on Node 24, production dependencies only", () => {
  const froms = instructions.filter((l) => l.startsWith("FROM "));
  assert.ok(froms.length >= 2, "multi-stage");
  for (const f of froms.filter((l) => !/FROM runtime/.test(l)))
    assert.match(f, /^FROM node:24[-\w.]* AS \w+$/);
  assert.ok(stage("deps").some((l) => /^RUN npm ci --omit=dev\b/.test(l)));
  const runtime = stage("runtime");
  assert.ok(runtime.includes("COPY --from=deps /app/node_modules ./node_modules"));
  // The compiled JavaScript, which bin/xmpp-msg-gw.js runs when src/ is absent.
  assert.ok(stage("build").some((l) => l === "RUN npm run build"));
  assert.ok(runtime.includes("COPY --from=build /app/dist ./dist"));
  assert.ok(!runtime.includes("COPY src ./src"), "no TypeScript sources in the image");
  assert.ok(
    !runtime.some((l) => /COPY (\.|test|bench)\b/.test(l)),
    "no tests or sources beyond bin/ and src/",
  );
});

test("Dockerfile: non-root, /data volume, port 10080, health check on /health", () => {
  const runtime = stage("runtime");
  assert.ok(runtime.includes("USER node"));
  assert.ok(runtime.includes('VOLUME ["/data"]'));
  assert.ok(runtime.some((l) => /^ENV .*DATA_DIR=\/data/.test(l)));
  assert.ok(runtime.includes("EXPOSE 10080"));
  const health = runtime.find((l) => l.startsWith("HEALTHCHECK"));
  assert.match(health ?? "", /\/health/);
});

test("Dockerfile: exec-form entry point, so SIGTERM reaches node; the same command the tests run", () => {
  const runtime = stage("runtime");
  assert.ok(runtime.includes('ENTRYPOINT ["node", "bin/xmpp-msg-gw.js"]'));
  assert.ok(runtime.includes('CMD ["serve"]'));
  // test/cli.test.ts and test/restart.test.ts spawn exactly: node bin/xmpp-msg-gw.js serve
  assert.match(read("test/cli.test.ts"), /spawn\(process\.execPath, \[BIN, "serve"\]/);
});

test("docker-compose.yml: the gateway with .env, the volume, restart policy, port; a demo profile", () => {
  const compose = parse(read("docker-compose.yml"));
  const gw = compose.services["xmpp-msg-gw"];
  assert.equal(gw.env_file, ".env");
  assert.ok(gw.volumes.some((v: string) => v.endsWith(":/data")));
  assert.equal(gw.restart, "unless-stopped");
  assert.ok(gw.ports.includes("10080:10080"));
  const demo = compose.services.demo;
  assert.deepEqual(demo.profiles, ["demo"]);
  assert.equal(demo.build.target, "demo");
  assert.ok(stage("demo").some((l) => /apt-get install .*prosody/.test(l)));
});

test(".dockerignore keeps secrets, data and node_modules out of the build context", () => {
  const ignored = read(".dockerignore")
    .split("\n")
    .map((l) => l.trim());
  for (const entry of [".env", ".pyenv", "node_modules", "data", ".git"])
    assert.ok(ignored.includes(entry), entry);
});
