/**
 * `TRUST_PROXY`: the addresses of reverse proxies whose `X-Forwarded-For` the gateway
 * believes, as Fastify's `trustProxy` option takes them (a list of addresses, CIDR
 * ranges and the names `loopback`, `linklocal`, `uniquelocal`). Unset or `false` trusts
 * nothing: the logged client address is then the peer of the TCP connection.
 *
 * Fastify walks the chain from the connection's peer leftwards through
 * `X-Forwarded-For` and stops at the first address it does not trust; that address is
 * the client. `true` (trust everything) and hop counts are refused: either would let
 * any caller choose the address it is logged under.
 */
import { isIP } from "node:net";
import { z } from "zod";

/** proxy-addr's named ranges. */
const NAMES = ["loopback", "linklocal", "uniquelocal"] as const;

const EXAMPLE = "e.g. 127.0.0.1 or loopback,10.0.0.0/8";

/** Why one entry is not a trusted address, or undefined when it is fine. */
function entryProblem(entry: string): string | undefined {
  if ((NAMES as readonly string[]).includes(entry.toLowerCase())) return undefined;
  const slash = entry.indexOf("/");
  const address = slash < 0 ? entry : entry.slice(0, slash);
  const family = isIP(address);
  if (family === 0) {
    return `"${entry}" is not an IP address, a CIDR range or one of ${NAMES.join(", ")}`;
  }
  if (slash < 0) return undefined;
  const prefix = entry.slice(slash + 1);
  const max = family === 4 ? 32 : 128;
  // proxy-addr refuses /0: a range that wide would trust every address anyway.
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) < 1 || Number(prefix) > max) {
    return `"${entry}" has a bad prefix length: expected /1 to /${max}`;
  }
  return undefined;
}

/** Parses the setting into Fastify's `trustProxy` list; empty means trust nothing. */
export const trustProxySchema = z
  .string()
  .transform((value, ctx) => {
    const trimmed = value.trim();
    if (trimmed === "" || trimmed.toLowerCase() === "false") return [];
    if (trimmed.toLowerCase() === "true" || /^\d+$/.test(trimmed)) {
      ctx.addIssue({
        code: "custom",
        message:
          "trusting every address (or a hop count) lets any client forge the address it " +
          `is logged under; list the proxy's addresses instead, ${EXAMPLE}`,
      });
      return z.NEVER;
    }
    const entries = trimmed
      .split(",")
      .map((e) => e.trim())
      .filter((e) => e !== "");
    const problems = entries.map(entryProblem).filter((p) => p !== undefined);
    if (problems.length > 0) {
      ctx.addIssue({
        code: "custom",
        message: `${problems.join("; ")}; expected a comma-separated list, ${EXAMPLE}`,
      });
      return z.NEVER;
    }
    return entries.map((e) =>
      (NAMES as readonly string[]).includes(e.toLowerCase()) ? e.toLowerCase() : e,
    );
  })
  .default([]);
