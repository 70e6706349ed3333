/**
 * The XMPP carrier: implements the delivery loop's port with one session per sender
 * nick (direct messages: a session of their own), joined to the rooms it sends to.
 */
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { XmppSettings } from "../config/index.ts";
import type { Clock } from "../core/clock.ts";
import { DIRECT_NICK, type XmppAccount } from "../core/routes.ts";
import type { Carrier, CarrierEvents } from "../delivery/port.ts";
import { createSession, resourceFor, type Session } from "./session.ts";
import type { Liveness } from "./stream.ts";

/** The carrier, and its sessions for room administration in tools and tests. */
export interface XmppCarrier extends Carrier {
  readonly sessions: ReadonlyMap<string, Session>;
  /** Adds sessions for nicks a reload brought, room passwords and the nicks' accounts. */
  extend(
    nicks: Iterable<string>,
    passwords: ReadonlyMap<string, string>,
    accounts?: ReadonlyMap<string, XmppAccount>,
  ): void;
}

/** The settings `nick` logs in with: its route's own account on the same server, if any. */
function settingsOf(settings: XmppSettings, account: XmppAccount | undefined): XmppSettings {
  if (account === undefined) return settings;
  const domain = account.jid.slice(account.jid.indexOf("@") + 1);
  return { ...settings, jid: account.jid, password: account.password, domain };
}

/** Creates the carrier for `nicks`, logging in with `settings` (or a nick's own account). */
export function createXmppCarrier(deps: {
  settings: XmppSettings;
  nicks: Iterable<string>;
  /** Room passwords (XEP-0045 §7.2.6) by room JID. */
  passwords: ReadonlyMap<string, string>;
  /**
   * Appended to each session's resource: `check` binds resources of its own, so that it
   * does not replace the sessions of a gateway running on the same account.
   */
  resourceSuffix?: string;
  /** The nicks sent from an account of their own (CONFIG_FILE `account`). */
  accounts?: ReadonlyMap<string, XmppAccount>;
  log: Logger;
  clock: Clock;
  liveness?: Liveness;
  selfPingMs?: number;
}): XmppCarrier {
  const events = new EventEmitter<CarrierEvents>();
  const sessions = new Map<string, Session>();
  const passwords = new Map(deps.passwords);
  const accounts = new Map(deps.accounts);
  const add = (nick: string) => {
    if (sessions.has(nick)) return;
    const lane = (room: string) => ({ room, nick });
    sessions.set(
      nick,
      createSession({
        settings: settingsOf(deps.settings, accounts.get(nick)),
        nick,
        ...(deps.resourceSuffix && { resource: `${resourceFor(nick)}${deps.resourceSuffix}` }),
        passwords,
        log: deps.log.child({ nick: nick === DIRECT_NICK ? "(direct)" : nick }),
        clock: deps.clock,
        liveness: deps.liveness,
        selfPingMs: deps.selfPingMs,
        report: {
          up: (info) => events.emit("up", nick, info),
          down: (fault) => events.emit("down", nick, fault),
          joined: (room, found) => events.emit("joined", lane(room), found),
          left: (room, fault) => events.emit("left", lane(room), fault),
          confirmed: (to, id, stanzaId) => events.emit("confirmed", lane(to), id, stanzaId),
          refused: (to, id, fault) => events.emit("refused", lane(to), id, fault),
        },
      }),
    );
  };
  for (const nick of deps.nicks) add(nick);
  return {
    sessions,
    connect: (nick) => sessions.get(nick)?.connect(),
    disconnect(nick) {
      const s = sessions.get(nick);
      if (!s?.stream) return;
      const fault = {
        kind: "network" as const,
        text: "closed: another gateway sends as this account",
      };
      s.close(1000).finally(() => events.emit("down", nick, fault));
    },
    join: (lane, lookFor) => sessions.get(lane.nick)?.join(lane.room, lookFor),
    send: (lane, id, body, extras) => sessions.get(lane.nick)?.send(lane.room, id, body, extras),
    on: (event, listener) => {
      events.on(event, listener as never);
    },
    async close(ms) {
      await Promise.allSettled([...sessions.values()].map((s) => s.close(ms)));
    },
    extend(nicks, more, moreAccounts) {
      for (const [room, pw] of more) passwords.set(room, pw);
      for (const [nick, account] of moreAccounts ?? []) accounts.set(nick, account);
      for (const nick of nicks) add(nick);
    },
  };
}
