// `GET /metrics` of a real gateway against a real Prosody: what an operator's Prometheus
// scrapes after real deliveries and a real reconnect, labelled by route name only.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { httpPost } from "../src/devserver/http-post.ts";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { createLogger } from "../src/log.ts";
import type { Gateway } from "../src/main.ts";
import { PREFIX } from "../src/metrics.ts";
import { FAST_TIMING, startTestGateway } from "./support/gateway.ts";
import { until } from "./support/until.ts";
import { type Observer, observe } from "./support/witness.ts";

const GW = { user: "metricsgw", password: "metrics-gw-pass-1" };
const WATCHER = { user: "metricswatch", password: "metrics-watch-1" };
const TOKEN = "metrics-token-5f1c2a9e7d";
const NICK = "metrics-bot";
let server: ProsodyServer;
let room: string;
let observer: Observer;
let gateway: Gateway;

before(async () => {
  server = await startProsody({ users: [GW, WATCHER] });
  room = `metrics@${server.mucDomain}`;
  observer = await observe(server, WATCHER, [room]);
  gateway = await startTestGateway(
    server,
    GW,
    {
      KNOWN_ROOMS: `${TOKEN}:${room}:${NICK}`,
      DATA_DIR: mkdtempSync(join(tmpdir(), "gw-metrics-")),
      XMPP_LOG_LEVEL: "fatal", // the restart test logs expected connection errors
    },
    { log: createLogger("fatal"), timing: FAST_TIMING },
  );
});

after(async () => {
  await gateway?.stop();
  await observer?.stop();
  await server?.stop();
});

async function scrape(): Promise<{ contentType: string; text: string }> {
  const res = await fetch(`${gateway.url}/metrics`, { signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200);
  return { contentType: res.headers.get("content-type") ?? "", text: await res.text() };
}

/** The value of one series, e.g. `name{a="b"}`; undefined when the scrape lacks it. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test("two deliveries: counters and latency by route name, queue empty, session and room up, no token", async () => {
  const route = `${room}/${NICK}`; // the name KNOWN_ROOMS gives a route
  for (const text of ["metrics one", "metrics two"]) {
    const res = await httpPost(`${gateway.url}/post/${TOKEN}`, text, {
      "content-type": "text/plain",
    });
    assert.equal(res.status, 200, res.body);
    await observer.waitFor((m) => m.body === text);
  }
  const unknown = await httpPost(`${gateway.url}/post/not-${TOKEN}`, "x");
  assert.equal(unknown.status, 404);

  // Delivered messages leave the spool with its next commit (at most ~20 ms later).
  await until(
    "the queue to drain",
    async () => sample((await scrape()).text, `${PREFIX}queue_depth`) === 0,
  );
  const { contentType, text } = await scrape();
  assert.match(contentType, /^text\/plain; version=0\.0\.4/);
  const r = `{route="${route}"}`;
  assert.equal(sample(text, `${PREFIX}messages_accepted_total${r}`), 2, text);
  assert.equal(sample(text, `${PREFIX}messages_delivered_total${r}`), 2);
  assert.equal(sample(text, `${PREFIX}messages_failed_total${r}`), 0);
  assert.equal(sample(text, `${PREFIX}delivery_latency_seconds_count${r}`), 2);
  assert.equal(sample(text, `${PREFIX}queue_depth`), 0);
  assert.equal(sample(text, `${PREFIX}dead_letters`), 0);
  assert.equal(sample(text, `${PREFIX}xmpp_session_up{nick="${NICK}"}`), 1);
  assert.equal(sample(text, `${PREFIX}room_joined{room="${room}",nick="${NICK}"}`), 1);
  assert.equal(sample(text, `${PREFIX}http_requests_total{route="${route}",status="200"}`), 2);
  assert.equal(sample(text, `${PREFIX}http_requests_total{route="",status="404"}`), 1);
  assert.match(text, /^process_resident_memory_bytes /m, "default process metrics");
  assert.equal(text.includes(TOKEN), false, "the token must appear nowhere in /metrics");
});

test("a restarted XMPP server: the session goes down, comes back, and the reconnect is counted", async () => {
  const up = `${PREFIX}xmpp_session_up{nick="${NICK}"}`;
  const reconnects = `${PREFIX}xmpp_reconnects_total{nick="${NICK}"}`;
  assert.equal(sample((await scrape()).text, reconnects), undefined, "no reconnect yet");
  await server.down();
  await until(
    "the session to be reported down",
    async () => sample((await scrape()).text, up) === 0,
  );
  await server.start();
  await until("the session and room to be back", async () => {
    const { text } = await scrape();
    return (
      sample(text, up) === 1 &&
      sample(text, `${PREFIX}room_joined{room="${room}",nick="${NICK}"}`) === 1
    );
  });
  assert.equal(sample((await scrape()).text, reconnects), 1);
});
