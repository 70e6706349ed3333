import assert from "node:assert/strict";
import { test } from "node:test";
import type { Readiness } from "./delivery/readiness.ts";
import { createMetrics, PREFIX } from "./metrics.ts";
import type { SpooledMessage } from "./spool/types.ts";

const message = (route: string): SpooledMessage => ({
  postId: "p",
  id: "p",
  route,
  room: "ops@conference.example.org",
  nick: "bot",
  body: "hello",
  seq: 1,
  createdAt: 0,
  attempts: 0,
  lastError: undefined,
});

/** The value of one sample line, e.g. `name{a="b"}`; undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function setup(readiness?: Readiness) {
  let stats = { messages: 3, bytes: 120, deadLetters: 1 };
  const metrics = createMetrics({
    stats: () => stats,
    readiness: () => readiness ?? { ready: true, sessions: [] },
    routes: ["grafana", "ci"],
  });
  return {
    metrics,
    setStats: (s: typeof stats) => {
      stats = s;
    },
    text: async () => (await metrics.scrape()).body,
  };
}

test("counters by route name, zero from the start for every configured route", async () => {
  const { metrics, text } = setup();
  let t = await text();
  for (const name of ["accepted", "delivered", "failed", "retries"]) {
    assert.equal(sample(t, `${PREFIX}messages_${name}_total{route="ci"}`), 0, name);
  }
  metrics.accepted("grafana", 3);
  metrics.observer.delivered?.(message("grafana"), 20);
  metrics.observer.delivered?.(message("grafana"), 40);
  metrics.observer.failed?.(message("grafana"), "banned");
  metrics.observer.retried?.(message("ci"), "not joined");
  t = await text();
  assert.equal(sample(t, `${PREFIX}messages_accepted_total{route="grafana"}`), 3);
  assert.equal(sample(t, `${PREFIX}messages_delivered_total{route="grafana"}`), 2);
  assert.equal(sample(t, `${PREFIX}messages_failed_total{route="grafana"}`), 1);
  assert.equal(sample(t, `${PREFIX}messages_retries_total{route="ci"}`), 1);
  assert.equal(sample(t, `${PREFIX}messages_retries_total{route="grafana"}`), 0);
});

test("delivery latency: a histogram in seconds with buckets from 5 ms to 5 min", async () => {
  const { metrics, text } = setup();
  metrics.observer.delivered?.(message("ci"), 20); // 0.02 s
  metrics.observer.delivered?.(message("ci"), 90_000); // 90 s
  const t = await text();
  const h = `${PREFIX}delivery_latency_seconds`;
  assert.equal(sample(t, `${h}_count{route="ci"}`), 2);
  assert.ok(Math.abs((sample(t, `${h}_sum{route="ci"}`) ?? 0) - 90.02) < 1e-9);
  assert.equal(sample(t, `${h}_bucket{le="0.005",route="ci"}`), 0);
  assert.equal(sample(t, `${h}_bucket{le="0.025",route="ci"}`), 1);
  assert.equal(sample(t, `${h}_bucket{le="60",route="ci"}`), 1);
  assert.equal(sample(t, `${h}_bucket{le="120",route="ci"}`), 2);
  assert.equal(sample(t, `${h}_bucket{le="300",route="ci"}`), 2);
  assert.equal(sample(t, `${h}_count{route="grafana"}`), 0, "configured routes start at 0");
});

test("queue gauges are read from the spool at each scrape", async () => {
  const { setStats, text } = setup();
  let t = await text();
  assert.equal(sample(t, `${PREFIX}queue_depth`), 3);
  assert.equal(sample(t, `${PREFIX}queue_bytes`), 120);
  assert.equal(sample(t, `${PREFIX}dead_letters`), 1);
  setStats({ messages: 0, bytes: 0, deadLetters: 2 });
  t = await text();
  assert.equal(sample(t, `${PREFIX}queue_depth`), 0);
  assert.equal(sample(t, `${PREFIX}dead_letters`), 2);
});

test("spool commits: transactions, the writes they carried and their time", async () => {
  const { metrics, text } = setup();
  metrics.committed({ operations: 5, ms: 2 });
  metrics.committed({ operations: 1, ms: 0.5 });
  const t = await text();
  assert.equal(sample(t, `${PREFIX}spool_commits_total`), 2);
  assert.equal(sample(t, `${PREFIX}spool_commit_writes_total`), 6);
  assert.ok(Math.abs((sample(t, `${PREFIX}spool_commit_seconds_total`) ?? 0) - 0.0025) < 1e-9);
});

test("session and room state at scrape time; reconnects and posts counted", async () => {
  const { metrics, text } = setup({
    ready: false,
    sessions: [
      {
        nick: "bot",
        online: true,
        lastError: null,
        rooms: [
          { room: "ops@conference.example.org", state: "joined", lastError: null },
          { room: "dev@conference.example.org", state: "retrying", lastError: "banned" },
        ],
      },
      { nick: "other", online: false, lastError: "refused", rooms: [] },
    ],
  });
  metrics.reconnected("bot");
  metrics.reconnected("bot");
  metrics.request("ci", 200);
  metrics.request("", 404);
  metrics.request("", 404);
  const t = await text();
  assert.equal(sample(t, `${PREFIX}xmpp_session_up{nick="bot"}`), 1);
  assert.equal(sample(t, `${PREFIX}xmpp_session_up{nick="other"}`), 0);
  assert.equal(sample(t, `${PREFIX}room_joined{room="ops@conference.example.org",nick="bot"}`), 1);
  assert.equal(sample(t, `${PREFIX}room_joined{room="dev@conference.example.org",nick="bot"}`), 0);
  assert.equal(sample(t, `${PREFIX}xmpp_reconnects_total{nick="bot"}`), 2);
  assert.equal(sample(t, `${PREFIX}http_requests_total{route="ci",status="200"}`), 1);
  assert.equal(sample(t, `${PREFIX}http_requests_total{route="",status="404"}`), 2);
});

test("each gateway has its own registry, with the default process metrics", async () => {
  const a = setup();
  const b = setup();
  a.metrics.accepted("ci", 5);
  const [ta, tb] = [await a.text(), await b.text()];
  assert.equal(sample(ta, `${PREFIX}messages_accepted_total{route="ci"}`), 5);
  assert.equal(sample(tb, `${PREFIX}messages_accepted_total{route="ci"}`), 0);
  assert.match(ta, /^process_cpu_user_seconds_total /m);
  assert.match(ta, /^nodejs_heap_size_used_bytes /m);
  const { contentType } = await a.metrics.scrape();
  assert.match(contentType, /^text\/plain; version=0\.0\.4/);
});
