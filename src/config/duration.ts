/**
 * Durations in configuration: seconds as a plain integer, or an integer with one unit
 * (`90s`, `15m`, `24h`, `7d`), the same syntax in the environment and in CONFIG_FILE.
 */
import { z } from "zod";

/** One day in milliseconds. */
export const DAY_MS = 86_400_000;

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: DAY_MS };

/** What a valid duration looks like, for error messages. */
export const DURATION_ERROR = "expected seconds (e.g. 3600) or a duration like 90s, 15m, 24h or 7d";

/**
 * A schema for a duration in ms, more than 0 (or 0 too, when `zeroMeans` says what 0
 * does) and at most `max` (`text` is how `max` reads to a person); YAML numbers count as
 * seconds.
 */
export function durationMs(max: { ms: number; text: string }, zeroMeans?: string) {
  return z.coerce
    .string()
    .trim()
    .regex(/^\d+[smhd]?$/i, {
      error: zeroMeans === undefined ? DURATION_ERROR : `${DURATION_ERROR}, or 0 (${zeroMeans})`,
    })
    .transform((s) => {
      const scale = UNITS[s.at(-1)?.toLowerCase() ?? ""];
      return scale === undefined ? Number(s) * 1000 : Number(s.slice(0, -1)) * scale;
    })
    .refine((ms) => ms > 0 || zeroMeans !== undefined, {
      error: `${DURATION_ERROR}; 0 is not allowed`,
    })
    .refine((ms) => ms <= max.ms, { error: `expected at most ${max.text}` });
}
