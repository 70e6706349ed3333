/**
 * Throwaway Prometheus Alertmanagers (Debian's prometheus-alertmanager) for the tests: one,
 * or two gossiping as an HA cluster on loopback. Each has its own storage, log and ports,
 * and is stopped by PID (SIGTERM, then SIGKILL) on stop() and when the test process exits.
 * Alerts go in through the v2 API, to every instance, as Prometheus sends them.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { run } from "../../src/devserver/certs.ts";
import { httpPost, type PostReply } from "../../src/devserver/http-post.ts";
import {
  freePort,
  PortInUseError,
  requireExecutable,
  retryWhilePortInUse,
  type ServerProcess,
  spawnServer,
} from "../../src/devserver/process.ts";
import { until } from "./until.ts";

const INSTALL =
  "Prometheus Alertmanager is not installed: run `sudo apt-get install -y prometheus-alertmanager` " +
  "(Debian/Ubuntu); the Alertmanager tests run real ones.";
const START_MS = 15_000;
const PEERED_MS = 30_000;

/** Debian's `prometheus-alertmanager` (or an `alertmanager`) and `amtool`; throws the install line without them. */
export function alertmanagerBinaries(): { alertmanager: string; amtool: string } {
  return {
    alertmanager: requireExecutable(["prometheus-alertmanager", "alertmanager"], INSTALL),
    amtool: requireExecutable("amtool", INSTALL),
  };
}

/** One alert as `POST /api/v2/alerts` takes it (Alertmanager's postableAlert). */
export interface PostableAlert {
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  /** RFC 3339; Alertmanager uses the time of receipt when absent. */
  readonly startsAt?: string;
  /** RFC 3339; in the past: resolved. */
  readonly endsAt?: string;
  readonly generatorURL?: string;
}

/** How to start {@link startAlertmanagers}. */
export interface AlertmanagerOptions {
  /** The alertmanager.yml every instance uses: YAML text, or an object written as YAML. */
  readonly config: string | object;
  /** 1: clustering off (no gossip port). 2: an HA pair, each the other's --cluster.peer. Default 1. */
  readonly instances?: 1 | 2;
  /**
   * --cluster.peer-timeout: how long the second in line waits for the first's notification
   * to be gossiped before sending its own ("fail open"). Default "1s"; "0s" makes both send.
   */
  readonly peerTimeout?: string;
}

/** The part of `GET /api/v2/status` the tests read. */
export interface AlertmanagerStatus {
  readonly cluster: {
    /** This instance's peer name. */
    readonly name?: string;
    /** "ready" (gossip settled), "settling" or "disabled". */
    readonly status: string;
    /** Every member this instance knows of, itself included. */
    readonly peers?: ReadonlyArray<{ readonly name: string; readonly address: string }>;
  };
}

/** One running Alertmanager. */
export interface AlertmanagerInstance {
  /** "am0", "am1": which instance, in start order. */
  readonly name: string;
  /** Its API's base URL; also its --web.external-url, so notifications from it carry it as `externalURL`. */
  readonly url: string;
  /** The PID stop() signals. */
  readonly pid: number;
  /** Its gossip address (127.0.0.1:port), undefined with clustering off. */
  readonly clusterAddress: string | undefined;
  /** `GET /api/v2/status`. */
  status(): Promise<AlertmanagerStatus>;
  /** POSTs `body` as JSON to `path` (e.g. /api/v2/alerts). */
  post(path: string, body: unknown): Promise<PostReply>;
  /** The last `lines` lines of its log (debug level). */
  logTail(lines?: number): string;
  /** SIGTERM, then SIGKILL after a bounded wait; safe to call twice. */
  stop(): Promise<void>;
}

/** Started Alertmanagers (one, or an HA pair). */
export interface AlertmanagerCluster {
  readonly instances: readonly AlertmanagerInstance[];
  /** Resolves once every instance lists every instance as a peer and its gossip has settled (status "ready"); no-op for one. */
  untilPeered(ms?: number): Promise<void>;
  /** POSTs `alerts` to every instance (v2 API) at once, as Prometheus does; throws unless each answers 200. */
  postAlerts(alerts: readonly PostableAlert[]): Promise<void>;
  /** `waiting`, or its error with every instance's log tail appended. */
  explain<T>(waiting: Promise<T>): Promise<T>;
  /** Stops every instance by PID and removes their storage and logs. */
  stop(): Promise<void>;
}

