// Two real Alertmanagers (Debian's prometheus-alertmanager) clustered on loopback, both
// given the same alert, as Prometheus sends to every instance: what reaches one webhook.
// HA Alertmanager "fails open" (its docs/high_availability.md): the second in line sends too
// unless the first's notification log has been gossiped to it within --cluster.peer-timeout,
// so one or two POSTs per notification are both correct; their content must be identical,
// which is what lets the gateway de-duplicate them (issue 13). No gateway here: the webhook
// is a bare node:http server that records every POST.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import {
  type AlertmanagerCluster,
  startAlertmanagers,
  webhookConfig,
} from "./support/alertmanager.ts";
import { until } from "./support/until.ts";

/** One POST the webhook received. */
interface Notification {
  readonly at: number;
  // biome-ignore lint/suspicious/noExplicitAny: Alertmanager's webhook payload (version 4), read field by field.
  readonly body: any;
}

/** How long after the first copy of a notification a second one may still come: peer-timeout plus slack. */
const STRAGGLER_MS = 3_000;
const ARRIVAL_MS = 30_000;

let am: AlertmanagerCluster | undefined;
let webhook: Server | undefined;
const received: Notification[] = [];

before(async () => {
  webhook = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = { unparsed: text }; // then fails the checks, with the text to read
      }
      received.push({ at: Date.now(), body });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => webhook?.listen(0, "127.0.0.1", resolve));
  const { port } = webhook.address() as AddressInfo;
  am = await startAlertmanagers({
    config: webhookConfig(`http://127.0.0.1:${port}/post`),
    instances: 2,
    // No wait for the first's notification to be gossiped: on loopback both then nearly
    // always send (from 100 ms on, only the first does), so the copies can be compared.
    peerTimeout: "0s",
  });
});

after(async () => {
  await am?.stop();
  await new Promise((resolve) => webhook?.close(resolve));
});

test("two clustered Alertmanagers see each other as peers", async () => {
  assert.ok(am);
  await am.untilPeered();
  const statuses = await Promise.all(am.instances.map((i) => i.status()));
  const names = statuses.map((s) => s.cluster.name);
  for (const [n, status] of statuses.entries()) {
    assert.equal(status.cluster.status, "ready", `${am.instances[n]?.name} has settled`);
    assert.deepEqual(status.cluster.peers?.map((p) => p.name).sort(), [...names].sort());
    const addresses = status.cluster.peers?.map((p) => p.address).sort();
    assert.deepEqual(addresses, am.instances.map((i) => i.clusterAddress).sort());
  }
});

test("an alert fired and resolved through both: identical notifications from either", {
  timeout: 90_000,
}, async () => {
  assert.ok(am);
  await am.untilPeered();
  const alert = {
    labels: { alertname: "ClusterTest", severity: "warning", instance: "db-1:9100" },
    annotations: { summary: "Replication lag is 42 s" },
    generatorURL: "http://prometheus.example/graph?g0.expr=lag",
  };
  const startsAt = new Date(Date.now() - 1000).toISOString();
  const instances = new Map(am.instances.map((i) => [i.url, i.name]));
  const copiesOf = async (status: string): Promise<Notification[]> => {
    const mine = (): Notification[] => received.filter((n) => n.body.status === status);
    await am?.explain(until(`a ${status} notification`, () => mine().length > 0, ARRIVAL_MS));
    await new Promise((r) => setTimeout(r, STRAGGLER_MS));
    const copies = mine();
    const from = copies.map((c) => instances.get(c.body.externalURL) ?? c.body.externalURL);
    const spread = (copies.at(-1)?.at ?? 0) - (copies[0]?.at ?? 0);
    console.log(
      `${status}: ${copies.length} POST(s), from [${from.join(", ")}], ${spread} ms apart`,
    );
    return copies;
  };

  await am.postAlerts([{ ...alert, startsAt }]);
  const firing = await copiesOf("firing");
  await am.postAlerts([{ ...alert, startsAt, endsAt: new Date().toISOString() }]);
  const resolved = await copiesOf("resolved");

  for (const copies of [firing, resolved]) {
    assert.ok(copies.length >= 1 && copies.length <= 2, `${copies.length} copies`);
    for (const c of copies) assert.ok(instances.has(c.body.externalURL), c.body.externalURL);
    // Each instance sends a notification at most once (repeat_interval is 1 h).
    const senders = copies.map((c) => c.body.externalURL);
    assert.equal(new Set(senders).size, senders.length, `one copy per instance: ${senders}`);
    // What the gateway's content key is made of is the same in every copy.
    const key = (c: Notification) => ({
      receiver: c.body.receiver,
      groupKey: c.body.groupKey,
      status: c.body.status,
      alerts: c.body.alerts.map((a: Record<string, unknown>) => ({
        fingerprint: a.fingerprint,
        status: a.status,
        startsAt: a.startsAt,
        endsAt: a.endsAt,
      })),
    });
    for (const c of copies.slice(1)) assert.deepEqual(key(c), key(copies[0] as Notification));
  }
  const [f, r] = [firing[0]?.body, resolved[0]?.body];
  assert.equal(f.alerts.length, 1);
  assert.equal(f.groupKey, r.groupKey, "the same group fires and resolves");
  assert.equal(f.alerts[0].fingerprint, r.alerts[0].fingerprint);
  assert.equal(f.alerts[0].startsAt, r.alerts[0].startsAt);
  assert.equal(Date.parse(f.alerts[0].startsAt), Date.parse(startsAt), "the startsAt posted");
  assert.equal(r.alerts[0].status, "resolved");
});
