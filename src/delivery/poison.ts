/**
 * Poison messages: a server that closes the stream right after a message (ejabberd's
 * "XML stanza is too big", without XEP-0478) is told apart from a flaky link by sending
 * that message again alone. Closed twice after the same message: it is the cause. A size
 * complaint also lowers the size later messages are split to.
 */
import type { Logger } from "pino";
import { escapedBytes, STANZA_OVERHEAD_BYTES } from "../core/split.ts";
import type { SpooledMessage } from "../spool/types.ts";
import { isChokedClose, isSizeComplaint } from "./classify.ts";
import type { StreamFault } from "./port.ts";

/**
 * Sizes a server is commonly configured to refuse above (Prosody 256 KiB, ejabberd's
 * recommended 64 KiB, RFC 6120 §13.12's floor of 10,000): the guess after a refusal.
 */
const COMMON_LIMITS = [262_144, 131_072, 65_536, 32_768, 16_384, 10_000];

/** What the poison check knows, per nick (one stream each). */
export interface PoisonCheck {
  /** The next send order of `nick`'s stream: the oldest unconfirmed is the suspect. */
  nextOrder(nick: string): number;
  /** The message `nick`'s stream was closed after once: it goes again alone. */
  suspect(nick: string): string | undefined;
  /** `m` left the queue (delivered or dead): it is nobody's suspect any more. */
  settled(m: SpooledMessage): void;
  /**
   * `nick`'s stream closed with `fault`, `oldest` its oldest unconfirmed message: the
   * reason to dead-letter `oldest` when it is the cause, else undefined.
   */
  closed(nick: string, oldest: SpooledMessage | undefined, fault: StreamFault): string | undefined;
  /** The stanza size learned from a server's size complaint, if any. */
  learnedMax(): number | undefined;
}

/** Creates the check; it logs what it suspects and what it learns. */
export function createPoisonCheck(log: Logger): PoisonCheck {
  const nicks = new Map<string, { order: number; suspect: string | undefined }>();
  let learned: number | undefined;
  const of = (nick: string) => {
    let n = nicks.get(nick);
    if (!n) {
      n = { order: 0, suspect: undefined };
      nicks.set(nick, n);
    }
    return n;
  };
  return {
    nextOrder: (nick) => of(nick).order++,
    suspect: (nick) => nicks.get(nick)?.suspect,
    settled(m) {
      const n = nicks.get(m.nick);
      if (n?.suspect === m.id) n.suspect = undefined;
    },
    closed(nick, m, fault) {
      if (!isChokedClose(fault) || m === undefined) return undefined;
      const n = of(nick);
      if (n.suspect !== m.id) {
        n.suspect = m.id;
        log.warn(
          { id: m.id, room: m.room, nick, fault },
          `the XMPP server closed the stream after message ${m.id}: ${fault.text}; it is sent again alone to tell whether it is the cause`,
        );
        return undefined;
      }
      const bytes = escapedBytes(m.body) + STANZA_OVERHEAD_BYTES;
      if (isSizeComplaint(fault) && bytes > 10_000) {
        const guess = COMMON_LIMITS.find((l) => l < bytes) ?? 10_000;
        learned = Math.min(learned ?? guess, guess);
        log.warn(
          { learnedMaxStanzaBytes: learned },
          `the XMPP server refused a ${bytes}-byte stanza: later messages are split to fit ${learned} bytes (set MAX_MESSAGE_BYTES to the server's limit to say it exactly)`,
        );
      }
      return `the XMPP server closed the stream twice right after this message: ${fault.text}`;
    },
    learnedMax: () => learned,
  };
}
