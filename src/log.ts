/**
 * The gateway's logger: pino JSON lines, with every field that can hold a secret
 * redacted by path, whatever code logs it. On a terminal the same lines are shown
 * human-readable (pino-pretty); a container, a pipe or a file gets JSON.
 */
import { createRequire } from "node:module";
import { type Logger, pino } from "pino";
import type { LogLevel } from "./config/index.ts";

/** Request headers that carry credentials (or a signature a replay could reuse). */
const SECRET_HEADERS = [
  "authorization",
  "proxy-authorization",
  "cookie",
  "set-cookie",
  "x-grafana-alerting-signature",
];

/**
 * Paths pino censors in every line, up to two levels deep (pino redacts by path, not
 * by key). Libraries log whole header objects (@fastify/multipart logs its busboy options
 * at trace, `busboyOptions.headers`), and Node's HTTP parser errors carry `rawPacket`,
 * the bytes read so far: request line (path token included) and headers.
 */
export const REDACT_PATHS = [
  "password",
  "token",
  "*.password",
  "*.token",
  ...["", "*.", "*.*."].flatMap((depth) => [
    ...SECRET_HEADERS.map((h) => `${depth}headers["${h}"]`),
    `${depth}rawHeaders`,
    `${depth}rawPacket`,
  ]),
];

/**
 * Creates the root logger writing to `destination` (stdout by default): JSON lines, or
 * pretty lines when that stream is a terminal.
 */
export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  const options = {
    level,
    base: { name: "xmpp-msg-gw" },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
  };
  const out = destination ?? process.stdout;
  if ((out as { isTTY?: boolean }).isTTY) return pino(options, prettyLines(out));
  return destination ? pino(options, destination) : pino(options);
}

/**
 * Formats each (already redacted) JSON line synchronously: a pino-pretty transport
 * stream would lose the last lines when `serve` exits right after logging "stopped".
 * Loaded only here, so that JSON output never pays for it.
 */
function prettyLines(out: NodeJS.WritableStream): { write(line: string): void } {
  const { prettyFactory } = createRequire(import.meta.url)(
    "pino-pretty",
  ) as typeof import("pino-pretty");
  const pretty = prettyFactory({
    colorize: true,
    translateTime: "SYS:HH:MM:ss.l",
    ignore: "name,pid,hostname",
  });
  return { write: (line) => out.write(pretty(line)) };
}
