/**
 * A minimal HTTP POST for the demo and the tests. Not `fetch`: the Fetch standard
 * blocks port 10080 (a "bad port"), which is the gateway's contractual port.
 */
import { request } from "node:http";

/** A reply: status, headers and body text. */
export interface PostReply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** POSTs `body` to `url` and resolves with the reply (rejects after `timeoutMs`). */
export function httpPost(
  url: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
  timeoutMs = 15_000,
): Promise<PostReply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        }),
      );
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no reply from ${url} within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}
