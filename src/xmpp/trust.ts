/**
 * Which certificate authorities the XMPP connection trusts. xmpp.js has no TLS options,
 * so trust is set process-wide, once, at start-up: Node's bundled roots (which already
 * include any NODE_EXTRA_CA_CERTS, kept as they are), the system store, and XMPP_CA_FILE.
 */
import { readFileSync } from "node:fs";
import tls from "node:tls";
import { GatewayError } from "../core/errors.ts";

type CaApi = typeof tls & {
  getCACertificates?: (type: "default" | "system" | "bundled" | "extra") => string[];
  setDefaultCACertificates?: (certs: string[]) => void;
};

/** Splits a PEM bundle into its certificates; throws if there are none. */
export function pemCertificates(pem: string, file: string): string[] {
  const certs = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (certs.length === 0) {
    throw new GatewayError("CONFIG_INVALID", `XMPP_CA_FILE: ${file} holds no PEM certificate`);
  }
  return certs;
}

/** Makes TLS trust the default roots, the system store and the CAs in `caFile`, if given. */
export function configureTrust(caFile: string | undefined): void {
  // Never below TLS 1.2, whatever command-line flags (--tls-min-v1.0) said.
  if (tls.DEFAULT_MIN_VERSION !== "TLSv1.3") tls.DEFAULT_MIN_VERSION = "TLSv1.2";
  const api = tls as CaApi;
  if (!api.setDefaultCACertificates || !api.getCACertificates) {
    if (caFile === undefined) return; // Node's defaults stand
    throw new GatewayError(
      "CONFIG_INVALID",
      "XMPP_CA_FILE needs Node.js 22.19 / 24.5 or newer; on this Node set NODE_EXTRA_CA_CERTS instead",
    );
  }
  let extra: string[] = [];
  if (caFile !== undefined) {
    let pem: string;
    try {
      pem = readFileSync(caFile, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new GatewayError("CONFIG_INVALID", `XMPP_CA_FILE: cannot read ${caFile} (${code})`);
    }
    extra = pemCertificates(pem, caFile);
  }
  const certs = new Set([
    ...api.getCACertificates("default"),
    ...systemCertificates(api),
    ...extra,
  ]);
  api.setDefaultCACertificates([...certs]);
}

function systemCertificates(api: CaApi): string[] {
  try {
    return api.getCACertificates?.("system") ?? [];
  } catch {
    return []; // no readable system store: the bundled roots still apply
  }
}
