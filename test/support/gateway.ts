// The settings every test gateway shares: logged in to the throwaway Prosody as one of its
// accounts, trusting its CA, HTTP on a free loopback port. A test adds only what it is about.
// Also the settings of a plain XMPP client of that server, for probes, and the fast timing
// of reconnects the test gateways use.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { XmppSettings } from "../../src/config/index.ts";
import type { ProsodyServer } from "../../src/devserver/prosody.ts";
import { type Gateway, type GatewayOptions, startGateway } from "../../src/main.ts";

/** Reconnect fast in tests: 100 ms doubling to 1 s; pings every 2 s (the gateway's `timing`). */
export const FAST_TIMING = {
  backoff: { baseMs: 100, maxMs: 1000 },
  random: Math.random,
  pingIntervalMs: 2000,
  pingTimeoutMs: 3000,
};

/** An account registered on the test server. */
export interface Account {
  readonly user: string;
  readonly password: string;
}

/** Where `server` listens and the CA it is signed by; with `account`, also who logs in. */
export function xmppEnv(server: ProsodyServer, account?: Account): Record<string, string> {
  return {
    ...(account && {
      JID_FROM_USER: `${account.user}@${server.domain}`,
      JID_FROM_PASS: account.password,
    }),
    XMPP_HOST: server.host,
    XMPP_PORT: String(server.c2sPort),
    XMPP_CA_FILE: server.caFile,
  };
}

/** The environment of a gateway logged in to `server` as `account`, HTTP on a free port. */
export function gatewayEnv(server: ProsodyServer, account: Account): Record<string, string> {
  // A spool of its own: ./data would carry one run's messages and dedupe keys into the next.
  const DATA_DIR = mkdtempSync(join(tmpdir(), "gw-data-"));
  return { ...xmppEnv(server, account), HTTP_HOST: "127.0.0.1", HTTP_PORT: "0", DATA_DIR };
}

/** A client of `server` logging in as `account` over STARTTLS, trusting its CA, logging little. */
export function clientSettings(server: ProsodyServer, account: Account): XmppSettings {
  return {
    jid: `${account.user}@${server.domain}`,
    password: account.password,
    domain: server.domain,
    host: server.host,
    port: server.c2sPort,
    tls: "starttls",
    caFile: server.caFile,
    logLevel: "fatal",
  };
}

/** Starts an in-process gateway from {@link gatewayEnv} with `env` on top of it. */
export function startTestGateway(
  server: ProsodyServer,
  account: Account,
  env: Record<string, string>,
  opts?: GatewayOptions,
): Promise<Gateway> {
  return startGateway({ ...gatewayEnv(server, account), ...env }, opts);
}
