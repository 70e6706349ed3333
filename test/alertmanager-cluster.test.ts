// Two real Alertmanagers (Debian's prometheus-alertmanager) clustered on loopback with the
// flags docs/alertmanager.md documents, both given the same alert (as Prometheus sends to
// every instance), both with the gateway as their webhook receiver. HA Alertmanager "fails
// open" (its docs/high_availability.md): the second in line sends too unless the first's
// notification log has been gossiped to it within --cluster.peer-timeout; with 0 s both
// send. Whatever the number of copies, the room gets one message per notification, the
// resolve is a reply to the firing, and the firing gets one ✅ (issue 13). A recording
// proxy in front of the gateway counts the copies; a second real XMPP account (slixmpp,
// no code shared with the gateway) reads the room.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { httpPost } from "../src/devserver/http-post.ts";
import { type ProsodyServer, startProsody } from "../src/devserver/prosody.ts";
import { createLogger } from "../src/log.ts";
import type { Gateway } from "../src/main.ts";
import {
  type AlertmanagerCluster,
  clusterFlags,
  startAlertmanagers,
  webhookConfig,
} from "./support/alertmanager.ts";
import { assertEmbedsVerbatim, REPO_ROOT } from "./support/doc-blocks.ts";
import { FAST_TIMING, startTestGateway } from "./support/gateway.ts";
import { until } from "./support/until.ts";
import {
  bodyWithoutFallback,
  fallbackText,
  type Observer,
  observe,
  type RoomMessage,
} from "./support/witness.ts";

const GW = { user: "hagw", password: "ha-gw-pass-1" };
const WATCHER = { user: "hawatch", password: "ha-watch-pass-1" };
const ARGS_DOC = "docs/alertmanager/cluster.args";
const NICK = "alertmanager";

/** One POST an Alertmanager made, as the proxy saw it. */
interface Notification {
  readonly at: number;
  // biome-ignore lint/suspicious/noExplicitAny: Alertmanager's webhook payload (version 4), read field by field.
  readonly body: any;
  /** What the gateway answered. */
  readonly reply: { id: string; status: string; duplicate?: boolean };
}

/** How long after the first copy of a notification a second one may still come. */
const STRAGGLER_MS = 3_000;
const ARRIVAL_MS = 30_000;

let server: ProsodyServer | undefined;
let observer: Observer | undefined;
let gateway: Gateway | undefined;
let am: AlertmanagerCluster | undefined;
let proxy: Server | undefined;
let room = "";
const received: Notification[] = [];

before(async () => {
  server = await startProsody({ users: [GW, WATCHER] });
  room = `ha@${server.mucDomain}`;
  observer = await observe(server, WATCHER, [room], "ha-watch");
  gateway = await startTestGateway(
    server,
    GW,
    { KNOWN_ROOMS: `am-ha:${room}:${NICK}`, MESSAGE_FORMAT: "auto" },
    { log: createLogger("fatal"), timing: FAST_TIMING },
  );
  const target = `${gateway.url}/post/am-ha`;
  proxy = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const forwarded = await httpPost(target, text, { "content-type": "application/json" });
      received.push({ at: Date.now(), body: JSON.parse(text), reply: JSON.parse(forwarded.body) });
      res.writeHead(forwarded.status, { "content-type": "application/json" }).end(forwarded.body);
    });
  });
  await new Promise<void>((resolve) => proxy?.listen(0, "127.0.0.1", resolve));
  const { port } = proxy.address() as AddressInfo;
  am = await startAlertmanagers({
    config: webhookConfig(`http://127.0.0.1:${port}/post`),
    instances: 2,
    // No wait for the first's notification to be gossiped: both send (from 100 ms on,
    // only the first does on loopback), so the gateway sees each notification twice.
    peerTimeout: "0s",
  });
});

after(async () => {
  await am?.stop();
  await new Promise((resolve) => proxy?.close(resolve));
  await gateway?.stop();
  await observer?.stop();
  await server?.stop();
});

test("docs/alertmanager.md's cluster flags are the ones the test pair runs with", () => {
  assertEmbedsVerbatim("docs/alertmanager.md", [ARGS_DOC]);
  const args = /^ARGS="([^"]*)"$/m.exec(readFileSync(join(REPO_ROOT, ARGS_DOC), "utf8"))?.[1];
  const documented = (args ?? "").split(/\s+/).map((flag) => flag.split("=")[0]);
  assert.deepEqual(documented, ["--cluster.listen-address", "--cluster.peer"]);
  const used = clusterFlags("127.0.0.1:1", ["127.0.0.1:2"], "0s").map((f) => f.split("=")[0]);
  for (const flag of documented) assert.ok(used.includes(flag), flag);
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

test("fired and resolved through both: one message, one reply to it, one ✅ on it", {
  timeout: 90_000,
}, async (t) => {
  assert.ok(am && observer);
  await am.untilPeered();
  const alert = {
    labels: { alertname: "ClusterTest", severity: "warning", instance: "db-1:9100" },
    annotations: { summary: "Replication lag is 42 s" },
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
    t.diagnostic(
      `${status}: ${copies.length} POST(s) from [${from.join(", ")}], ${spread} ms apart`,
    );
    return copies;
  };
  const fromGateway = (): RoomMessage[] =>
    (observer?.messages ?? []).filter((m) => m.nick === NICK);

  await am.postAlerts([{ ...alert, startsAt }]);
  const firingCopies = await copiesOf("firing");
  await am.postAlerts([{ ...alert, startsAt, endsAt: new Date().toISOString() }]);
  const resolvedCopies = await copiesOf("resolved");
  await observer.waitFor((m) => m.nick === NICK && m.reactions !== undefined, ARRIVAL_MS);

  for (const copies of [firingCopies, resolvedCopies]) {
    // Each instance sent the notification once (repeat_interval is 1 h); both did.
    const senders = copies.map((c) => c.body.externalURL);
    assert.equal(new Set(senders).size, senders.length, `one copy per instance: ${senders}`);
    assert.equal(copies.length, 2, "with peer-timeout 0 s both instances notify");
    // The gateway answered every copy with the first one's id; the later as a duplicate.
    assert.deepEqual(new Set(copies.map((c) => c.reply.id)).size, 1, JSON.stringify(copies));
    assert.equal(copies.filter((c) => c.reply.duplicate).length, copies.length - 1);
  }
  await new Promise((r) => setTimeout(r, 500)); // anything sent twice would be here by now
  const said = fromGateway();
  const firing = said.filter((m) => m.body.startsWith("🔥 FIRING"));
  const resolved = said.filter((m) => bodyWithoutFallback(m).startsWith("✅ RESOLVED"));
  const reactions = said.filter((m) => m.reactions !== undefined);
  assert.deepEqual(
    [firing.length, resolved.length, reactions.length, said.length],
    [1, 1, 1, 3],
    said.map((m) => m.body || JSON.stringify(m.reactions)).join("\n---\n"),
  );
  const [f, r, x] = [firing[0], resolved[0], reactions[0]];
  assert.ok(f?.stanzaId, "the room gave the firing message a stanza-id");
  assert.equal(r?.reply?.id, f.stanzaId, "the resolve replies to the firing message");
  assert.equal(r?.reply?.to, `${room}/${NICK}`);
  assert.equal(fallbackText(r), "> 🔥 FIRING (1) · ClusterTest\n", "the fallback covers the quote");
  assert.ok(f.thread && r.thread === f.thread && x?.thread === f.thread, "one thread");
  assert.deepEqual(x?.reactions, { id: f.stanzaId, emojis: ["✅"] });
});
