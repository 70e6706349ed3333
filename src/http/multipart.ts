/**
 * `multipart/form-data` (RFC 7578) → an object of its fields, parsed by busboy from the
 * request's (decoded, size-limited) payload stream. @fastify/multipart is not used: it
 * pipes the raw request into busboy itself, past Content-Encoding and past any limit on
 * the whole request (its limits are per part). Text files become their text, other files
 * a note; malformed multipart is a 400 that says what is wrong, too many parts a 413.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { Readable } from "node:stream";
import { TextDecoder } from "node:util";
import { Busboy, type BusboyInstance } from "@fastify/busboy";
import { GatewayError } from "../core/errors.ts";
import { FieldCollector, MAX_FIELDS } from "./fields.ts";

/** The boundary parameter of a Content-Type header, if any. */
function boundaryOf(contentType: string | undefined): string | undefined {
  return /;\s*boundary=(?:"([^"]*)"|([^;\s]*))/i
    .exec(contentType ?? "")
    ?.slice(1)
    .find(Boolean);
}

const tooMany = (what: string) =>
  new GatewayError(
    "PAYLOAD_TOO_LARGE",
    `the multipart body has more than ${MAX_FIELDS} ${what}; at most ${MAX_FIELDS} are accepted`,
  );

/** busboy's parse errors, said in terms of what the caller sent. */
function malformed(err: Error, boundary: string, sawPart: boolean): GatewayError {
  if (/unexpected end of multipart data/i.test(err.message)) {
    return new GatewayError(
      "BAD_REQUEST",
      sawPart
        ? `the multipart body ends before its closing boundary "--${boundary}--": it is truncated`
        : `the multipart body has no part that starts with the boundary "--${boundary}" given in Content-Type`,
    );
  }
  return new GatewayError("BAD_REQUEST", `the multipart body is malformed: ${err.message}`);
}

/** A file part as a field value: its text if it is UTF-8, else a note of what it was. */
function fileValue(bytes: Buffer, filename: string, mimeType: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return `[file ${filename}, ${mimeType}, ${bytes.length} bytes]`;
  }
}

/**
 * Reads a multipart body into its fields (repeats as arrays, in order). `payload` is the
 * decoded body stream (see encoding.ts), which already bounds the whole body and may be
 * destroyed on failure; `limit` bounds each part.
 */
export function parseMultipart(
  payload: Readable,
  headers: IncomingHttpHeaders,
  limit: number,
): Promise<Record<string, unknown>> {
  const boundary = boundaryOf(headers["content-type"]);
  if (!boundary) {
    throw new GatewayError(
      "BAD_REQUEST",
      "Content-Type multipart/form-data needs a boundary: multipart/form-data; boundary=<the line that separates the parts>",
    );
  }
  let bb: BusboyInstance;
  try {
    bb = Busboy({
      headers: { ...headers, "content-type": headers["content-type"] as string },
      limits: { fieldNameSize: limit, fieldSize: limit, fileSize: limit, parts: MAX_FIELDS },
    });
  } catch (err) {
    // RFC 2046 §5.1.1: a boundary is 1 to 70 characters; busboy refuses longer ones.
    throw new GatewayError(
      "BAD_REQUEST",
      `the boundary in Content-Type cannot be used (${(err as Error).message}); use 1 to 70 characters`,
    );
  }
  const fields = new FieldCollector("the multipart body");
  let received = 0;
  let sawPart = false;
  let open = 0; // files not yet read to their end
  let parsed = false;

  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      payload.unpipe(bb);
      payload.destroy();
      reject(err);
    };
    const finish = () => {
      if (settled || !parsed || open > 0) return;
      settled = true;
      if (received === 0 || fields.size === 0) {
        reject(
          new GatewayError(
            "BAD_REQUEST",
            received === 0
              ? "the body is empty"
              : "the body is empty: the multipart body has no fields",
          ),
        );
      } else resolve(fields.build());
    };
    const guard = (fn: () => void) => {
      try {
        fn();
      } catch (err) {
        fail(err as Error);
      }
    };

    bb.on("field", (name, value, _nameTruncated, valueTruncated) =>
      guard(() => {
        sawPart = true;
        if (valueTruncated) {
          throw new GatewayError(
            "PAYLOAD_TOO_LARGE",
            `field "${name}" is larger than the limit of ${limit} bytes`,
          );
        }
        fields.add(name, value);
      }),
    );
    bb.on("file", (name, stream, filename, _encoding, mimeType) =>
      guard(() => {
        sawPart = true;
        open++;
        const set = fields.add(name, undefined);
        const chunks: Buffer[] = [];
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("limit", () =>
          fail(
            new GatewayError(
              "PAYLOAD_TOO_LARGE",
              `file "${filename}" in field "${name}" is larger than the limit of ${limit} bytes`,
            ),
          ),
        );
        stream.on("error", (err: Error) => fail(malformed(err, boundary, true)));
        stream.on("end", () => {
          set(fileValue(Buffer.concat(chunks), filename, mimeType));
          open--;
          finish();
        });
      }),
    );
    bb.on("partsLimit", () => fail(tooMany("parts")));
    bb.on("error", (err: unknown) =>
      fail(
        received === 0
          ? new GatewayError("BAD_REQUEST", "the body is empty")
          : malformed(err as Error, boundary, sawPart),
      ),
    );
    bb.on("finish", () => {
      parsed = true;
      finish();
    });
    payload.on("data", (chunk: Buffer) => {
      received += chunk.length;
    });
    payload.on("error", fail);
    payload.pipe(bb);
  });
}