/** Settings of {@link webhookConfig}. */
export interface WebhookConfigOptions {
  /** Default "1s": the first notification of a group comes that long after its first alert. */
  readonly groupWait?: string;
  /** Default "1s": a changed group (e.g. resolved) is notified that long after the last notification. */
  readonly groupInterval?: string;
  /** Default "1h": longer than a test, so that an unchanged group is never notified twice. */
  readonly repeatInterval?: string;
  /** Default true. */
  readonly sendResolved?: boolean;
  /** Default ["alertname"]. */
  readonly groupBy?: readonly string[];
}

/** An alertmanager.yml sending every alert to one webhook at `url`, with test-short timings. */
export function webhookConfig(url: string, opts: WebhookConfigOptions = {}): object {
  return {
    route: {
      receiver: "webhook",
      group_by: opts.groupBy ?? ["alertname"],
      group_wait: opts.groupWait ?? "1s",
      group_interval: opts.groupInterval ?? "1s",
      repeat_interval: opts.repeatInterval ?? "1h",
    },
    receivers: [
      { name: "webhook", webhook_configs: [{ url, send_resolved: opts.sendResolved ?? true }] },
    ],
  };
}

/**
 * Starts `instances` Alertmanagers on loopback with `config` (checked by `amtool
 * check-config` first), each ready to take alerts; an HA pair still has to peer (untilPeered).
 */
