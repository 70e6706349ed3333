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

/** Every archived message of `room` (since `start`), oldest first, up to `maxPages` pages. */
export async function readArchive(
  stream: ArchiveStream,
  room: string,
  opts: { start?: Date; pageSize?: number; maxPages?: number; timeoutMs?: number } = {},
): Promise<Archived[]> {
  const out: Archived[] = [];
  let after: string | undefined;
  for (let page = 0; page < (opts.maxPages ?? 100); page++) {
    const queryid = `mam-${++queries}`;
    const results: Archived[] = [];
    const off = stream.onStanza((stanza) => {
      const result = stanza.getChild("result", NS_MAM);
      if (result?.attrs.queryid !== queryid) return;
      const message = result.getChild("forwarded", NS_FORWARD)?.getChild("message");
      const body = message?.getChildText("body");
      if (!message || body === null || body === undefined) return;
      const from = message.attrs.from ?? "";
      results.push({
        nick: from.slice(from.indexOf("/") + 1),
        body,
        id: message.getChild("origin-id", "urn:xmpp:sid:0")?.attrs.id ?? message.attrs.id,
      });
    });
    let fin: Element | undefined;
    try {
      const reply = await stream.request(
        archiveQuery(room, queryid, { start: opts.start, after, max: opts.pageSize ?? 100 }),
        opts.timeoutMs ?? 10_000,
      );
      fin = reply.getChild("fin", NS_MAM);
    } finally {
      off();
    }
    out.push(...results);
    const last = fin?.getChild("set", NS_RSM)?.getChildText("last") ?? undefined;
    if (fin?.attrs.complete === "true" || !last || results.length === 0) break;
    after = last;
  }
  return out;
}
