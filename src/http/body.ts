/**
 * Request bodies → PostBody. JSON is parsed so that rendering can reproduce Python's
 * output exactly (number text, key order), with nesting bounded; forms and multipart
 * become an object of their fields (repeated fields → arrays, Slack's `payload=` JSON
 * parsed); text is decoded in its declared charset. Every body is first decoded from its
 * Content-Encoding and bounded by the body limit as a whole (encoding.ts). Anything
 * undecodable is a 400 that says what and where, an empty body too; an unsupported type
 * is a 415 listing the supported ones.
 */
import type { IncomingMessage } from "node:http";
import { TextDecoder } from "node:util";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { GatewayError } from "../core/errors.ts";
import type { PostBody } from "../core/post.ts";
import { parseJsonForRender } from "../core/render/json.ts";
import { decodeBody } from "./encoding.ts";
import { FieldCollector, MAX_FIELDS } from "./fields.ts";
import { parseMultipart } from "./multipart.ts";

declare module "fastify" {
  interface FastifyRequest {
    /** True when the body is multipart/form-data. */
    isMultipart(): boolean;
  }
}

/** Deepest nesting of arrays and objects accepted (Python's own limit is about 1,000). */
export const MAX_JSON_DEPTH = 500;

/** The content types a post may have, listed in 415 replies. */
export const SUPPORTED_TYPES = [
  "application/json",
  "application/x-www-form-urlencoded",
  "multipart/form-data",
  "text/plain",
];

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

/** Parses JSON text, or throws a 400 that says what is wrong and where. */
export function parseJsonBody(text: string, what = "the body"): unknown {
  if (text.trim() === "")
    throw new GatewayError("BAD_REQUEST", `${what} is empty but should be JSON`);
  const depth = jsonDepth(text);
  if (depth > MAX_JSON_DEPTH) {
    throw new GatewayError(
      "BAD_REQUEST",
      `JSON nested ${depth} levels deep in ${what}; at most ${MAX_JSON_DEPTH} are accepted`,
    );
  }
  try {
    return parseJsonForRender(text);
  } catch (err) {
    // V8's SyntaxError names the position, e.g. "… in JSON at position 8 (line 1 column 9)".
    throw new GatewayError("BAD_REQUEST", `invalid JSON in ${what}: ${(err as Error).message}`);
  }
}

/** Decodes bytes in `charset` (default UTF-8); invalid bytes are a 400 naming the offset. */
export function decodeText(bytes: Buffer, charset = "utf-8"): string {
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(charset, { fatal: true, ignoreBOM: false });
  } catch {
    throw new GatewayError(
      "UNSUPPORTED_MEDIA_TYPE",
      `charset "${charset}" is not supported; use utf-8 (or another charset the WHATWG Encoding standard knows)`,
    );
  }
  try {
    return decoder.decode(bytes);
  } catch {
    throw new GatewayError(
      "BAD_REQUEST",
      `the body is not valid ${charset}${firstBadUtf8(bytes, charset)}`,
    );
  }
}

/**
 * Where UTF-8 decoding of `bytes` fails. A prefix that fails to decode as a stream only
 * fails more when extended, so a binary search finds the first bad byte in O(n log n);
 * decoding every prefix in turn was quadratic (a minute for 1 MiB).
 */
function firstBadUtf8(bytes: Buffer, charset: string): string {
  if (!/^utf-?8$/i.test(charset)) return "";
  const decodes = (end: number) => {
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, end), { stream: true });
      return true;
    } catch {
      return false;
    }
  };
  if (decodes(bytes.length)) return " (it ends in the middle of a character)";
  let good = 0; // the longest prefix known to decode
  let bad = bytes.length; // the shortest prefix known to fail
  while (bad - good > 1) {
    const mid = Math.floor((good + bad) / 2);
    if (decodes(mid)) good = mid;
    else bad = mid;
  }
  return ` (decoding fails at byte offset ${bad - 1})`;
}

/** The charset parameter of a Content-Type header, lower-cased, if any. */
export function charsetOf(contentType: string | undefined): string | undefined {
  return /;\s*charset="?([^";\s]+)"?/i.exec(contentType ?? "")?.[1]?.toLowerCase();
}

/** Slack posts `payload=<json>`: that field is the real body. */
function unwrapSlackPayload(fields: Record<string, unknown>): unknown {
  const keys = Object.keys(fields);
  if (keys.length === 1 && keys[0] === "payload" && typeof fields.payload === "string") {
    return parseJsonBody(fields.payload, "the payload field");
  }
  return fields;
}

