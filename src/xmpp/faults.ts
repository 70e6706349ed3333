/**
 * What went wrong with a stream, as a fact for the delivery loop, in words an operator
 * can act on; and the bits of the stream features and settings those words need.
 */
import type { Element } from "@xmpp/xml";
import type { XmppSettings } from "../config/index.ts";
import type { StreamFault } from "../delivery/port.ts";

/** XEP-0478 Stream Limits Advertisement namespace. */
const NS_LIMITS = "urn:xmpp:stream-limits:0";

/** Why the gateway itself refused a server, which outranks the socket errors that follow. */
export interface Refusal {
  text: string | undefined;
}

/** Which service URI to connect to: `XMPP_HOST`/`XMPP_PORT` override DNS SRV. */
export function serviceUri(s: XmppSettings): string {
  if (s.tls === "direct") return `xmpps://${s.host ?? s.domain}:${s.port ?? 5223}`;
  if (s.host !== undefined || s.port !== undefined) {
    return `xmpp://${s.host ?? s.domain}:${s.port ?? 5222}`;
  }
  return s.domain; // @xmpp/resolve looks up _xmpp-client._tcp / _xmpps-client._tcp
}

/**
 * Where the server is, for messages: `host:port` from XMPP_HOST / XMPP_PORT or the
 * default ports (5222, direct TLS 5223), or the domain when DNS SRV finds it.
 */
export function serverAt(s: XmppSettings): string {
  if (s.tls === "direct") return `${s.host ?? s.domain}:${s.port ?? 5223}`;
  if (s.host !== undefined || s.port !== undefined)
    return `${s.host ?? s.domain}:${s.port ?? 5222}`;
  return `${s.domain} (DNS SRV)`;
}

/** RFC 6120 §13.7.2: certificate errors of Node and OpenSSL that mean "no trusted CA signed it". */
const UNTRUSTED =
  /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|CERT_UNTRUSTED|CERT_SIGNATURE_FAILURE|CERT_REJECTED)$/;
/** Stream error conditions that mean "this server does not serve that domain" (RFC 6120 §4.9.3). */
const NOT_HOSTED = new Set(["host-unknown", "host-gone"]);

/** Text of an error in one line: OpenSSL's messages carry a prefix, a source path and a newline. */
function oneLine(message: string): string {
  const ssl = /:SSL routines:[^:]*:([^:]+):/.exec(message);
  return (ssl ? (ssl[1] ?? "") : message).replace(/\s*\n\s*/g, " ").trim();
}

/** Classifies an error of xmpp.js or of the socket into a stream fault. */
export function faultOf(err: unknown, s: XmppSettings, refusal: Refusal): StreamFault {
  if (refusal.text !== undefined) return { kind: "security", text: refusal.text };
  const e = (err ?? {}) as NodeJS.ErrnoException & {
    condition?: string;
    text?: string;
    cert?: { subjectaltname?: string };
  };
  const code = e.code ?? "";
  const at = serverAt(s);
  const notHosted = (why: string): string =>
    `the XMPP server at ${at} does not host the domain ${s.domain} (${why}); check the domain of ${s.jid}, and XMPP_HOST / XMPP_PORT`;
  if (e.name === "StreamError") {
    const words = e.text ? ` (${e.text})` : "";
    const condition = e.condition ?? "undefined-condition";
    return {
      kind: "stream-error",
      condition: e.condition,
      text: NOT_HOSTED.has(condition)
        ? notHosted(e.text ? `${condition}: ${e.text}` : condition)
        : `the XMPP server closed the stream: ${condition}${words}`,
    };
  }
  if (e.name === "SASLError") {
    const said = e.text ? ` (the server says: ${e.text})` : "";
    const text =
      e.condition === "not-authorized"
        ? `authentication failed for ${s.jid}: not-authorized — check JID_FROM_PASS${said}`
        : `authentication failed for ${s.jid}: ${e.condition}${said}`;
    return { kind: "auth", condition: e.condition, text };
  }
  const certificate = `TLS certificate of ${s.domain}`;
  if (UNTRUSTED.test(code)) {
    return {
      kind: "security",
      text:
        s.caFile === undefined
          ? `${certificate} is not trusted (${code}: no CA the system trusts signed it); refusing to connect. Set XMPP_CA_FILE to the PEM of the CA that signed it`
          : `${certificate} is not signed by the CA in XMPP_CA_FILE (${s.caFile}) nor by one the system trusts (${code}); refusing to connect: point XMPP_CA_FILE at the CA that signed the server's certificate`,
    };
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    const names = (e.cert?.subjectaltname ?? "").replace(/\b(DNS|IP Address):/g, "");
    const but = names === "" ? "" : ` but for ${names}`;
    return {
      kind: "security",
      text: `TLS certificate at ${at} is not for ${s.domain}${but} (${code}): that server does not host ${s.domain}, or XMPP_HOST / XMPP_PORT point to another server; refusing to connect`,
    };
  }
  if (code === "CERT_HAS_EXPIRED") {
    return {
      kind: "security",
      text: `${certificate} has expired (${code}); refusing to connect: the server's certificate must be renewed`,
    };
  }
  if (code === "CERT_NOT_YET_VALID") {
    return {
      kind: "security",
      text: `${certificate} is not valid yet (${code}); refusing to connect: check the clocks of this machine and of the server`,
    };
  }
  if (/CERT/.test(code)) {
    return {
      kind: "security",
      text: `${certificate} is not acceptable (${code}: ${oneLine(e.message)}); refusing to connect`,
    };
  }
  if (code === "ERR_SSL_TLSV1_UNRECOGNIZED_NAME") {
    return { kind: "network", text: notHosted(`it refused that TLS server name: ${code}`) };
  }
  if (code.startsWith("ERR_SSL_")) {
    return {
      kind: "network",
      text: `the TLS handshake with ${at} failed (${code}: ${oneLine(e.message)})`,
    };
  }
  if (/^(ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN)$/.test(code)) {
    return {
      kind: "network",
      text: `cannot reach the XMPP server of ${s.domain} at ${at} (${code}); check XMPP_HOST / XMPP_PORT`,
    };
  }
  if (e.name === "TimeoutError") {
    return {
      kind: "network",
      text: `the XMPP server at ${at} accepted the connection but did not answer in time`,
    };
  }
  const message = oneLine(e.message || String(err ?? "")) || e.name || "unknown error";
  return {
    kind: "network",
    text: code && !message.includes(code) ? `${message} (${code})` : message,
  };
}

/**
 * XEP-0478: `<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>N</max-bytes></limits>`
 * in stream features; undefined when absent or not a positive integer.
 */
export function advertisedMaxBytes(features: Element): number | undefined {
  const text = features.getChild("limits", NS_LIMITS)?.getChildText("max-bytes")?.trim();
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n > 0 && Number.isSafeInteger(n) ? n : undefined;
}
