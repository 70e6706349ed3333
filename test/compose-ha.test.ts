// docker-compose.ha.yml, read (there is no Docker Engine here to run it): two gateways on
// one PostgreSQL behind nginx, in a project of their own, with the health checks and
// secrets docs/ha.md describes.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import { REPO_ROOT } from "./support/doc-blocks.ts";

// biome-ignore lint/suspicious/noExplicitAny: a parsed compose file, checked field by field.
const compose: any = parse(readFileSync(join(REPO_ROOT, "docker-compose.ha.yml"), "utf8"), {
  merge: true,
});

test("docker-compose.ha.yml: PostgreSQL, two gateways and nginx, in a project of their own", () => {
  assert.equal(compose.name, "xmpp-msg-gw-ha", "never the single gateway's project");
  assert.deepEqual(Object.keys(compose.services).sort(), ["gw-a", "gw-b", "postgres", "proxy"]);
  assert.deepEqual(compose.services.proxy.ports, ["10080:80"], "one address");
});

test("both gateways: the PostgreSQL spool from a secret, after the database is healthy, /ready checked", () => {
  for (const name of ["gw-a", "gw-b"]) {
    const gw = compose.services[name];
    assert.equal(gw.environment.SPOOL_URL_FILE, "/run/secrets/spool-url", name);
    assert.equal(gw.environment.SPOOL_URL, undefined, `${name}: no password in the file`);
    assert.deepEqual(gw.secrets, ["spool-url"], name);
    assert.equal(gw.depends_on.postgres.condition, "service_healthy", name);
    assert.match(gw.healthcheck.test.join(" "), /127\.0\.0\.1:10080\/ready/, name);
    assert.deepEqual(gw.volumes, [".:/config:ro"], `${name}: .env and .pyenv as the single one`);
  }
  assert.deepEqual(compose.secrets["spool-url"], { file: "./secrets/spool-url" });
});

test("PostgreSQL: its password from a secret, a pg_isready health check, its data in a volume", () => {
  const pg = compose.services.postgres;
  assert.match(pg.image, /^postgres:15/);
  assert.equal(pg.environment.POSTGRES_PASSWORD_FILE, "/run/secrets/postgres-password");
  assert.match(pg.healthcheck.test.join(" "), /pg_isready/);
  assert.ok("pg-data" in compose.volumes);
});

test("nginx sends to either gateway", () => {
  const conf: string = compose.configs.nginx.content;
  assert.match(conf, /server gw-a:10080/);
  assert.match(conf, /server gw-b:10080/);
  assert.match(conf, /proxy_pass http:\/\/gateways;/);
  assert.deepEqual(compose.services.proxy.configs, [
    { source: "nginx", target: "/etc/nginx/conf.d/default.conf" },
  ]);
});
