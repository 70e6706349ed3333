/**
 * The minimal sender that measures the server's own ceiling: one TLS stream written by
 * hand on node:tls (RFC 6120: STARTTLS §5, SASL PLAIN §6, resource binding §7), joined to
 * a room (XEP-0045 §7.2, self-presence status 110), then pre-serialised groupchat
 * messages written as fast as the socket takes them. It is a measuring instrument, not
 * product code: the only "parser" is a scanner for the few answers it waits for and for
 * the ids of its own reflected messages. No stream management, no XML library.
 */
import { readFileSync } from "node:fs";
import net from "node:net";
import tls from "node:tls";
import type { XmppSettings } from "../src/config/index.ts";
import { messageBody } from "./xmpp.ts";

/** A logged-in, joined raw stream. */
export interface MinimalClient {
  /** Queues stanzas; they are written together at the end of the current tick. */
  queue(xml: string): void;
  /** Writes `xml` now; resolves once the socket has taken it (its 'drain' when full). */
  write(xml: string): Promise<void>;
  /** Called with the seq of each of this client's own messages the room reflects. */
  onReflection: ((seq: number) => void) | undefined;
  /** Own messages the room refused (`type='error'`). */
  readonly refused: number;
  /** Leaves every room and closes the stream. */
  stop(): Promise<void>;
}

const NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner";

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** The stanza for message `seq` into `room`, serialised once; its id is `m<seq>`. */
export function groupchat(room: string, seq: number): string {
  return `<message type='groupchat' to='${room}' id='m${seq}'><body>${esc(messageBody(seq))}</body></message>`;
}

/** Room configuration (XEP-0045 §10.2) submitted when this client creates a room. */
export type RoomConfig = Record<string, string>;

/**
 * Connects, logs in and joins `rooms` (room JID → configuration to submit if the join
 * creates it; an empty object accepts the defaults, i.e. an instant room).
 */
