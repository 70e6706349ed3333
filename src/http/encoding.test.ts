import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { test } from "node:test";
import { gzipSync } from "node:zlib";
import { isCode } from "../core/errors.ts";
import { decodeBody } from "./encoding.ts";

/** Reads a stream to its end: the bytes, or the error it failed with. */
async function drain(stream: Readable): Promise<{ bytes: number; err?: unknown }> {
  let bytes = 0;
  try {
    for await (const chunk of stream) bytes += (chunk as Buffer).length;
    return { bytes };
  } catch (err) {
    return { bytes, err };
  }
}

/** A gzip bomb: `mib` gzip members of 1 MiB of zeros each (RFC 1952 §2.2), about 1 KB apiece. */
function bomb(mib: number): Buffer {
  const member = gzipSync(Buffer.alloc(1024 * 1024), { level: 9 });
  return Buffer.concat(Array.from({ length: mib }, () => member));
}

test("a gzip bomb stops after at most the limit is inflated, reading little of it", async () => {
  const compressed = bomb(1000); // 1000 MiB of zeros in about 1 MB
  let fed = 0;
  const source = Readable.from(
    (function* () {
      for (let i = 0; i < compressed.length; i += 1024) {
        fed += Math.min(1024, compressed.length - i);
        yield compressed.subarray(i, i + 1024);
      }
    })(),
  );
  const limit = 1024 * 1024;
  const out = await drain(decodeBody(source, "gzip", limit));
  assert.ok(isCode(out.err, "PAYLOAD_TOO_LARGE"), String(out.err));
  assert.match(String((out.err as Error).message), /limit of 1048576 bytes once decoded/);
  assert.ok(out.bytes <= limit, `${out.bytes} bytes came out`);
  assert.ok(fed < compressed.length / 4, `${fed} of ${compressed.length} compressed bytes read`);
});

test("decoded bodies count their bytes on the wire for Content-Length checks", async () => {
  const zipped = gzipSync("hello");
  const stream = decodeBody(Readable.from([zipped]), "gzip", 1000);
  assert.deepEqual(await drain(stream), { bytes: 5 });
  assert.equal(stream.receivedEncodedLength, zipped.length);
});

test("the limit applies to the bytes on the wire too, with or without an encoding", async () => {
  const out = await drain(decodeBody(Readable.from([Buffer.alloc(2000)]), undefined, 1000));
  assert.ok(isCode(out.err, "PAYLOAD_TOO_LARGE"), String(out.err));
  assert.match((out.err as Error).message, /^the body is larger than the limit of 1000 bytes$/);
});

test("unknown encodings are a 415 and corrupt data a 400, naming the encoding", async () => {
  assert.throws(
    () => decodeBody(Readable.from([]), "zstd", 1000),
    (err: unknown) => isCode(err, "UNSUPPORTED_MEDIA_TYPE"),
  );
  const out = await drain(decodeBody(Readable.from([Buffer.from("plain")]), "deflate", 1000));
  assert.ok(isCode(out.err, "BAD_REQUEST"), String(out.err));
  assert.match((out.err as Error).message, /^the body is not valid deflate data \(/);
});
