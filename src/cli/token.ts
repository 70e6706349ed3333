/** `xmpp-msg-gw token`: a new random token, URL-safe, 192 bits. */
import { randomBytes } from "node:crypto";

/** A fresh token: 32 URL-safe characters from 24 random bytes. */
export function newToken(): string {
  return randomBytes(24).toString("base64url");
}
