/**
 * One xmpp.js client entity for one stream attempt, composed from xmpp.js's packages as
 * `@xmpp/client` composes them (STYLE rule 13), with what the gateway does differently:
 * - no `@xmpp/reconnect`: the delivery loop decides when to connect again, and every
 *   attempt gets a fresh entity, so nothing of an old stream can touch a new one;
 * - its own SASL factory: SCRAM on node:crypto first, PLAIN only inside TLS;
 * - transports whose sockets it keeps, so that a teardown destroys them (xmpp.js's own
 *   disconnect detaches the parser and leaves the socket open);
 * - direct TLS that verifies the certificate against the XMPP domain (XEP-0368 §2);
 * - no WebSocket, SASL2, FAST or Bind2.
 */
import type net from "node:net";
import { Client } from "@xmpp/client-core";
import TcpSocket from "@xmpp/connection-tcp/Socket.js";
import iqCallee from "@xmpp/iq/callee.js";
import iqCaller from "@xmpp/iq/caller.js";
import middleware from "@xmpp/middleware";
import resolve from "@xmpp/resolve";
import resourceBinding from "@xmpp/resource-binding";
import sasl from "@xmpp/sasl";
import saslPlain from "@xmpp/sasl-plain";
import starttls from "@xmpp/starttls";
import streamFeatures from "@xmpp/stream-features";
import streamManagement from "@xmpp/stream-management";
import ConnectionTCP from "@xmpp/tcp/lib/Connection.js";
import ConnectionTLS from "@xmpp/tls/lib/Connection.js";
import TlsSocket from "@xmpp/tls/lib/Socket.js";
import SASLFactory from "saslmechanisms";
import type { OpenProgress } from "./diagnose.ts";
import { type ServerProof, scramMechanism } from "./scram.ts";

/** SASL mechanisms in the order the gateway prefers them (RFC 7677 before RFC 5802). */
export const MECHANISMS = ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"] as const;

/** A composed entity and the parts of it the stream lifecycle drives. */
export interface ComposedClient {
  readonly entity: Client;
  readonly iqCaller: { request(stanza: Element, timeout?: number): Promise<Element> };
  readonly streamManagement: import("@xmpp/client").StreamManagement;
  /** What the server must prove at the end of SCRAM (RFC 5802 §5.1). */
  readonly scramProof: ServerProof;
  /** Where the transport connected and how far it got (`header` is the caller's to set). */
  readonly progress: OpenProgress;
  /**
   * Connects and opens the stream; login and binding follow, then `online`. Rejects with
   * the first error of the connect or the open.
   */
  start(): Promise<void>;
  /** Destroys every socket this entity opened: nothing of it can read or write again. */
  destroy(): void;
}

/** The steps of `Connection#start`, which @xmpp/reconnect takes too (public methods). */
type Steps = {
  connect(service: string): Promise<void>;
  open(o: { domain: string; lang?: string }): Promise<void>;
};

type Element = import("@xmpp/xml").Element;

/** Composes an entity for `service` (an `xmpp://` or `xmpps://` URI, or a domain for SRV). */
export function composeClient(opts: {
  service: string;
  domain: string;
  resource: string;
  /** Stream open and close time-out of xmpp.js, in ms. */
  timeoutMs: number;
  /** Picks the mechanism and authenticates, as xmpp.js's `credentials` option does. */
  credentials: (
    authenticate: (
      creds: { username: string; password: string },
      mechanism: string,
    ) => Promise<void>,
    mechanisms: string[],
    entity: Client,
  ) => Promise<void>;
}): ComposedClient {
  const sockets = new Set<net.Socket>();
  const progress: OpenProgress = { peer: undefined, tcp: false, header: false };
  const peerOf = (params: Record<string, unknown> | undefined, direct: boolean) => {
    if (params) progress.peer = { host: String(params.host), port: Number(params.port), direct };
    return params;
  };
  const accepted = () => {
    progress.tcp = true;
  };
  // Each attempt gets its own transport classes, so their sockets are this entity's.
  class Tcp extends ConnectionTCP {
    override socketParameters(service: string) {
      return peerOf(super.socketParameters(service), false);
    }
  }
  Tcp.prototype.Socket = class extends TcpSocket {
    constructor(...args: unknown[]) {
      super(...args);
      sockets.add(this);
      this.once("connect", accepted);
    }
  };
  class DirectTls extends ConnectionTLS {
    override socketParameters(service: string) {
      const params = peerOf(super.socketParameters(service), true);
      return params && { ...params, servername: opts.domain, minVersion: "TLSv1.2" };
    }
  }
  DirectTls.prototype.Socket = class extends TlsSocket {
    override connect(params: unknown) {
      super.connect(params);
      if (this.socket) sockets.add(this.socket);
      this.socket?.once("connect", accepted);
    }
  };

  const entity = new Client({
    service: opts.service,
    domain: opts.domain,
    timeout: opts.timeoutMs,
  });
  entity.transports.push(Tcp, DirectTls);
  resolve({ entity }); // DNS SRV (RFC 6120 §3.2.1) when no XMPP_HOST/XMPP_PORT is set
  const mw = middleware({ entity });
  const features = streamFeatures({ middleware: mw });
  const caller = iqCaller({ middleware: mw, entity });
  const callee = iqCallee({ middleware: mw, entity });
  // XEP-0199: a server's ping is answered.
  callee.get("urn:xmpp:ping", "ping", () => ({}));

  const scramProof: ServerProof = { expected: undefined };
  const factory = new SASLFactory();
  factory.use("SCRAM-SHA-256", scramMechanism("sha256", scramProof));
  factory.use("SCRAM-SHA-1", scramMechanism("sha1", scramProof));
  saslPlain(factory);

  starttls({ streamFeatures: features });
  sasl({ streamFeatures: features, saslFactory: factory }, (authenticate, mechanisms, _fast, e) =>
    opts.credentials(authenticate, mechanisms, e),
  );
  const sm = streamManagement({ streamFeatures: features, entity, middleware: mw });
  resourceBinding({ iqCaller: caller, streamFeatures: features }, opts.resource);

  return {
    entity,
    iqCaller: caller,
    streamManagement: sm,
    scramProof,
    progress,
    async start() {
      // Not entity.start(): it waits for `online` with a promise of its own that nobody
      // handles when the open fails before the stream header (a server resetting the
      // connection, a TLS mode mismatch), and an unhandled rejection ends the process.
      const steps = entity as unknown as Steps;
      await steps.connect(opts.service);
      await steps.open({ domain: opts.domain });
    },
    destroy() {
      // The TLS socket over a STARTTLS upgrade first: it may hold decrypted data.
      const current = (entity.socket as { socket?: net.Socket | null } | null)?.socket;
      current?.destroy();
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
  };
}
