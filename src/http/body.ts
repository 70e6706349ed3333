/**
 * Request body parsers. JSON is parsed so that rendering can reproduce Python's output
 * exactly (number text, key order); nesting is bounded so that no body can exhaust the
 * renderers' stack.
 */
import type { FastifyInstance } from "fastify";
import { GatewayError } from "../core/errors.ts";
import { parseJsonForRender } from "../core/render/json.ts";

/** Deepest nesting of arrays and objects accepted (Python's own limit is about 1,000). */
export const MAX_JSON_DEPTH = 500;

/** The deepest nesting of `[` / `{` in JSON text, ignoring brackets inside strings. */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) max = Math.max(max, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/** Parses a JSON body, or throws a 400 that says what is wrong and where. */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === "")
    throw new GatewayError("BAD_REQUEST", "the body is empty but Content-Type says JSON");
  const depth = jsonDepth(text);
  if (depth > MAX_JSON_DEPTH) {
    throw new GatewayError(
      "BAD_REQUEST",
      `JSON nested ${depth} levels deep; at most ${MAX_JSON_DEPTH} are accepted`,
    );
  }
  try {
    return parseJsonForRender(text);
  } catch (err) {
    // V8's SyntaxError names the position, e.g. "… in JSON at position 8 (line 1 column 9)".
    throw new GatewayError("BAD_REQUEST", `invalid JSON: ${(err as Error).message}`);
  }
}

/** Registers the JSON parser (replacing Fastify's); `text/plain` stays Fastify's own. */
export function registerBodyParsers(app: FastifyInstance): void {
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (_req, body, done) => {
    try {
      done(null, parseJsonBody(body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
}