/**
 * A urlencoded body. `curl -d '{"a":1}'` without `-H` sends JSON labelled as a form:
 * a body that is one JSON object or array is taken as the JSON the user meant. At most
 * `maxFields` fields (repeats included) are taken; more is a 413.
 */
export function parseFormBody(text: string, maxFields = MAX_FIELDS): unknown {
  const trimmed = text.trim();
  if (
    (trimmed.startsWith("{") && trimmed.endsWith("}")) ||
    (trimmed.startsWith("[") && trimmed.endsWith("]"))
  ) {
    try {
      return parseJsonBody(trimmed);
    } catch {
      // Not JSON after all: read it as the form it says it is.
    }
  }
  const fields = new FieldCollector("the form", maxFields);
  for (const pair of text.split("&")) {
    if (pair === "") continue;
    // One pair at a time: Node's URLSearchParams takes time quadratic in the number of
    // pairs without "=" (200,000 of them take seconds). The leading "&" keeps a "?" at the
    // start of a pair part of its name, as the WHATWG form parser does.
    for (const [key, value] of new URLSearchParams(`&${pair}`)) fields.add(key, value);
  }
  if (fields.size === 0)
    throw new GatewayError("BAD_REQUEST", "the body is empty: the form has no fields");
  return unwrapSlackPayload(fields.build());
}

/** Text sent as it is; nothing, or only whitespace, is no message. */
function parseTextBody(text: string): PostBody {
  if (text.trim() === "") {
    throw new GatewayError(
      "BAD_REQUEST",
      text === "" ? "the body is empty" : "the body is empty: it holds only whitespace",
    );
  }
  return { kind: "text", text };
}

/** The parsed body of a post; no body at all (no Content-Type either) is a 400. */
export function postBodyOf(req: FastifyRequest): PostBody {
  const body = req.body as PostBody | undefined;
  if (body === undefined) throw new GatewayError("BAD_REQUEST", "the body is empty");
  return body;
}

/**
 * Registers every parser, each yielding a PostBody, and a preParsing hook that decodes
 * Content-Encoding and bounds the body by `bodyLimit` as a whole, as sent and as decoded.
 * `req.rawBody` (for signature checks) is the decoded body: what the sender signed.
 */
export function registerBodyParsers(app: FastifyInstance, bodyLimit: number): void {
  app.removeAllContentTypeParsers();
  app.decorateRequest("isMultipart", function (this: FastifyRequest) {
    return /^multipart\/form-data\b/i.test(this.headers["content-type"] ?? "");
  });
  app.addHook("preParsing", async (req, _reply, payload) => {
    // Only routed posts read a body; anything else is answered without it.
    if (req.method !== "POST" || req.routeOptions.url === undefined) return payload;
    if (Number(req.headers["content-length"]) > bodyLimit) {
      throw new GatewayError(
        "PAYLOAD_TOO_LARGE",
        `the body is larger than the limit of ${bodyLimit} bytes`,
      );
    }
    return decodeBody(payload, req.headers["content-encoding"], bodyLimit);
  });
  const parse =
    (fn: (bytes: Buffer, contentType: string | undefined) => PostBody) =>
    (req: FastifyRequest, body: Buffer, done: (err: Error | null, body?: PostBody) => void) => {
      try {
        req.rawBody = body;
        done(null, fn(body, req.headers["content-type"]));
      } catch (err) {
        done(err as Error);
      }
    };
  const json = (bytes: Buffer, ct: string | undefined): PostBody => {
    const text = decodeText(bytes, charsetOf(ct) ?? "utf-8");
    const value = parseJsonBody(text);
    // A bare number prints as it was written (`1.0`, not `1`): the renderer needs the text.
    return typeof value === "number"
      ? { kind: "json", value, source: text }
      : { kind: "json", value };
  };
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, parse(json));
  app.addContentTypeParser(/^application\/[\w.-]+\+json$/, { parseAs: "buffer" }, parse(json));
  app.addContentTypeParser(
    "application/x-www-form-urlencoded",
    { parseAs: "buffer" },
    parse((bytes, ct) => ({
      kind: "json",
      value: parseFormBody(decodeText(bytes, charsetOf(ct) ?? "utf-8")),
    })),
  );
  app.addContentTypeParser(
    "text/plain",
    { parseAs: "buffer" },
    parse((bytes, ct) => parseTextBody(decodeText(bytes, charsetOf(ct) ?? "utf-8"))),
  );
  app.addContentTypeParser(
    "multipart/form-data",
    // The payload is the stream preParsing returned, decoded and bounded, not the request.
    async (req: FastifyRequest, payload: IncomingMessage): Promise<PostBody> => ({
      kind: "json",
      value: unwrapSlackPayload(await parseMultipart(payload, req.headers, bodyLimit)),
    }),
  );
}
