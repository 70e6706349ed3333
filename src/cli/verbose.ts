/**
 * `send -v` and `watch -v`: the XMPP steps as the old `xmpp_client.py -v` showed them,
 * one line each on stderr: connecting, TLS, authenticated, joined, sent, confirmed.
 *
 * The stream reports no progress events, only its result; what it does on the way is in
 * its trace log (every element but SASL, see src/xmpp/stream.ts). So the verbose logger
 * runs at trace level and turns those records into the steps, without printing the XML;
 * every other record still goes out as a JSON line at the level asked for.
 */
import { type Logger, pino } from "pino";
import type { LogLevel, XmppSettings } from "../config/index.ts";
import { REDACT_PATHS } from "../log.ts";
import { MECHANISMS } from "../xmpp/client.ts";
import { serverAt } from "../xmpp/faults.ts";

/** Where the steps of one client command go. */
export interface Steps {
  /** The logger to give the XMPP session: it reports the TLS and login steps itself. */
  readonly log: Logger;
  /** Prints one step (a no-op when not verbose). */
  step(text: string): void;
}

const PINO_LEVELS: Record<string, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
};

/**
 * The steps of `command` (`send`, `watch`) for a session with `settings`: printed to
 * `out` when `verbose`, else only the logger at `settings.logLevel` on `out`.
 */
export function clientSteps(opts: {
  command: string;
  settings: XmppSettings;
  verbose: boolean;
  out: NodeJS.WritableStream;
  /** Logger for the quiet case (the CLI's usual one). */
  quiet: (level: LogLevel, out: NodeJS.WritableStream) => Logger;
}): Steps {
  const { command, settings, verbose, out } = opts;
  if (!verbose) return { log: opts.quiet(settings.logLevel, out), step: () => {} };
  const step = (text: string) => out.write(`xmpp-msg-gw ${command}: ${text}\n`);
  const shown = PINO_LEVELS[settings.logLevel] ?? Number.POSITIVE_INFINITY;
  const tls = tlsOf(settings);
  let stage: "tcp" | "starttls" | "secure" = settings.tls === "direct" ? "starttls" : "tcp";
  let mechanism: string | undefined;
  const onElement = (dir: "in" | "out", xml: string) => {
    // After <proceed/> (or from the first byte, for direct TLS), the next element travels
    // over TLS, which Node set up only once the certificate chain and name were verified.
    if (stage === "starttls") {
      stage = "secure";
      step(`TLS established by ${tls}; the certificate of ${settings.domain} is trusted`);
    }
    if (dir === "in" && /^<proceed\b[^>]*urn:ietf:params:xml:ns:xmpp-tls/.test(xml))
      stage = "starttls";
    const offered = [...xml.matchAll(/<mechanism>([^<]+)<\/mechanism>/g)].map((m) => m[1]);
    if (offered.length > 0) mechanism = MECHANISMS.find((m) => offered.includes(m));
    const bound = /<bind\b[^>]*urn:ietf:params:xml:ns:xmpp-bind[^>]*>\s*<jid>([^<]+)<\/jid>/.exec(
      xml,
    );
    if (dir === "in" && bound)
      step(`authenticated as ${bound[1]}${mechanism ? ` (${mechanism})` : ""}`);
  };
  const sink = {
    write(line: string) {
      let record: { level?: number; msg?: string; in?: string; out?: string };
      try {
        record = JSON.parse(line);
      } catch {
        return;
      }
      if (record.msg === "xmpp in" && record.in) onElement("in", record.in);
      else if (record.msg === "xmpp out" && record.out) onElement("out", record.out);
      if ((record.level ?? 0) >= shown) out.write(line);
    },
  };
  const log = pino(
    {
      level: "trace",
      base: { name: "xmpp-msg-gw" },
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    },
    sink,
  );
  return { log, step };
}

/** The first step: where the session connects, as which account, how it secures the stream. */
export function connecting(settings: XmppSettings): string {
  const where =
    settings.host !== undefined || settings.port !== undefined || settings.tls === "direct"
      ? serverAt(settings)
      : `${settings.domain} (found by DNS SRV; XMPP_HOST and XMPP_PORT override it)`;
  return `connecting to ${where} as ${settings.jid}, ${tlsOf(settings)}`;
}

const tlsOf = (s: XmppSettings) =>
  s.tls === "direct" ? "direct TLS (XEP-0368)" : "STARTTLS (RFC 6120 §5)";
