/**
 * The spool's high-water mark: the highest message seq the spool has handed out, kept in
 * a small file beside it (`spool.sqlite-highwater`), outside SQLite.
 *
 * Why: SQLite drops damaged WAL frames silently. Recovery replays the WAL up to the last
 * commit whose frames' checksums check out and ignores the rest
 * (https://www.sqlite.org/fileformat.html#wal_file_format), so a WAL cut short or zeroed
 * while the gateway was stopped loses the newest acknowledged messages with no error at
 * all. The mark remembers how far the spool got: a spool that opens holding less than
 * its mark has lost messages (`integrity.ts`).
 *
 * Cost: one `pwrite` of one fixed-size record per commit (not per post), into the page
 * cache. It is not fsynced with every commit, which would double the cost of a commit;
 * an fdatasync runs at most once a second, on libuv's thread pool. So after a kill -9 or
 * a stop the mark is exact, and after a power loss it may lag by about a second. It is
 * only ever written with a seq already committed, so it can miss a loss of the newest
 * writes but never report one that did not happen.
 */
import {
  closeSync,
  constants,
  fdatasync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import { crc32 } from "node:zlib";

/** How often at most the mark is fsynced while it moves. */
const SYNC_MS = 1000;
/** Every record has this size, so that rewriting it in place always covers the last one. */
const RECORD_BYTES = 96;
const PREFIX = "xmpp-msg-gw spool high-water mark v1";
const RECORD = /^xmpp-msg-gw spool high-water mark v1 seq (\d{1,19}) crc32 ([0-9a-f]{8}) *\n$/;

/** The mark file of the spool at `spoolPath`. */
export function highWaterPath(spoolPath: string): string {
  return `${spoolPath}-highwater`;
}

/** What a mark file says: nothing yet, a seq, or that it is damaged (why). */
export type HighWaterReading =
  | { readonly kind: "none" }
  | { readonly kind: "seq"; readonly seq: number }
  | { readonly kind: "damaged"; readonly why: string };

const checksum = (seq: number) => crc32(`seq ${seq}`).toString(16).padStart(8, "0");

function record(seq: number): Buffer {
  const text = `${PREFIX} seq ${seq} crc32 ${checksum(seq)}`;
  return Buffer.from(`${text.padEnd(RECORD_BYTES - 1)}\n`, "latin1");
}

/** Reads the mark file; an empty one (created, never written) counts as none. */
export function readHighWater(file: string): HighWaterReading {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { kind: "none" };
    return { kind: "damaged", why: `it cannot be read: ${(err as Error).message}` };
  }
  if (bytes.length === 0) return { kind: "none" };
  const found = RECORD.exec(bytes.toString("latin1"));
  const seq = Number(found?.[1]);
  if (found === null || !Number.isSafeInteger(seq)) {
    return { kind: "damaged", why: `its ${bytes.length} bytes are not a high-water mark` };
  }
  if (found[2] !== checksum(seq)) return { kind: "damaged", why: "its checksum does not match" };
  return { kind: "seq", seq };
}

/** An open mark file, moved forward after commits. */
export interface HighWaterMark {
  /** Records that every seq up to `seq` is committed (one pwrite; a lower seq is ignored). Throws on a write error. */
  advance(seq: number): void;
  /** Syncs and closes the file. */
  close(): Promise<void>;
}

/** Opens (creating) the mark file and writes `seq` into it, synced; throws when the file cannot be written. */
export function openHighWater(file: string, seq: number): HighWaterMark {
  const fd = openSync(file, constants.O_RDWR | constants.O_CREAT, 0o644);
  let written = seq;
  let dirty = false;
  let timer: NodeJS.Timeout | undefined;
  let syncing: Promise<void> | undefined;
  let syncedAt = performance.now();
  try {
    writeSync(fd, record(seq), 0, RECORD_BYTES, 0);
    ftruncateSync(fd, RECORD_BYTES);
    fsyncSync(fd);
    syncDirectory(dirname(file)); // a new file's name is durable only once its directory is
  } catch (err) {
    closeSync(fd);
    throw err;
  }

  function scheduleSync(): void {
    if (timer !== undefined || syncing !== undefined) return;
    const wait = Math.max(0, syncedAt + SYNC_MS - performance.now());
    timer = setTimeout(() => {
      timer = undefined;
      dirty = false;
      syncedAt = performance.now();
      syncing = new Promise<void>((resolve) => fdatasync(fd, () => resolve())).then(() => {
        syncing = undefined;
        if (dirty) scheduleSync();
      });
    }, wait);
    timer.unref();
  }

  return {
    advance(next) {
      if (next <= written) return;
      writeSync(fd, record(next), 0, RECORD_BYTES, 0);
      written = next;
      dirty = true;
      scheduleSync();
    },
    async close() {
      clearTimeout(timer);
      await syncing;
      try {
        if (dirty) fsyncSync(fd);
      } catch {
        // The mark only ever lags behind the spool: a failed sync cannot make it lie.
      }
      closeSync(fd);
    },
  };
}

function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // Some platforms (Windows) cannot open or sync a directory; the file itself is synced.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
