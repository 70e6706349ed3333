/**
 * Pure stanza builders and readers for what the gateway says in rooms. No I/O: the
 * exact stanzas are unit-tested here, the conversation is tested against Prosody.
 */
import { type Element, xml } from "@xmpp/xml";

/** XEP-0045 namespaces. */
export const NS_MUC = "http://jabber.org/protocol/muc";
export const NS_MUC_USER = "http://jabber.org/protocol/muc#user";
export const NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner";
/** XEP-0359 unique and stable stanza IDs. */
export const NS_SID = "urn:xmpp:sid:0";
/** XEP-0461 message replies. */
export const NS_REPLY = "urn:xmpp:reply:0";
/** XEP-0428 fallback indication. */
export const NS_FALLBACK = "urn:xmpp:fallback:0";
/** XEP-0444 message reactions. */
export const NS_REACTIONS = "urn:xmpp:reactions:0";
/** XEP-0334 message processing hints. */
export const NS_HINTS = "urn:xmpp:hints";
/** RFC 6120 §8.3.3 stanza error conditions. */
export const NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";

/** What a groupchat message may carry besides its body (issue 13: alert threads). */
export interface GroupchatExtras {
  /** XEP-0201 `<thread>` id: every message of one alert group shares it. */
  readonly thread?: string;
  /** XEP-0461 reply to a message of the room. */
  readonly reply?: {
    /** The occupant JID (room/nick) that sent the message replied to. */
    readonly to: string;
    /** The XEP-0359 stanza-id the room gave it: in a MUC, never the sender's own id (XEP-0461). */
    readonly id: string;
    /** Its text to quote for clients without replies, e.g. its first line. */
    readonly quote: string;
  };
}

/**
 * A groupchat message with `id` and XEP-0359 `origin-id` set to the same value: the room
 * reflects it back, and the reflection (matched by either) is the delivery confirmation.
 * A reply starts its body with the quote, each line as `> line` (XEP-0461's compatibility
 * fallback), and marks that part with an XEP-0428 fallback so that clients showing replies
 * hide it.
 */
export function groupchatMessage(
  room: string,
  id: string,
  body: string,
  extras: GroupchatExtras = {},
): Element {
  const { thread, reply } = extras;
  const quoted = reply === undefined ? "" : quoteLines(reply.quote);
  return xml(
    "message",
    { type: "groupchat", to: room, id },
    xml("body", {}, `${quoted}${body}`),
    thread === undefined ? null : xml("thread", {}, thread),
    reply === undefined ? null : xml("reply", { xmlns: NS_REPLY, to: reply.to, id: reply.id }),
    reply === undefined
      ? null
      : xml(
          "fallback",
          { xmlns: NS_FALLBACK, for: NS_REPLY },
          // XEP-0428: offsets count Unicode code points, not UTF-16 units or bytes.
          xml("body", { start: 0, end: [...quoted].length }),
        ),
    xml("origin-id", { xmlns: NS_SID, id }),
  );
}

/** `> line\n` for each line of `quote`: the quoted part of a reply's body. */
function quoteLines(quote: string): string {
  return quote
    .split(/\r?\n/)
    .map((line) => `> ${line}\n`)
    .join("");
}

/**
 * An XEP-0444 reaction (e.g. ✅) to the room's message `targetStanzaId` (in a MUC, the
 * stanza-id the room gave it, per XEP-0444's business rules). It has no body, so it asks to be archived anyway (XEP-0334
 * `<store/>`), and carries an origin-id, so that its reflection confirms it like a message.
 */
export function reactionMessage(
  room: string,
  id: string,
  targetStanzaId: string,
  emoji: string,
  thread?: string,
): Element {
  return xml(
    "message",
    { type: "groupchat", to: room, id },
    xml("reactions", { xmlns: NS_REACTIONS, id: targetStanzaId }, xml("reaction", {}, emoji)),
    thread === undefined ? null : xml("thread", {}, thread),
    xml("store", { xmlns: NS_HINTS }),
    xml("origin-id", { xmlns: NS_SID, id }),
  );
}

/** A direct message (type `chat`) with XEP-0359 origin-id, confirmed by the server's ack. */
export function chatMessage(to: string, id: string, body: string): Element {
  return xml(
    "message",
    { type: "chat", to, id },
    xml("body", {}, body),
    xml("origin-id", { xmlns: NS_SID, id }),
  );
}

