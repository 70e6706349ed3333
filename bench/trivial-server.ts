/**
 * The control for the load generator: a node:http server that reads the body and answers
 * 202 with a gateway-like JSON reply, doing nothing else. What the load generator reaches
 * against it is its own limit on this machine. Usage: `node bench/trivial-server.ts PORT`.
 */
import { createServer } from "node:http";

const REPLY = JSON.stringify({
  success: true,
  id: "00000000-0000-0000-0000-000000000000",
  status: "queued",
});
const port = Number(process.argv[2]);
createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(202, { "content-type": "application/json; charset=utf-8" });
    res.end(REPLY);
  });
}).listen(port, "127.0.0.1");
process.on("SIGTERM", () => process.exit(0));
