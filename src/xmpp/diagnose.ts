/**
 * Why a stream did not open, when the error itself does not say: a server that accepted
 * the connection and said nothing, or a port that speaks the other TLS mode (RFC 6120
 * §5 STARTTLS vs XEP-0368 direct TLS). A failure before the stream header is followed by
 * one short probe of the same port in the other mode; its answer replaces the socket's
 * words ("wrong version number", "ECONNRESET") with what to set.
 */
import net from "node:net";
import tls from "node:tls";
import type { StreamFault } from "../delivery/port.ts";

/** Where a stream attempt connected, and how far it got. */
export interface OpenProgress {
  /** The transport's address; undefined before DNS SRV found one. */
  peer: { host: string; port: number; direct: boolean } | undefined;
  /** The TCP connection was accepted. */
  tcp: boolean;
  /** A stream header came from the server (RFC 6120 §4.2). */
  header: boolean;
}

/** A duration for messages: "400 ms", "10 s". */
function duration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`;
}

/** What a server that stopped answering during the open had got to, after `ms`. */
export function silenceFault(p: OpenProgress, at: string, ms: number): StreamFault {
  const where = p.peer ? `${p.peer.host}:${p.peer.port}` : at;
  const text = !p.tcp
    ? `${where} did not accept a TCP connection within ${duration(ms)}; check XMPP_HOST / XMPP_PORT and the firewalls between`
    : !p.header
      ? `no stream header from ${where} within ${duration(ms)}: it accepted the connection and said nothing; check XMPP_HOST / XMPP_PORT`
      : `the XMPP server at ${where} sent a stream header but did not complete the login within ${duration(ms)}`;
  return { kind: "network", text };
}

/** What ended an attempt: the socket's error code, or the server closing it. */
export interface EarlyCause {
  readonly code?: string;
  readonly closed?: boolean;
}

/**
 * `fault` of an attempt that got a TCP connection and no stream header, explained by what
 * the port speaks when a probe in the other TLS mode can tell; else as it is, named better.
 */
export async function explainEarlyFailure(
  fault: StreamFault,
  cause: EarlyCause,
  p: OpenProgress,
  domain: string,
  probeMs: number,
): Promise<StreamFault> {
  const peer = p.peer;
  const specific = cause.code === "ERR_SSL_TLSV1_UNRECOGNIZED_NAME";
  if (peer === undefined || !p.tcp || p.header || fault.kind !== "network" || specific)
    return fault;
  const at = `${peer.host}:${peer.port}`;
  if (peer.direct) {
    if (!(await speaksXmpp(peer.host, peer.port, domain, probeMs))) return fault;
    return {
      kind: "network",
      text: `the XMPP server at ${at} speaks STARTTLS, not direct TLS: set XMPP_TLS=starttls, or XMPP_PORT to its direct-TLS port`,
    };
  }
  if (await speaksTls(peer.host, peer.port, domain, probeMs)) {
    return {
      kind: "network",
      text: `the XMPP server at ${at} speaks direct TLS, not STARTTLS: set XMPP_TLS=direct, or XMPP_PORT to its STARTTLS port`,
    };
  }
  if (cause.code !== "ECONNRESET" && cause.code !== "EPIPE" && !cause.closed) return fault;
  const how = cause.closed ? "closed the connection" : `reset the connection (${cause.code})`;
  return {
    kind: "network",
    text: `the XMPP server at ${at} ${how} before sending a stream header; check XMPP_HOST / XMPP_PORT and XMPP_TLS`,
  };
}

/**
 * True when `host:port` completes a TLS handshake. Only a ClientHello is sent, so the
 * certificate is not checked here: the real connection checks it, this only learns the mode.
 */
export function speaksTls(
  host: string,
  port: number,
  servername: string,
  ms: number,
): Promise<boolean> {
  return probe(ms, (done) => {
    const socket = tls.connect({ host, port, servername, rejectUnauthorized: false });
    socket.once("secureConnect", () => done(true));
    return socket;
  });
}

/** True when `host:port` answers an XMPP stream header with one of its own (RFC 6120 §4.2). */
export function speaksXmpp(
  host: string,
  port: number,
  domain: string,
  ms: number,
): Promise<boolean> {
  return probe(ms, (done) => {
    const socket = net.connect({ host, port });
    let seen = "";
    socket.once("connect", () =>
      socket.write(
        `<?xml version='1.0'?><stream:stream to='${domain.replace(/[^\w.:[\]-]/g, "")}' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`,
      ),
    );
    socket.on("data", (chunk: Buffer) => {
      seen = (seen + chunk.toString("latin1")).slice(0, 4096);
      if (/<(stream:)?stream[\s>]/.test(seen)) done(true);
    });
    return socket;
  });
}

/** Runs one probe for at most `ms`: false on any error, close or time-out; the socket is destroyed. */
function probe(ms: number, start: (done: (yes: boolean) => void) => net.Socket): Promise<boolean> {
  return new Promise((resolve) => {
    let socket: net.Socket | undefined;
    const done = (yes: boolean) => {
      clearTimeout(timer);
      socket?.destroy();
      resolve(yes);
    };
    const timer = setTimeout(() => done(false), ms);
    socket = start(done);
    socket.on("error", () => done(false));
    socket.on("close", () => done(false));
  });
}
