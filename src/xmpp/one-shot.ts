/**
 * A session driven to the end once, for the command-line tools (`send`, `watch`, the
 * demo) and the benchmark: connect, join, send and wait for each reflection, with no
 * retry. A failure is an error to show, not something to wait out: that is `serve`'s job.
 */
import type { Logger } from "pino";
import type { XmppSettings } from "../config/index.ts";
import { systemClock } from "../core/clock.ts";
import type { RoomFault, StanzaFault, StreamFault } from "../delivery/port.ts";
import { createSession, type RoomMessage } from "./session.ts";
import type { Stream } from "./stream.ts";

/** A connected session joined to its rooms. */
export interface OneShot {
  /** XEP-0478 `max-bytes` the server advertises, if it does. */
  readonly maxStanzaBytes: number | undefined;
  /** The stream, for room administration and archive queries. */
  readonly stream: Stream;
  /** Sends and resolves when the room reflects it back; rejects on a refusal or a drop. */
  send(room: string, id: string, body: string): Promise<void>;
  /** Leaves the rooms and closes the stream. */
  stop(): Promise<void>;
}

/** Connects as `nick` and joins `rooms`; rejects with the server's words on a failure. */
export async function connectOnce(opts: {
  settings: XmppSettings;
  nick: string;
  rooms: readonly string[];
  log: Logger;
  onRoomMessage?: (m: RoomMessage) => void;
  /** Longest wait for each step, in ms. */
  timeoutMs?: number;
}): Promise<OneShot> {
  const waits = new Map<string, { resolve(v?: unknown): void; reject(e: Error): void }>();
  let lost: Error | undefined;
  const wait = (key: string) =>
    new Promise<unknown>((resolve, reject) => {
      if (lost) reject(lost);
      else waits.set(key, { resolve, reject });
    });
  const settle = (key: string, err?: Error, value?: unknown) => {
    const w = waits.get(key);
    waits.delete(key);
    if (err) w?.reject(err);
    else w?.resolve(value);
  };
  const session = createSession({
    settings: opts.settings,
    nick: opts.nick,
    log: opts.log,
    clock: systemClock,
    selfPingMs: 0,
    onRoomMessage: opts.onRoomMessage,
    report: {
      up: (info) => settle("up", undefined, info),
      down(fault: StreamFault) {
        lost = new Error(fault.text);
        for (const key of [...waits.keys()]) settle(key, lost);
      },
      joined: (room) => settle(`room ${room}`),
      left: (room, fault: RoomFault) => settle(`room ${room}`, new Error(`${room}: ${fault.text}`)),
      confirmed: (_to, id) => settle(`message ${id}`),
      refused: (to, id, f: StanzaFault) =>
        settle(
          `message ${id}`,
          new Error(`${to} refused the message: ${f.condition}${f.text ? ` (${f.text})` : ""}`),
        ),
    },
  });
  const bounded = <T>(p: Promise<T>, what: string): Promise<T> => {
    const ms = opts.timeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer from the XMPP server for ${what} within ${ms} ms`)),
          ms,
        );
      }),
    ]).finally(() => clearTimeout(timer));
  };
  const up = wait("up") as Promise<{ maxStanzaBytes: number | undefined }>;
  session.connect();
  try {
    const info = await bounded(up, "the login");
    await bounded(
      Promise.all(
        opts.rooms.map((room) => {
          const joined = wait(`room ${room}`);
          session.join(room, undefined);
          return joined;
        }),
      ),
      "joining",
    );
    const stream = session.stream as Stream;
    return {
      maxStanzaBytes: info.maxStanzaBytes,
      stream,
      async send(room, id, body) {
        const confirmed = wait(`message ${id}`);
        session.send(room, id, body);
        await bounded(confirmed, "the message's reflection");
      },
      stop: () => session.close(2000),
    };
  } catch (err) {
    await session.close(500);
    throw err;
  }
}
