/**
 * Reading a room's message archive (XEP-0313 Message Archive Management, paged with
 * XEP-0059 Result Set Management). The gateway uses it after a rejoin to find which of
 * its unconfirmed messages already arrived, when the room history alone cannot tell
 * (a restarted server forgets the history but keeps the archive).
 */
import { type Element, xml } from "@xmpp/xml";

const NS_MAM = "urn:xmpp:mam:2";
const NS_RSM = "http://jabber.org/protocol/rsm";
const NS_FORWARD = "urn:xmpp:forward:0";

/** One archived groupchat message. */
export interface Archived {
  readonly nick: string;
  readonly body: string;
  /** XEP-0359 origin-id, else the message id. */
  readonly id: string | undefined;
}

/** What the archive query needs from a stream. */
export interface ArchiveStream {
  request(iq: Element, timeoutMs?: number): Promise<Element>;
  onStanza(listener: (stanza: Element) => void): () => void;
}

/** The query iq for one page (XEP-0313 §4.1, filtered by start time §4.1.1). */
export function archiveQuery(
  room: string,
  queryid: string,
  opts: { start?: Date; after?: string; max: number },
): Element {
  const field = (v: string, value: string, type?: string) =>
    xml("field", { var: v, type }, xml("value", {}, value));
  return xml(
    "iq",
    { type: "set", to: room },
    xml(
      "query",
      { xmlns: NS_MAM, queryid },
      xml(
        "x",
        { xmlns: "jabber:x:data", type: "submit" },
        field("FORM_TYPE", NS_MAM, "hidden"),
        opts.start ? field("start", opts.start.toISOString()) : null,
      ),
      xml(
        "set",
        { xmlns: NS_RSM },
        xml("max", {}, String(opts.max)),
        opts.after ? xml("after", {}, opts.after) : null,
      ),
    ),
  );
}

let queries = 0;

/** One page of the archive: its messages and where the next page starts, if any. */
async function readPage(
  stream: ArchiveStream,
  room: string,
  opts: { start?: Date; after?: string; max: number; timeoutMs: number },
): Promise<{ messages: Archived[]; next: string | undefined }> {
  const queryid = `mam-${++queries}`;
  const messages: Archived[] = [];
  const off = stream.onStanza((stanza) => {
    const result = stanza.getChild("result", NS_MAM);
    if (result?.attrs.queryid !== queryid) return;
    const message = result.getChild("forwarded", NS_FORWARD)?.getChild("message");
    const body = message?.getChildText("body");
    if (!message || body === null || body === undefined) return;
    const from = message.attrs.from ?? "";
    messages.push({
      nick: from.slice(from.indexOf("/") + 1),
      body,
      id: message.getChild("origin-id", "urn:xmpp:sid:0")?.attrs.id ?? message.attrs.id,
    });
  });
  let fin: Element | undefined;
  try {
    const reply = await stream.request(archiveQuery(room, queryid, opts), opts.timeoutMs);
    fin = reply.getChild("fin", NS_MAM);
  } finally {
    off();
  }
  const last = fin?.getChild("set", NS_RSM)?.getChildText("last") ?? undefined;
  const complete = fin?.attrs.complete === "true" || !last || messages.length === 0;
  return { messages, next: complete ? undefined : last };
}

/** Every archived message of `room` (since `start`), oldest first, up to `maxPages` pages. */
export async function readArchive(
  stream: ArchiveStream,
  room: string,
  opts: { start?: Date; pageSize?: number; maxPages?: number; timeoutMs?: number } = {},
): Promise<Archived[]> {
  const out: Archived[] = [];
  let after: string | undefined;
  for (let page = 0; page < (opts.maxPages ?? 100); page++) {
    const { messages, next } = await readPage(stream, room, {
      start: opts.start,
      after,
      max: opts.pageSize ?? 100,
      timeoutMs: opts.timeoutMs ?? 10_000,
    });
    out.push(...messages);
    if (next === undefined) break;
    after = next;
  }
  return out;
}

/**
 * Which of `ids`, sent by `nick`, the archive of `room` holds: pages from `start` (just
 * before the oldest unconfirmed message was accepted) until every id is accounted for or
 * the archive ends, however many pages that takes in a busy room; bounded in time only.
 * `complete` is false when the reading stopped before either (the budget ran out, or a
 * page failed): an id not found may then be in the part not read.
 */
export async function findInArchive(
  stream: ArchiveStream,
  room: string,
  nick: string,
  ids: ReadonlySet<string>,
  opts: { start: Date; clock: { now(): number }; budgetMs?: number; pageSize?: number },
): Promise<{ found: string[]; complete: boolean }> {
  const found = new Set<string>();
  const deadline = opts.clock.now() + (opts.budgetMs ?? 120_000);
  let after: string | undefined;
  for (let first = true; ; first = false) {
    // A page that fails ends the reading, but what earlier pages found still counts. The
    // first one failing says there is no archive to read (the caller's catch).
    const page = await readPage(stream, room, {
      start: opts.start,
      after,
      max: opts.pageSize ?? 250,
      timeoutMs: 10_000,
    }).catch((err: unknown) => {
      if (first) throw err;
      return undefined;
    });
    if (!page) return { found: [...found], complete: false };
    for (const m of page.messages) {
      if (m.nick === nick && m.id !== undefined && ids.has(m.id)) found.add(m.id);
    }
    after = page.next;
    if (after === undefined || found.size === ids.size)
      return { found: [...found], complete: true };
    if (opts.clock.now() >= deadline) return { found: [...found], complete: false };
  }
}
