/**
 * The observer, in its own thread: joins the rooms and stamps every bench message the
 * moment it arrives (CLOCK_MONOTONIC, comparable with the main thread's request starts).
 */
import { parentPort, workerData } from "node:worker_threads";
import type { XmppSettings } from "../src/config/index.ts";
import { createLogger } from "../src/log.ts";
import { connectOnce, type OneShot } from "../src/xmpp/one-shot.ts";
import { configureTrust } from "../src/xmpp/trust.ts";

const data = workerData as {
  settings: XmppSettings;
  rooms: string[];
  at: Float64Array;
  dups: Int32Array;
  counters: Int32Array;
};
const { at, dups, counters } = data;
const SEQ = /^b(\d+) /;

configureTrust(data.settings.caFile);
let session: OneShot | undefined;
connectOnce({
  settings: data.settings,
  nick: "observer",
  rooms: data.rooms,
  log: createLogger("fatal"),
  onRoomMessage: (m) => {
    const t = Number(process.hrtime.bigint()) / 1e6;
    const match = SEQ.exec(m.body);
    const seq = match ? Number(match[1]) : -1;
    if (seq < 0 || seq >= at.length) {
      Atomics.add(counters, 2, 1);
      return;
    }
    if (at[seq] === 0) {
      at[seq] = t;
      Atomics.add(counters, 0, 1);
    } else {
      Atomics.add(dups, seq, 1);
      Atomics.add(counters, 1, 1);
    }
  },
}).then(
  (s) => {
    session = s;
    parentPort?.postMessage({ joined: true });
  },
  (err: Error) => parentPort?.postMessage({ error: err.message }),
);
parentPort?.on("message", (m) => {
  if (m === "stop") {
    (session?.stop() ?? Promise.resolve()).finally(() => process.exit(0));
  }
});
