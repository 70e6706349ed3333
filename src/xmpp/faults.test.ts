import assert from "node:assert/strict";
import { test } from "node:test";
import { xml } from "@xmpp/xml";
import type { XmppSettings } from "../config/index.ts";
import { advertisedMaxBytes, faultOf, serverAt } from "./faults.ts";

const NS_STREAM = "http://etherx.jabber.org/streams";
const features = (...children: ReturnType<typeof xml>[]) =>
  xml("stream:features", { "xmlns:stream": NS_STREAM }, ...children);
const limits = (maxBytes: string) =>
  xml("limits", { xmlns: "urn:xmpp:stream-limits:0" }, xml("max-bytes", {}, maxBytes));

test("XEP-0478: max-bytes is read from the stream features", () => {
  assert.equal(advertisedMaxBytes(features(limits("262144"))), 262_144);
  assert.equal(advertisedMaxBytes(features(limits(" 10000\n"))), 10_000);
});

test("XEP-0478: no limits, another namespace or a bad number means not advertised", () => {
  assert.equal(advertisedMaxBytes(features()), undefined);
  assert.equal(
    advertisedMaxBytes(
      features(xml("limits", { xmlns: "urn:example" }, xml("max-bytes", {}, "9"))),
    ),
    undefined,
  );
  assert.equal(
    advertisedMaxBytes(features(xml("limits", { xmlns: "urn:xmpp:stream-limits:0" }))),
    undefined,
  );
  for (const bad of ["", "0", "-5", "1e6", "12.5", "lots", "99999999999999999999"]) {
    assert.equal(advertisedMaxBytes(features(limits(bad))), undefined, bad);
  }
});

const settings = (over: Partial<XmppSettings> = {}): XmppSettings => ({
  jid: "bot@example.org",
  password: "pw",
  domain: "example.org",
  host: "xmpp.example.org",
  port: 5222,
  tls: "starttls",
  caFile: undefined,
  logLevel: "fatal",
  ...over,
});
const coded = (code: string, message: string, extra: object = {}) =>
  Object.assign(new Error(message), { code }, extra);
const textOf = (err: unknown, s = settings()) => faultOf(err, s, { text: undefined }).text;

test("a certificate no trusted CA signed: with XMPP_CA_FILE set, the file in use is named", () => {
  const err = coded("UNABLE_TO_VERIFY_LEAF_SIGNATURE", "unable to verify the first certificate");
  assert.equal(
    textOf(err, settings({ caFile: "/etc/gw/ca.pem" })),
    "TLS certificate of example.org is not signed by the CA in XMPP_CA_FILE (/etc/gw/ca.pem) nor by one the system trusts (UNABLE_TO_VERIFY_LEAF_SIGNATURE); refusing to connect: point XMPP_CA_FILE at the CA that signed the server's certificate",
  );
  assert.equal(
    textOf(coded("SELF_SIGNED_CERT_IN_CHAIN", "self-signed certificate in certificate chain")),
    "TLS certificate of example.org is not trusted (SELF_SIGNED_CERT_IN_CHAIN: no CA the system trusts signed it); refusing to connect. Set XMPP_CA_FILE to the PEM of the CA that signed it",
  );
  assert.equal(faultOf(err, settings(), { text: undefined }).kind, "security");
});

test("a certificate for other names, or expired, says that, not 'set XMPP_CA_FILE'", () => {
  const altname = coded("ERR_TLS_CERT_ALTNAME_INVALID", "Hostname/IP does not match", {
    cert: { subjectaltname: "DNS:localhost, DNS:conference.localhost, IP Address:127.0.0.1" },
  });
  assert.equal(
    textOf(altname),
    "TLS certificate at xmpp.example.org:5222 is not for example.org but for localhost, conference.localhost, 127.0.0.1 (ERR_TLS_CERT_ALTNAME_INVALID): that server does not host example.org, or XMPP_HOST / XMPP_PORT point to another server; refusing to connect",
  );
  assert.equal(
    textOf(coded("CERT_HAS_EXPIRED", "certificate has expired")),
    "TLS certificate of example.org has expired (CERT_HAS_EXPIRED); refusing to connect: the server's certificate must be renewed",
  );
});

test("a domain the server does not host: host-unknown, or a refused TLS server name", () => {
  const streamError = Object.assign(new Error("host-unknown"), {
    name: "StreamError",
    condition: "host-unknown",
    text: "This server does not serve example.org",
  });
  const fault = faultOf(streamError, settings(), { text: undefined });
  assert.equal(fault.condition, "host-unknown");
  assert.equal(
    fault.text,
    "the XMPP server at xmpp.example.org:5222 does not host the domain example.org (host-unknown: This server does not serve example.org); check the domain of bot@example.org, and XMPP_HOST / XMPP_PORT",
  );
  const sni = coded(
    "ERR_SSL_TLSV1_UNRECOGNIZED_NAME",
    "40CD45B4637F0000:error:0A000458:SSL routines:ssl3_read_bytes:tlsv1 unrecognized name:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:918:SSL alert number 112\n",
  );
  assert.equal(
    textOf(sni, settings({ tls: "direct", port: 5223 })),
    "the XMPP server at xmpp.example.org:5223 does not host the domain example.org (it refused that TLS server name: ERR_SSL_TLSV1_UNRECOGNIZED_NAME); check the domain of bot@example.org, and XMPP_HOST / XMPP_PORT",
  );
});

test("OpenSSL's own words never reach the operator: one line with the code", () => {
  const err = coded(
    "ERR_SSL_PACKET_LENGTH_TOO_LONG",
    "40ED412C797F0000:error:0A0000C6:SSL routines:tls_get_more_records:packet length too long:../deps/openssl/openssl/ssl/record/methods/tls_common.c:655:\n",
  );
  assert.equal(
    textOf(err, settings({ tls: "direct", port: 5223 })),
    "the TLS handshake with xmpp.example.org:5223 failed (ERR_SSL_PACKET_LENGTH_TOO_LONG: packet length too long)",
  );
  assert.doesNotMatch(textOf(coded("EPIPE", "write EPIPE\nmore")), /\n/);
});

test("an error with no message still gets a reason", () => {
  const timeout = Object.assign(new Error(""), { name: "TimeoutError" });
  assert.match(textOf(timeout), /xmpp\.example\.org:5222 .*did not answer in time/);
  assert.notEqual(textOf(new Error("")), "");
  assert.notEqual(textOf(undefined), "");
});

test("where the server is: XMPP_HOST / XMPP_PORT, the default ports, or DNS SRV", () => {
  assert.equal(serverAt(settings()), "xmpp.example.org:5222");
  assert.equal(serverAt(settings({ port: undefined })), "xmpp.example.org:5222");
  assert.equal(serverAt(settings({ host: undefined, port: undefined })), "example.org (DNS SRV)");
  assert.equal(
    serverAt(settings({ host: undefined, port: undefined, tls: "direct" })),
    "example.org:5223",
  );
});
