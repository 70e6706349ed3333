/**
 * The gateway's logger: pino JSON lines, with every field that can hold a secret
 * redacted by path, whatever code logs it.
 */
import { type Logger, pino } from "pino";
import type { LogLevel } from "./config/index.ts";

/** Paths pino censors in every line. */
export const REDACT_PATHS = [
  "password",
  "token",
  "*.password",
  "*.token",
  "req.headers.authorization",
  "headers.authorization",
];

/** Creates the root logger writing JSON lines to `destination` (stdout by default). */
export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  const options = {
    level,
    base: { name: "xmpp-msg-gw" },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
  };
  return destination ? pino(options, destination) : pino(options);
}
