/**
 * Request bodies → PostBody. JSON is parsed so that rendering can reproduce Python's
 * output exactly (number text, key order), with nesting bounded; forms and multipart
 * become an object of their fields (repeated fields → arrays, Slack's `payload=` JSON
 * parsed); text is decoded in its declared charset. Anything undecodable is a 400 that
 * says what and where; an unsupported type is a 415 listing the supported ones.
 */
import { TextDecoder } from "node:util";
import multipart from "@fastify/multipart";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { GatewayError } from "../core/errors.ts";
import type { PostBody } from "../core/post.ts";
import { parseJsonForRender } from "../core/render/json.ts";

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

function firstBadUtf8(bytes: Buffer, charset: string): string {
  if (!/^utf-?8$/i.test(charset)) return "";
  for (let end = 1; end <= bytes.length; end++) {
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, end), { stream: true });
    } catch {
      return ` (decoding fails at byte offset ${end - 1})`;
    }
  }
  return " (it ends in the middle of a character)";
}

/** The charset parameter of a Content-Type header, lower-cased, if any. */
export function charsetOf(contentType: string | undefined): string | undefined {
  return /;\s*charset="?([^";\s]+)"?/i.exec(contentType ?? "")?.[1]?.toLowerCase();
}

/** Adds `value` under `key`; a repeated key becomes an array, in order. */
function addField(out: Record<string, unknown>, key: string, value: unknown): void {
  if (!Object.hasOwn(out, key)) {
    // defineProperty: a field named __proto__ stays an ordinary field.
    Object.defineProperty(out, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    const prev = out[key];
    out[key] = Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
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
 * a body that is one JSON object or array is taken as the JSON the user meant.
 */
export function parseFormBody(text: string): unknown {
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
  const fields: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(text)) addField(fields, key, value);
  return unwrapSlackPayload(fields);
}

/** Reads a multipart body into fields; text files become their text, others a note. */
export async function readMultipart(req: FastifyRequest): Promise<unknown> {
  const fields: Record<string, unknown> = {};
  for await (const part of req.parts()) {
    if (part.type === "field") {
      addField(fields, part.fieldname, String(part.value));
      continue;
    }
    const bytes = await part.toBuffer();
    let value: string;
    try {
      value = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      value = `[file ${part.filename}, ${part.mimetype}, ${bytes.length} bytes]`;
    }
    addField(fields, part.fieldname, value);
  }
  return unwrapSlackPayload(fields);
}

/** Registers every parser; each yields a PostBody (multipart is read in the handler). */
export function registerBodyParsers(app: FastifyInstance, bodyLimit: number): void {
  app.removeAllContentTypeParsers();
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
  const json = (bytes: Buffer, ct: string | undefined): PostBody => ({
    kind: "json",
    value: parseJsonBody(decodeText(bytes, charsetOf(ct) ?? "utf-8")),
  });
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
    parse((bytes, ct) => ({
      kind: "text",
      text: decodeText(bytes, charsetOf(ct) ?? "utf-8"),
    })),
  );
  app.register(multipart, { limits: { fileSize: bodyLimit, fieldSize: bodyLimit, parts: 1000 } });
}
