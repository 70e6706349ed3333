/**
 * The benchmark's XMPP clients: the observer (a worker thread, so that arrival times are
 * taken on an event loop the load generator does not block) and the plain client that
 * gives the library's figure (bench/minimal.ts is the one that measures the server's own
 * ceiling). Both use the gateway's own session code (xmpp.js).
 */
import { Worker } from "node:worker_threads";
import type { XmppSettings } from "../src/config/index.ts";
import type { ProsodyServer } from "../src/devserver/prosody.ts";
import { createLogger } from "../src/log.ts";
import { connectOnce, type OneShot } from "../src/xmpp/one-shot.ts";
import { configureTrust } from "../src/xmpp/trust.ts";
import { nowMs, sleep } from "./proc.ts";

/** Highest sequence number a run may use. */
export const MAX_SEQ = 1_000_000;

/** The body of message `seq`: about 150 bytes, like a short alert; the observer parses the seq. */
export function messageBody(seq: number): string {
  return (
    `b${seq} [FIRING:1] DiskAlmostFull db-01.example.org /var 93.2% used (threshold 90%) ` +
    "runbook https://runbooks.example.org/disk-full severity=warning"
  );
}

/** Client settings for `user` on the throwaway server. */
export function settingsFor(server: ProsodyServer, user: string, password: string): XmppSettings {
  return {
    jid: `${user}@${server.domain}`,
    password,
    domain: server.domain,
    host: server.host,
    port: server.c2sPort,
    tls: "starttls",
    caFile: server.caFile,
    logLevel: "fatal",
  };
}

/** What the observer has seen, shared with the worker (no message passing per arrival). */
export interface Arrivals {
  /** Arrival time (nowMs) of the first copy of each seq; 0 = not arrived. */
  readonly at: Float64Array;
  /** Copies after the first, per seq. */
  readonly dups: Int32Array;
  /** [0] distinct seqs arrived, [1] duplicate copies, [2] room messages not from the bench. */
  readonly counters: Int32Array;
  /** Resolves true once every seq in [from, from + n) has arrived, false after `timeoutMs`. */
  waitRange(from: number, n: number, timeoutMs: number): Promise<boolean>;
  stop(): Promise<void>;
}

/** Starts the observer worker, joined to every one of `rooms` before it resolves. */
export async function startObserver(
  settings: XmppSettings,
  rooms: readonly string[],
): Promise<Arrivals> {
  const at = new Float64Array(new SharedArrayBuffer(MAX_SEQ * 8));
  const dups = new Int32Array(new SharedArrayBuffer(MAX_SEQ * 4));
  const counters = new Int32Array(new SharedArrayBuffer(16));
  const worker = new Worker(new URL("./observer-worker.ts", import.meta.url), {
    workerData: { settings, rooms, at, dups, counters },
  });
  await new Promise<void>((resolve, reject) => {
    worker.once("message", (m: { joined?: boolean; error?: string }) =>
      m.joined ? resolve() : reject(new Error(`observer: ${m.error}`)),
    );
    worker.once("error", reject);
  });
  return {
    at,
    dups,
    counters,
    async waitRange(from, n, timeoutMs) {
      const deadline = nowMs() + timeoutMs;
      const end = from + n;
      let i = from; // arrivals come roughly in order: the first gap is the place to look
      for (;;) {
        while (i < end && at[i] !== 0) i++;
        if (i === end) return true;
        if (nowMs() > deadline) return false;
        await sleep(5);
      }
    },
    async stop() {
      worker.postMessage("stop");
      const done = new Promise<void>((r) => worker.once("exit", () => r()));
      await Promise.race([done, sleep(3000)]);
      await worker.terminate();
    },
  };
}

/** The library client in `room` (xmpp.js, as the gateway), joined before it resolves. */
export async function joinedClient(
  settings: XmppSettings,
  room: string,
  nick: string,
): Promise<OneShot> {
  configureTrust(settings.caFile);
  return connectOnce({ settings, nick, rooms: [room], log: createLogger("fatal") });
}
