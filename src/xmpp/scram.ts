/**
 * SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677) on node:crypto. The mechanism that
 * ships with xmpp.js derives the salted password with one WebCrypto call per PBKDF2
 * iteration (0.4–0.6 s per login at Prosody's 10,000 iterations); PBKDF2 in OpenSSL
 * takes milliseconds. It also checks the server's signature, which the stock one skips:
 * a server that does not know the password cannot complete the login (mutual auth).
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";

type Hash = "sha1" | "sha256";

/** The saslmechanisms interface xmpp.js drives (`response` then `challenge`, in turns). */
export interface SaslMechanism {
  readonly name: string;
  readonly clientFirst: boolean;
  response(cred: { username: string; password: string }): string;
  challenge(chal: string): SaslMechanism;
}

/** What the client expects the server to prove in its final message (`v=`). */
export interface ServerProof {
  expected: string | undefined;
}

/** RFC 5802 §5.1: `=` and `,` in a user name are escaped as =3D and =2C. */
function saslname(name: string): string {
  return name.replace(/=/g, "=3D").replace(/,/g, "=2C");
}

/** Parses `k=v,k=v` attributes; values may themselves contain `=`. */
export function parseAttributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(",")) {
    const eq = part.indexOf("=");
    if (eq > 0) out.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return out;
}

const saltedCache = new Map<string, Buffer>();

/** Hi() of RFC 5802 §2.2 is PBKDF2 with HMAC; cached, so reconnects and sibling sessions pay once. */
function saltedPassword(hash: Hash, password: string, salt: Buffer, iterations: number): Buffer {
  const key = createHash("sha256")
    .update(`${hash}\0${iterations}\0${salt.toString("base64")}\0${password}`)
    .digest("base64");
  let salted = saltedCache.get(key);
  if (!salted) {
    salted = pbkdf2Sync(password, salt, iterations, hash === "sha1" ? 20 : 32, hash);
    if (saltedCache.size > 64) saltedCache.clear();
    saltedCache.set(key, salted);
  }
  return salted;
}

/**
 * A mechanism class for `hash`, reporting the server signature it expects to `proof`
 * (the caller compares it with the `<success/>` data, which xmpp.js does not pass on).
 */
export function scramMechanism(
  hash: Hash,
  proof: ServerProof,
  nonce: () => string = () => randomBytes(18).toString("base64"),
): new () => SaslMechanism {
  const name = hash === "sha1" ? "SCRAM-SHA-1" : "SCRAM-SHA-256";
  const hmac = (key: Buffer, data: string | Buffer) => createHmac(hash, key).update(data).digest();
  class Scram implements SaslMechanism {
    readonly name = name;
    readonly clientFirst = true;
    #stage: "first" | "final" | "done" = "first";
    #clientFirstBare = "";
    #serverFirst = "";

    response(cred: { username: string; password: string }): string {
      if (this.#stage === "first") {
        this.#clientFirstBare = `n=${saslname(cred.username)},r=${nonce()}`;
        this.#stage = "final";
        return `n,,${this.#clientFirstBare}`; // GS2 header: no channel binding, no authzid
      }
      if (this.#stage !== "final") return "";
      this.#stage = "done";
      const attrs = parseAttributes(this.#serverFirst);
      const serverNonce = attrs.get("r") ?? "";
      const clientNonce = parseAttributes(this.#clientFirstBare).get("r") ?? "";
      const iterations = Number(attrs.get("i"));
      // RFC 5802 §5.1: the server's nonce must extend ours, and i is at least 4096 (§9).
      if (!serverNonce.startsWith(clientNonce) || !(iterations >= 4096)) {
        throw new Error(`${name}: the server's first message is not valid SCRAM`);
      }
      const salted = saltedPassword(
        hash,
        cred.password,
        Buffer.from(attrs.get("s") ?? "", "base64"),
        iterations,
      );
      const clientKey = hmac(salted, "Client Key");
      const storedKey = createHash(hash).update(clientKey).digest();
      const withoutProof = `c=biws,r=${serverNonce}`;
      const authMessage = `${this.#clientFirstBare},${this.#serverFirst},${withoutProof}`;
      const signature = hmac(storedKey, authMessage);
      const clientProof = Buffer.from(clientKey.map((b, i) => b ^ (signature[i] as number)));
      proof.expected = hmac(hmac(salted, "Server Key"), authMessage).toString("base64");
      return `${withoutProof},p=${clientProof.toString("base64")}`;
    }

    challenge(chal: string): SaslMechanism {
      if (this.#stage === "final") this.#serverFirst = chal;
      return this;
    }
  }
  return Scram;
}

/** RFC 5802 §5.1 `v=`: true when the server's final message proves it knows the password. */
export function serverProofMatches(proof: ServerProof, serverFinal: string): boolean {
  const v = parseAttributes(serverFinal).get("v");
  if (proof.expected === undefined || v === undefined) return false;
  const a = Buffer.from(v, "base64");
  const b = Buffer.from(proof.expected, "base64");
  return a.length === b.length && timingSafeEqual(a, b);
}