export async function startAlertmanagers(opts: AlertmanagerOptions): Promise<AlertmanagerCluster> {
  const { alertmanager, amtool } = alertmanagerBinaries();
  const count = opts.instances ?? 1;
  const dir = mkdtempSync(join(tmpdir(), "gw-alertmanagers-"));
  const configFile = join(dir, "alertmanager.yml");
  try {
    writeFileSync(
      configFile,
      typeof opts.config === "string" ? opts.config : stringify(opts.config),
    );
    await run(amtool, ["check-config", configFile]);
    const peerTimeout = opts.peerTimeout ?? "1s";
    const started = await retryWhilePortInUse(() =>
      startAll(alertmanager, dir, configFile, count, peerTimeout),
    );
    return cluster(started, dir);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * The flags of one member of a cluster listening for gossip on `own`: the documented ones
 * (docs/alertmanager/cluster.args: listen address and peers) and test-short timings.
 */
export function clusterFlags(own: string, peers: readonly string[], peerTimeout: string): string[] {
  return [
    `--cluster.listen-address=${own}`,
    ...peers.map((a) => `--cluster.peer=${a}`),
    `--cluster.peer-timeout=${peerTimeout}`,
    // Defaults are for WANs: 200 ms gossip, 1 min state sync and settling, 10 s
    // reconnect (am0 starts before am1 is there to join, and retries at this pace).
    "--cluster.gossip-interval=50ms",
    "--cluster.pushpull-interval=1s",
    "--cluster.reconnect-interval=1s",
    "--cluster.settle-timeout=10s",
  ];
}

/** An instance and its process. */
interface Started {
  readonly instance: AlertmanagerInstance;
  readonly proc: ServerProcess;
}

/** Starts all `count` on fresh ports (peers must know each other's); on any failure stops those started. */
async function startAll(
  bin: string,
  root: string,
  configFile: string,
  count: number,
  peerTimeout: string,
): Promise<Started[]> {
  const ports = new Set<number>(); // a web port, and a gossip port when clustered, each
  while (ports.size < (count > 1 ? 2 * count : 1)) ports.add(await freePort());
  const [web, gossip] = [[...ports].slice(0, count), [...ports].slice(count)];
  const peers = gossip.map((port) => `127.0.0.1:${port}`);
  const started: Started[] = [];
  try {
    for (const [i, port] of web.entries()) {
      const own = peers[i];
      const clusterArgs =
        own === undefined
          ? ["--cluster.listen-address="] // no gossip port, no peers to wait for
          : clusterFlags(
              own,
              peers.filter((a) => a !== own),
              peerTimeout,
            );
      const where = { root, name: `am${i}`, port, gossip: own };
      started.push(await startOne(bin, configFile, where, clusterArgs));
    }
  } catch (err) {
    await Promise.all(started.map((s) => s.proc.stop()));
    throw err;
  }
  return started;
}

/** Where one instance lives: its dir (root/name), web port and gossip address. */
interface Placement {
  readonly root: string;
  readonly name: string;
  readonly port: number;
  readonly gossip: string | undefined;
}

async function startOne(
  bin: string,
  configFile: string,
  { root, name, port, gossip }: Placement,
  clusterArgs: readonly string[],
): Promise<Started> {
  const dir = join(root, name);
  rmSync(dir, { recursive: true, force: true }); // a failed attempt's log and data
  mkdirSync(dir);
  const logFile = join(dir, "alertmanager.log");
  const url = `http://127.0.0.1:${port}`;
  const logTail = (lines = 30): string => {
    try {
      return readFileSync(logFile, "utf8").trim().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  };
  const proc = await spawnServer(
    bin,
    [
      `--config.file=${configFile}`,
      `--storage.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      `--web.external-url=${url}`,
      ...clusterArgs,
      "--log.level=debug",
    ],
    { cwd: dir, stdout: logFile, env: withoutProxies(process.env), removeOnExit: root },
  );
  const ready = async () =>
    (await httpGet(`${url}/-/ready`).catch(() => undefined))?.status === 200;
  if (!(await proc.waitUntil(ready, START_MS, 50))) {
    const died = proc.hasExited(); // read before stop() kills it
    await proc.stop();
    const busy = /address already in use/i.test(logTail());
    throw new (busy ? PortInUseError : Error)(
      `Alertmanager ${name} ${died ? "exited during start-up" : `did not get ready within ${START_MS} ms`}; log tail:\n${logTail()}`,
    );
  }
  const instance: AlertmanagerInstance = {
    name,
    url,
    pid: proc.serverPid,
    clusterAddress: gossip,
    async status() {
      const reply = await httpGet(`${url}/api/v2/status`);
      if (reply.status !== 200) throw new Error(`${name}: /api/v2/status: ${reply.status}`);
      return JSON.parse(reply.body) as AlertmanagerStatus;
    },
    post: (path, body) =>
      httpPost(`${url}${path}`, JSON.stringify(body), { "content-type": "application/json" }),
    logTail,
    stop: () => proc.stop(),
  };
  return { instance, proc };
}

function cluster(started: readonly Started[], dir: string): AlertmanagerCluster {
  const instances = started.map((s) => s.instance);
  let stopping: Promise<void> | undefined;
  const explain = <T>(waiting: Promise<T>): Promise<T> =>
    waiting.catch((err: Error) => {
      const logs = instances.map((i) => `--- ${i.name} alertmanager.log (tail)\n${i.logTail()}`);
      throw new Error(`${err.message}\n${logs.join("\n")}`);
    });
  return {
    instances,
    async untilPeered(ms = PEERED_MS) {
      if (instances.length < 2) return;
      let last = "";
      const peered = async (): Promise<boolean> => {
        const statuses = await Promise.all(instances.map((i) => i.status().catch(() => undefined)));
        last = JSON.stringify(statuses.map((s) => s?.cluster));
        const names = statuses.map((s) => s?.cluster.name);
        return statuses.every(
          (s) =>
            s?.cluster.status === "ready" &&
            names.every((n) => n !== undefined && s.cluster.peers?.some((p) => p.name === n)),
        );
      };
      await explain(
        until("the Alertmanagers to peer", peered, ms).catch((err: Error) => {
          throw new Error(`${err.message}; last cluster status: ${last}`);
        }),
      );
    },
    async postAlerts(alerts) {
      const replies = await Promise.all(instances.map((i) => i.post("/api/v2/alerts", alerts)));
      replies.forEach((reply, n) => {
        if (reply.status !== 200)
          throw new Error(
            `${instances[n]?.name}: POST /api/v2/alerts: ${reply.status} ${reply.body}`,
          );
      });
    },
    explain,
    stop() {
      stopping ??= Promise.all(started.map((s) => s.proc.stop())).then(() =>
        rmSync(dir, { recursive: true, force: true }),
      );
      return stopping;
    },
  };
}

/** Alertmanager must reach the webhook on loopback directly, whatever proxy CI sets. */
function withoutProxies(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  for (const key of Object.keys(copy)) if (/^(https?|all|no)_proxy$/i.test(key)) delete copy[key];
  return copy;
}

/** A GET: status and body text (rejects after a second without a reply). */
function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: 1000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}
