/**
 * Shared by `send` and `watch`: the old `xmpp_client.py -j JID -p PASS -r ROOM -n NICK`
 * flags, falling back to the gateway's own environment.
 */
import type { Env } from "../config/env-file.ts";
import { ConfigError, loadXmppSettings, type XmppSettings } from "../config/index.ts";
import { configureTrust } from "../xmpp/trust.ts";

/** Flags of the client commands. */
export interface ClientFlags {
  jid?: string;
  password?: string;
  room?: string;
  nick?: string;
  /** Print each XMPP step on stderr (`-v`). */
  verbose?: boolean;
}

/** Validated settings, room and nick for a client command; throws ConfigError. */
export function clientSettings(
  env: Env,
  flags: ClientFlags,
): { settings: XmppSettings; room: string; nick: string } {
  const settings = loadXmppSettings({
    ...env,
    JID_FROM_USER: flags.jid ?? env.JID_FROM_USER,
    JID_FROM_PASS: flags.password ?? env.JID_FROM_PASS,
  });
  const room = flags.room?.trim().toLowerCase();
  if (!room || !/^[^\s@/]+@[^\s@/]+$/.test(room)) {
    throw new ConfigError([
      {
        setting: "--room",
        message: `expected a room JID like ops@conference.example.org${room ? ` (got "${room}")` : ""}`,
      },
    ]);
  }
  configureTrust(settings.caFile);
  return { settings, room, nick: flags.nick ?? settings.jid.split("@")[0] ?? "xmpp-msg-gw" };
}
