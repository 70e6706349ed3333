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

/** Classifies an error of xmpp.js or of the socket into a stream fault. */
export function faultOf(err: unknown, s: XmppSettings, refusal: Refusal): StreamFault {
  if (refusal.text !== undefined) return { kind: "security", text: refusal.text };
  const e = (err ?? {}) as NodeJS.ErrnoException & { condition?: string; text?: string };
  const code = e.code ?? "";
  if (e.name === "StreamError") {
    const words = e.text ? ` (${e.text})` : "";
    return {
      kind: "stream-error",
      condition: e.condition,
      text: `the XMPP server closed the stream: ${e.condition}${words}`,
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
  if (/CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS_CERT_ALTNAME/.test(code)) {
    return {
      kind: "security",
      text: `TLS certificate of ${s.domain} is not trusted (${code}: ${e.message}); refusing to connect. Set XMPP_CA_FILE to the PEM of the CA that signed it`,
    };
  }
  if (/^(ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN)$/.test(code)) {
    return {
      kind: "network",
      text: `cannot reach the XMPP server of ${s.domain} (${code}); check XMPP_HOST / XMPP_PORT`,
    };
  }
  if (e.name === "TimeoutError") {
    return {
      kind: "network",
      text: `the XMPP server at ${serviceUri(s)} accepted the connection but did not answer in time`,
    };
  }
  const message = e.message || String(err) || "unknown error";
  return { kind: "network", text: code ? `${message} (${code})` : message };
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
