/**
 * What the tests do to rooms as their owner (XEP-0045 §9, §10) and how they read what a
 * room received from its archive (XEP-0313), which survives reconnects of the observer.
 * Archived: see src/xmpp/archive.ts.
 */
import { xml } from "@xmpp/xml";
import { type Archived, readArchive } from "../../src/xmpp/archive.ts";
import type { Session } from "../../src/xmpp/session.ts";

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

/** Every message in the room's archive, oldest first. */
export function roomArchive(session: Session, room: string): Promise<Archived[]> {
  return readArchive(session, room, { timeoutMs: 20_000, maxPages: 200 });
}