export async function connectMinimal(
  settings: XmppSettings,
  nick: string,
  rooms: Record<string, RoomConfig>,
): Promise<MinimalClient> {
  const [user] = settings.jid.split("@");
  const header = `<?xml version='1.0'?><stream:stream to='${settings.domain}' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`;
  const plain = net.connect({
    host: settings.host ?? settings.domain,
    port: settings.port ?? 5222,
  });
  plain.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    plain.once("connect", resolve);
    plain.once("error", reject);
  });
  let text = "";
  let waiter: { re: RegExp; resolve(m: RegExpExecArray): void; reject(e: Error): void } | undefined;
  let failed: Error | undefined;
  const check = () => {
    const bad =
      /<(stream:error|failure)[\s>][\s\S]*?<\/\1>|<iq[^>]*type='error'[\s\S]*?<\/iq>/.exec(text);
    if (bad && waiter) {
      waiter.reject(new Error(`minimal client: the server said ${bad[0].slice(0, 300)}`));
      waiter = undefined;
      return;
    }
    const m = waiter?.re.exec(text);
    if (m && waiter) {
      text = text.slice(m.index + m[0].length);
      const w = waiter;
      waiter = undefined;
      w.resolve(m);
    }
  };
  const until = (re: RegExp, what: string) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      if (failed) return reject(failed);
      const timer = setTimeout(() => reject(new Error(`minimal client: no ${what}`)), 10_000);
      waiter = {
        re,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      check();
    });
  const feed = (chunk: string) => {
    text += chunk;
    check();
  };
  const lost = (err: Error) => {
    failed = err;
    waiter?.reject(err);
  };
  // No setEncoding on the plain socket: the TLS layer takes its handle over afterwards.
  const feedPlain = (chunk: Buffer) => feed(chunk.toString("latin1"));
  plain.on("data", feedPlain);
  plain.on("error", lost);

  // RFC 6120 §5.4: STARTTLS, then a fresh stream over TLS; the certificate must verify.
  plain.write(header);
  await until(/<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/, "STARTTLS offer");
  await until(/<\/stream:features>/, "end of the features");
  plain.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
  await until(/<proceed[^>]*\/>/, "STARTTLS proceed");
  plain.removeListener("data", feedPlain);
  const socket = tls.connect({
    socket: plain,
    servername: settings.domain,
    ca: settings.caFile ? readFileSync(settings.caFile) : undefined,
    minVersion: "TLSv1.2",
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("secureConnect", resolve);
    socket.once("error", reject);
  });
  text = "";
  socket.setEncoding("utf8");
  socket.on("error", lost);

  // Reflections of our own messages are counted by a scanner over complete <message> tags.
  const mine = new RegExp(` from='[^']*/${nick}'`);
  let refused = 0;
  let scanning = false;
  let tail = "";
  const scan = (chunk: string) => {
    let buf = tail + chunk;
    let i = 0;
    for (;;) {
      const s = buf.indexOf("<message", i);
      if (s < 0) {
        tail = buf.slice(Math.max(i, buf.length - 8));
        return;
      }
      const e = buf.indexOf(">", s);
      if (e < 0) {
        tail = buf.slice(s);
        return;
      }
      const tag = buf.slice(s, e);
      const id = / id='m(\d+)'/.exec(tag);
      if (id && mine.test(tag)) {
        if (tag.includes("type='error'")) refused++;
        else client.onReflection?.(Number(id[1]));
      }
      i = e + 1;
      if (i > 65_536) {
        buf = buf.slice(i);
        i = 0;
      }
    }
  };
  socket.on("data", (chunk: string) => (scanning ? scan(chunk) : feed(chunk)));

  // RFC 6120 §6: SASL PLAIN, only ever over the verified TLS stream.
  socket.write(header);
  const features = (await until(/<stream:features[\s\S]*?<\/stream:features>/, "features"))[0];
  if (!/<mechanism>PLAIN<\/mechanism>/.test(features)) {
    throw new Error(`minimal client: the server offers no SASL PLAIN: ${features}`);
  }
  const creds = Buffer.from(`\0${user}\0${settings.password}`).toString("base64");
  socket.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${creds}</auth>`);
  await until(/<success[^>]*(\/>|>[\s\S]*?<\/success>)/, "SASL success");
  // RFC 6120 §6.4.6 and §7: a fresh stream, then bind a resource.
  socket.write(header);
  await until(/<stream:features[\s\S]*?<\/stream:features>/, "features after SASL");
  socket.write(
    "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>bench-minimal</resource></bind></iq>",
  );
  await until(/<iq[^>]*id='bind1'[\s\S]*?<\/iq>/, "resource binding");

  // XEP-0045 §7.2: join; the self-presence carries status 110 (and 201 if we created it).
  for (const [room, config] of Object.entries(rooms)) {
    socket.write(
      `<presence to='${room}/${nick}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`,
    );
    const self = (
      await until(
        new RegExp(`<presence[^>]*from='${room}/${nick}'[\\s\\S]*?</presence>`),
        `self-presence from ${room}`,
      )
    )[0];
    if (!/code='110'/.test(self)) throw new Error(`minimal client: joining ${room}: ${self}`);
    if (/code='201'/.test(self)) {
      // XEP-0045 §10.1.3: a new room stays locked until its owner submits a configuration.
      const fields = Object.entries({
        FORM_TYPE: "http://jabber.org/protocol/muc#roomconfig",
        ...config,
      })
        .map(([k, v]) => `<field var='${k}'><value>${esc(v)}</value></field>`)
        .join("");
      socket.write(
        `<iq type='set' to='${room}' id='cfg1'><query xmlns='${NS_MUC_OWNER}'><x xmlns='jabber:x:data' type='submit'>${fields}</x></query></iq>`,
      );
      await until(/<iq[^>]*id='cfg1'[\s\S]*?(\/>|<\/iq>)/, `configuration of ${room}`);
    }
  }
  scanning = true;
  scan(text);
  text = "";

  let pending = "";
  const flush = () => {
    const out = pending;
    pending = "";
    socket.write(out);
  };
  const client: MinimalClient = {
    onReflection: undefined,
    get refused() {
      return refused;
    },
    queue(xml) {
      if (pending === "") process.nextTick(flush);
      pending += xml;
    },
    write(xml) {
      if (failed) return Promise.reject(failed);
      if (socket.write(xml)) return Promise.resolve();
      return new Promise((resolve) => socket.once("drain", resolve));
    },
    async stop() {
      const leave = Object.keys(rooms)
        .map((room) => `<presence to='${room}/${nick}' type='unavailable'/>`)
        .join("");
      socket.end(`${leave}</stream:stream>`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          socket.destroy();
          resolve();
        }, 2000);
        socket.once("close", () => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
  return client;
}
