// HTTP/1.1 written byte for byte on a TCP socket: for the requests no HTTP client sends
// (malformed headers, broken chunking, no Host).
import { connect } from "node:net";

/** Writes `parts` on a fresh connection to `port`; resolves with one whole reply, or all read until it closed. */
export async function rawRequest(port: number, ...parts: Array<string | Buffer>): Promise<string> {
  const socket = connect(port, "127.0.0.1");
  socket.setTimeout(10_000, () => socket.destroy(new Error("no reply within 10 s")));
  const chunks: Buffer[] = [];
  socket.on("data", (c: Buffer) => {
    chunks.push(c);
    if (complete(Buffer.concat(chunks).toString("latin1"))) socket.destroy();
  });
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  socket.on("error", () => {}); // a reset after the reply is what some refusals do
  for (const part of parts) socket.write(part);
  await closed;
  return Buffer.concat(chunks).toString("latin1");
}

/** Whether `text` holds one whole reply with a Content-Length. */
function complete(text: string): boolean {
  const end = text.indexOf("\r\n\r\n");
  const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end));
  return end >= 0 && length !== null && text.length >= end + 4 + Number(length[1]);
}

/** Splits one raw HTTP/1.1 reply with a Content-Length into status, headers and body. */
export function parseReply(text: string): {
  status: number;
  headers: Map<string, string>;
  body: string;
} {
  const end = text.indexOf("\r\n\r\n");
  const [line = "", ...fields] = text.slice(0, end).split("\r\n");
  const headers = new Map(
    fields.map((f) => {
      const colon = f.indexOf(":");
      return [f.slice(0, colon).toLowerCase(), f.slice(colon + 1).trim()];
    }),
  );
  const length = Number(headers.get("content-length") ?? text.length);
  return {
    status: Number(line.split(" ")[1]),
    headers,
    body: text.slice(end + 4, end + 4 + length),
  };
}
