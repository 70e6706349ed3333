/**
 * Grafana's webhook signature: hex HMAC-SHA256 with the shared secret over the raw body,
 * or over `<timestamp>:<body>` when a timestamp header is configured (Unix seconds,
 * checked against a maximum clock skew to stop replays).
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { HmacCheck } from "./routes.ts";

/** The outcome of a check: `reason` says what was wrong, never the secret or the expected value. */
export type HmacResult = { ok: true } | { ok: false; reason: string };

/** Verifies the signature of `body` as Grafana computes it. */
export function verifySignature(
  check: HmacCheck,
  body: Buffer,
  headers: Readonly<Record<string, string | string[] | undefined>>,
  nowMs: number,
): HmacResult {
  const header = (name: string) => {
    const v = headers[name.toLowerCase()];
    return Array.isArray(v) ? v[0] : v;
  };
  const signature = header(check.header)?.trim().toLowerCase();
  if (!signature) return { ok: false, reason: `missing ${check.header} header` };
  let signed = body;
  if (check.timestampHeader !== undefined) {
    const ts = header(check.timestampHeader)?.trim();
    if (!ts || !/^\d+$/.test(ts)) {
      return {
        ok: false,
        reason: `missing or malformed ${check.timestampHeader} header (Unix seconds expected)`,
      };
    }
    const skew = Math.abs(nowMs - Number(ts) * 1000);
    if (skew > check.maxSkewMs) {
      return {
        ok: false,
        reason: `${check.timestampHeader} is ${Math.round(skew / 1000)} s away from now; at most ${check.maxSkewMs / 1000} s allowed`,
      };
    }
    signed = Buffer.concat([Buffer.from(`${ts}:`), body]);
  }
  const expected = createHmac("sha256", check.secret).update(signed).digest();
  const given = /^[0-9a-f]{64}$/.test(signature) ? Buffer.from(signature, "hex") : undefined;
  if (!given || !timingSafeEqual(given, expected)) {
    return {
      ok: false,
      reason: `${check.header} does not match the body (HMAC-SHA256 with the route's secret)`,
    };
  }
  return { ok: true };
}
