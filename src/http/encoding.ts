/**
 * `Content-Encoding` (RFC 9110 §8.4): the request body is decoded as a stream, and the body
 * limit applies both to the bytes on the wire and to the decoded bytes, so a compression
 * bomb stops after at most the limit (plus one zlib chunk) has been inflated. An unknown
 * coding is a 415 that lists the supported ones (§15.5.16); corrupt data is a 400.
 */
import { PassThrough, type Readable, Transform } from "node:stream";
import { createBrotliDecompress, createGunzip, createInflate } from "node:zlib";
import { GatewayError } from "../core/errors.ts";

/** The content codings a request body may have, listed in 415 replies. */
export const SUPPORTED_ENCODINGS = ["gzip", "deflate", "br"] as const;

type Coding = (typeof SUPPORTED_ENCODINGS)[number];

/** Small buffers in the limiters: little is read ahead of what the limit allows. */
const highWaterMark = 16 * 1024;

const DECODERS: Record<Coding, () => Transform> = {
  gzip: () => createGunzip(),
  // RFC 9110 §8.4.1.2: "deflate" is the zlib format (RFC 1950), not raw deflate.
  deflate: () => createInflate(),
  br: () => createBrotliDecompress(),
};

/** The decoded body; `receivedEncodedLength` is what Fastify compares with Content-Length. */
export interface DecodedBody extends Readable {
  readonly receivedEncodedLength: number;
}

/**
 * The codings of a Content-Encoding header, in the order they were applied; `identity`
 * and empty entries drop out, `x-gzip` is gzip (RFC 9110 §8.4.1.3).
 */
export function parseContentEncoding(header: string | undefined): Coding[] {
  const codings: Coding[] = [];
  for (const raw of (header ?? "").split(",")) {
    const name = raw.trim().toLowerCase();
    if (name === "" || name === "identity") continue;
    const coding = name === "x-gzip" ? "gzip" : name;
    if (!(SUPPORTED_ENCODINGS as readonly string[]).includes(coding)) {
      throw new GatewayError(
        "UNSUPPORTED_MEDIA_TYPE",
        `Content-Encoding "${raw.trim()}" is not supported; use ${SUPPORTED_ENCODINGS.join(", ")} or none`,
      );
    }
    codings.push(coding as Coding);
  }
  return codings;
}

/** A pass-through that fails with a 413 once more than `limit` bytes went through it. */
function limiter(limit: number, suffix: string, onCount?: (n: number) => void): Transform {
  let n = 0;
  return new Transform({
    highWaterMark,
    transform(chunk: Buffer, _enc, done) {
      n += chunk.length;
      onCount?.(n);
      if (n <= limit) return done(null, chunk);
      done(
        new GatewayError(
          "PAYLOAD_TOO_LARGE",
          `the body is larger than the limit of ${limit} bytes${suffix}`,
        ),
      );
    },
  });
}

/**
 * `source` with its content codings removed, failing with a GatewayError (413 over the
 * limit, 400 for corrupt data or a body cut off). Throws a 415 for an unknown coding.
 * `source` itself is never destroyed, so the reply can still be written to its socket.
 */
export function decodeBody(
  source: Readable,
  contentEncoding: string | undefined,
  limit: number,
): DecodedBody {
  const codings = parseContentEncoding(contentEncoding);
  const out = Object.assign(new PassThrough(), { receivedEncodedLength: 0 });
  const wire = limiter(limit, "", (n) => {
    out.receivedEncodedLength = n;
  });
  // Codings are listed in the order they were applied: undo the last one first.
  const decoders = [...codings].reverse().map((coding) => ({ coding, stream: DECODERS[coding]() }));
  const stages: Transform[] = [wire, ...decoders.map((d) => d.stream)];
  if (decoders.length > 0) stages.push(limiter(limit, " once decoded"));

  let settled = false;
  const stop = (err?: Error) => {
    if (settled) return;
    settled = true;
    source.unpipe(wire);
    for (const stage of stages) stage.destroy();
    if (err) out.destroy(err);
  };
  source.on("error", (err) =>
    stop(new GatewayError("BAD_REQUEST", `the body could not be read: ${err.message}`)),
  );
  for (const stage of stages) {
    const decoder = decoders.find((d) => d.stream === stage);
    stage.on("error", (err) => {
      if (err instanceof GatewayError || !decoder) return stop(err);
      stop(
        new GatewayError(
          "BAD_REQUEST",
          `the body is not valid ${decoder.coding} data (${err.message})`,
        ),
      );
    });
  }
  // Errors reach whoever reads the body. A body nobody reads (the reply was decided before
  // it, e.g. a 415) can still run over the limit; that must not crash the process.
  out.on("error", () => {});
  // The consumer gave up (another error, or the reply was sent): stop reading and inflating.
  out.on("close", () => {
    if (!out.readableEnded) stop();
  });
  out.on("end", () => {
    settled = true;
  });
  let upstream: Readable = source;
  for (const stage of stages) upstream = upstream.pipe(stage);
  upstream.pipe(out);
  return out;
}
