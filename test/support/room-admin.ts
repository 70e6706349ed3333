/**
 * What the tests do to rooms as their owner (XEP-0045 §9, §10) and how they read what a
 * room received from its archive (XEP-0313), which survives reconnects of the observer.
 */
import { xml } from "@xmpp/xml";
import type { Session } from "../../src/xmpp/session.ts";

const NS_MAM = "urn:xmpp:mam:2";
const NS_RSM = "http://jabber.org/protocol/rsm";

/** Kicks `nick` out of `room` (XEP-0045 §8.2); `owner` must be a moderator there. */
export async function kick(owner: Session, room: string, nick: string): Promise<void> {
  await owner.request(
    xml(
      "iq",
      { type: "set", to: room },
      xml(
        "query",
        { xmlns: "http://jabber.org/protocol/muc#admin" },
        xml("item", { nick, role: "none" }),
      ),
    ),
  );
}

/** Submits room configuration fields (XEP-0045 §10.2), e.g. members-only. */
export async function configureRoom(
  owner: Session,
  room: string,
  fields: Record<string, string>,
): Promise<void> {
  const field = (v: string, value: string) => xml("field", { var: v }, xml("value", {}, value));
  await owner.request(
    xml(
      "iq",
      { type: "set", to: room },
      xml(
        "query",
        { xmlns: "http://jabber.org/protocol/muc#owner" },
        xml(
          "x",
          { xmlns: "jabber:x:data", type: "submit" },
          field("FORM_TYPE", "http://jabber.org/protocol/muc#roomconfig"),
          ...Object.entries(fields).map(([k, v]) => field(k, v)),
        ),
      ),
    ),
  );
}

/** One archived groupchat message. */
export interface Archived {
  readonly nick: string;
  readonly body: string;
  readonly id: string | undefined;
}

/** Every message in the room's archive, oldest first, paging through it (XEP-0059). */
export async function roomArchive(session: Session, room: string): Promise<Archived[]> {
  const out: Archived[] = [];
  let after: string | undefined;
  for (let page = 0; page < 200; page++) {
    const queryid = `q${page}`;
    const results: Archived[] = [];
    const collect = (stanza: import("@xmpp/xml").Element) => {
      const result = stanza.getChild("result", NS_MAM);
      if (result?.attrs.queryid !== queryid) return;
      const message = result.getChild("forwarded", "urn:xmpp:forward:0")?.getChild("message");
      const body = message?.getChildText("body");
      if (!message || body === null || body === undefined) return;
      const from = message.attrs.from ?? "";
      results.push({
        nick: from.slice(from.indexOf("/") + 1),
        body,
        id: message.getChild("origin-id", "urn:xmpp:sid:0")?.attrs.id ?? message.attrs.id,
      });
    };
    const off = session.onStanza(collect);
    let fin: import("@xmpp/xml").Element;
    try {
      fin = await session.request(
        xml(
          "iq",
          { type: "set", to: room },
          xml(
            "query",
            { xmlns: NS_MAM, queryid },
            xml(
              "set",
              { xmlns: NS_RSM },
              xml("max", {}, "100"),
              after ? xml("after", {}, after) : null,
            ),
          ),
        ),
        20_000,
      );
    } finally {
      off();
    }
    out.push(...results);
    const set = fin.getChild("fin", NS_MAM)?.getChild("set", NS_RSM);
    const last = set?.getChildText("last") ?? undefined;
    if (fin.getChild("fin", NS_MAM)?.attrs.complete === "true" || !last || results.length === 0)
      break;
    after = last;
  }
  return out;
}
