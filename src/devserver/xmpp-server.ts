// What every throwaway XMPP server of the integration tests offers, whichever implementation
// runs it, so that one test file can loop over Prosody and ejabberd alike.

import { type EjabberdServer, type StartEjabberdOptions, startEjabberd } from "./ejabberd.ts";
import { type ProsodyServer, type StartProsodyOptions, startProsody } from "./prosody.ts";

/** The servers a test can loop over, cheapest to start first. */
export const XMPP_SERVERS = ["prosody", "ejabberd"] as const;

/** Which XMPP server implementation runs a {@link XmppTestServer}. */
export type XmppServerKind = (typeof XMPP_SERVERS)[number];

/** A running throwaway XMPP server; everything it writes lives in `dir`, removed by `stop()`. */
export interface XmppTestServer {
  /** Which implementation this is, for the few assertions that differ between them. */
  kind: XmppServerKind;
  /** The virtual host users live on ("localhost"). */
  domain: string;
  /** The MUC service (XEP-0045) with MAM (XEP-0313), "conference.localhost". */
  mucDomain: string;
  /** Loopback address the server listens on ("127.0.0.1"). */
  host: string;
  /** Client port offering STARTTLS; encryption is required before auth. */
  c2sPort: number;
  /** Client port speaking TLS from the first byte (XEP-0368). */
  directTlsPort: number;
  /** PEM of the self-signed CA that signed the server certificate. */
  caFile: string;
  /** Temp dir holding config, data, certs and logs. */
  dir: string;
  /** PID of the current server process, so tests can check it is gone after stop(). */
  pid: number;
  /** The server's own log, the first thing to read when an integration test fails. */
  logFile: string;
  /** Creates an account on `domain` with the server's own admin tool. */
  register(user: string, password: string): Promise<void>;
  /** Stops and starts the server on the same ports and data, to test outages and reconnects. */
  restart(): Promise<void>;
  /** Takes the server down (SIGKILL with `crash`, else SIGTERM) and keeps its data for `start`. */
  down(opts?: { crash?: boolean }): Promise<void>;
  /** Starts the server again after `down`, on the same ports and data. */
  start(): Promise<void>;
  /** SIGTERM, SIGKILL after a bounded wait, then removes the temp dir; safe to call twice. */
  stop(): Promise<void>;
}

/** Options both servers understand; the rest are specific to each (see their start functions). */
export interface StartXmppServerOptions {
  /** Accounts to create before the server is handed out. */
  users?: Array<{ user: string; password: string }>;
}

/** Starts a throwaway server of the given kind, with that kind's options. */
export function startXmppServer(
  kind: "prosody",
  opts?: StartProsodyOptions,
): Promise<ProsodyServer>;
export function startXmppServer(
  kind: "ejabberd",
  opts?: StartEjabberdOptions,
): Promise<EjabberdServer>;
export function startXmppServer(
  kind: XmppServerKind,
  opts?: StartXmppServerOptions,
): Promise<XmppTestServer>;
export function startXmppServer(
  kind: XmppServerKind,
  opts: StartXmppServerOptions = {},
): Promise<XmppTestServer> {
  return kind === "prosody" ? startProsody(opts) : startEjabberd(opts);
}
