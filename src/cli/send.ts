/**
 * `xmpp-msg-gw send`: what the old `xmpp_client.py -j -p -r -n "text"` did, but it
 * exits 0 only once the room has reflected the message back.
 */
import { randomUUID } from "node:crypto";
import { text as readAll } from "node:stream/consumers";
import type { Env } from "../config/env-file.ts";
import { loadMessageLimits } from "../config/index.ts";
import { messageByteLimit, splitMessage } from "../core/split.ts";
import { xmlSafe } from "../core/xml-safe.ts";
import { createLogger } from "../log.ts";
import { connectOnce } from "../xmpp/one-shot.ts";
import { clientSteps, connecting } from "./verbose.ts";
import { type ClientFlags, clientSettings } from "./xmpp-args.ts";

/** Sends the text (arguments, else stdin) to the room; resolves with the exit code. */
export async function send(env: Env, flags: ClientFlags, words: string[]): Promise<number> {
  const { settings, room, nick } = clientSettings(env, flags);
  const limits = loadMessageLimits(env);
  const text =
    words.length > 0 ? words.join(" ") : (await readAll(process.stdin)).replace(/\n$/, "");
  if (text.trim() === "") {
    process.stderr.write("xmpp-msg-gw send: no text given (as arguments or on stdin)\n");
    return 2;
  }
  const { log, step } = clientSteps({
    command: "send",
    settings,
    verbose: flags.verbose === true,
    out: process.stderr,
    quiet: createLogger,
  });
  let session: Awaited<ReturnType<typeof connectOnce>> | undefined;
  try {
    step(connecting(settings));
    session = await connectOnce({ settings, nick, rooms: [room], log });
    step(`joined ${room} as ${nick}`);
    // As `serve` does: XML 1.0 §2.2-safe, split to what the server accepts (XEP-0478).
    const maxBytes = messageByteLimit(limits.maxMessageBytes, [session.maxStanzaBytes]);
    const parts = splitMessage(xmlSafe(text), maxBytes, limits.maxMessageParts);
    for (const [i, part] of parts.entries()) {
      const id = randomUUID();
      const which = parts.length > 1 ? `part ${i + 1}/${parts.length}, ` : "";
      step(`sent message ${id} (${which}${Buffer.byteLength(part)} bytes) to ${room}`);
      await session.send(room, id, part);
      step(`confirmed: ${room} reflected message ${id} back`);
    }
    return 0;
  } catch (err) {
    process.stderr.write(`xmpp-msg-gw send: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await session?.stop();
  }
}
