/**
 * `xmpp-msg-gw demo` (`npm run demo`): for people with no XMPP server yet. Starts a
 * throwaway local Prosody with a room, the gateway wired to it and a watcher in the
 * room, posts a sample message and shows it arriving, then keeps running for curl.
 */
import { randomBytes } from "node:crypto";
import { httpPost } from "../devserver/http-post.ts";
import { startProsody } from "../devserver/prosody.ts";
import { ListenError } from "../listen-error.ts";
import { createLogger } from "../log.ts";
import { startGateway } from "../main.ts";
import { connectOnce, type OneShot } from "../xmpp/one-shot.ts";

const SAMPLE = { title: "Test message", text: "Hello World!", tags: ["demo", "日本", "é"] };

/** Runs the demo; with `once`, exits 0 as soon as the sample arrived (used by the tests). */
export async function demo(opts: { once: boolean; httpPort?: number }): Promise<number> {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  out("demo: starting a throwaway Prosody on loopback …");
  const password = randomBytes(12).toString("base64url");
  const server = await startProsody({
    users: [
      { user: "gateway", password },
      { user: "watcher", password },
    ],
  });
  const room = `demo@${server.mucDomain}`;
  const token = randomBytes(12).toString("base64url");
  const xmppEnv = {
    XMPP_HOST: server.host,
    XMPP_PORT: String(server.c2sPort),
    XMPP_CA_FILE: server.caFile,
    JID_FROM_PASS: password,
  };
  const httpPort = String(opts.httpPort ?? process.env.HTTP_PORT ?? 10080);
  const gateway = await startGateway({
    ...xmppEnv,
    JID_FROM_USER: `gateway@${server.domain}`,
    KNOWN_ROOMS: `${token}:${room}:alerts`,
    HTTP_HOST: process.env.HTTP_HOST ?? "127.0.0.1",
    HTTP_PORT: httpPort,
    LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
    XMPP_LOG_LEVEL: process.env.XMPP_LOG_LEVEL ?? "warn",
  }).catch(async (err) => {
    await server.stop();
    // A second demo: say how to run it beside the first one.
    if (err instanceof ListenError && err.setting === "HTTP_PORT")
      throw new Error(`${err.message}, e.g. HTTP_PORT=${Number(httpPort) + 1} npm run demo`);
    throw err;
  });

  let arrived: () => void = () => {};
  const sampleArrived = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  let watcher: OneShot | undefined;
  const watch = () =>
    connectOnce({
      settings: {
        jid: `watcher@${server.domain}`,
        password,
        domain: server.domain,
        host: server.host,
        port: server.c2sPort,
        tls: "starttls",
        caFile: server.caFile,
        logLevel: "warn",
      },
      nick: "you",
      rooms: [room],
      log: createLogger("warn", process.stderr),
      onRoomMessage: (m) => {
        out(`\n[${room}] <${m.nick}>\n${m.body}\n`);
        arrived();
      },
    });
  const stopAll = async () => {
    await watcher?.stop();
    await gateway.stop();
    await server.stop();
  };
  try {
    watcher = await watch();
    const url = `${gateway.url}/post/${token}`;
    const curl = `curl -X POST ${url} -H 'Content-Type: application/json' -d '${JSON.stringify(SAMPLE)}'`;
    out(`demo: gateway on ${gateway.url}, room ${room}; posting:\n  ${curl}`);
    const res = await httpPost(url, JSON.stringify(SAMPLE), { "content-type": "application/json" });
    out(`demo: reply ${res.status} ${res.body}`);
    await Promise.race([
      sampleArrived,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error("the sample did not arrive within 10 s")), 10_000),
      ),
    ]);
  } catch (err) {
    await stopAll();
    const cause = (err as Error).cause;
    throw new Error(`${(err as Error).message}${cause ? `: ${cause}` : ""}`);
  }
  if (opts.once) {
    await stopAll();
    return 0;
  }
  out(
    `demo: it works. Post your own (Ctrl-C to stop):\n  curl -X POST ${gateway.url}/post/${token} -H 'Content-Type: text/plain' -d 'hello from curl'`,
  );
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await stopAll();
  return 0;
}