/** Which room history to ask for when joining (XEP-0045 §7.2.14). */
export interface HistoryRequest {
  /** Only messages newer than this. */
  readonly since: Date;
  readonly maxstanzas: number;
}

/**
 * XEP-0045 §7.2: join `room` as `nick`. No history, unless we need it to tell which of
 * our unconfirmed messages already arrived (the dedupe check after a reconnect).
 */
export function joinPresence(
  room: string,
  nick: string,
  opts: { password?: string; history?: HistoryRequest } = {},
): Element {
  const history = opts.history
    ? xml("history", {
        maxstanzas: opts.history.maxstanzas,
        since: opts.history.since.toISOString(),
      })
    : xml("history", { maxstanzas: 0 });
  return xml(
    "presence",
    { to: `${room}/${nick}` },
    xml(
      "x",
      { xmlns: NS_MUC },
      history,
      opts.password === undefined ? null : xml("password", {}, opts.password),
    ),
  );
}

/** XEP-0410 §3: ping our own occupant to learn whether we are still in the room. */
export function selfPingIq(room: string, nick: string): Element {
  return xml("iq", { type: "get", to: `${room}/${nick}` }, xml("ping", { xmlns: "urn:xmpp:ping" }));
}

/** XEP-0045 §7.14: leave the room. */
export function leavePresence(room: string, nick: string): Element {
  return xml("presence", { to: `${room}/${nick}`, type: "unavailable" });
}

/** XEP-0045 §10.1.2: accept the default configuration, which unlocks a newly created room. */
export function instantRoomIq(room: string): Element {
  return xml(
    "iq",
    { type: "set", to: room },
    xml("query", { xmlns: NS_MUC_OWNER }, xml("x", { xmlns: "jabber:x:data", type: "submit" })),
  );
}

/** The MUC status codes (XEP-0045 §15.6) carried by a presence from a room. */
export function mucStatusCodes(presence: Element): number[] {
  const x = presence.getChild("x", NS_MUC_USER);
  if (!x) return [];
  return x.getChildren("status").map((s) => Number(s.attrs.code));
}

/** An RFC 6120 stanza error read off an error stanza. */
export interface StanzaError {
  /** `cancel`, `auth`, `modify`, `wait` or `continue`. */
  readonly type: string;
  /** The defined condition, e.g. `forbidden`, `conflict`, `item-not-found`. */
  readonly condition: string;
  readonly text: string | undefined;
}

/** Reads the `<error/>` child of an error stanza (RFC 6120 §8.3). */
export function stanzaError(stanza: Element): StanzaError {
  const error = stanza.getChild("error");
  const cond = error
    ?.getChildElements()
    .find((c) => c.attrs.xmlns === NS_STANZAS && c.name !== "text");
  const text = error?.getChildText("text", NS_STANZAS) ?? undefined;
  return {
    type: error?.attrs.type ?? "cancel",
    condition: cond?.name ?? "undefined-condition",
    text: text || undefined,
  };
}

/** The ids a reflected groupchat message can be matched by: its origin-id and its id. */
export function messageIds(message: Element): string[] {
  const ids: string[] = [];
  const origin = message.getChild("origin-id", NS_SID)?.attrs.id;
  if (origin) ids.push(origin);
  if (message.attrs.id && message.attrs.id !== origin) ids.push(message.attrs.id);
  return ids;
}

/**
 * The XEP-0359 stanza-id `room` gave a message it reflected: the `<stanza-id>` whose `by` is
 * the room's bare JID. Any sender can add one claiming another `by`; the room strips only
 * those claiming itself (XEP-0359 §2.1, §5), so only that one is trusted. Undefined when the
 * room gave none (it keeps no archive).
 */
export function roomStanzaId(message: Element, room: string): string | undefined {
  // JIDs compare case-insensitively in their local and domain parts (RFC 7622 §3.2, §3.3).
  const bare = (room.split("/")[0] ?? "").toLowerCase();
  const mine = message
    .getChildren("stanza-id", NS_SID)
    .find((s) => typeof s.attrs.by === "string" && s.attrs.by.toLowerCase() === bare);
  const id = mine?.attrs.id;
  return typeof id === "string" && id !== "" ? id : undefined;
}
