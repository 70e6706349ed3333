/** `xmpp-msg-gw watch`: join a room and print each message as it arrives. */
import type { Env } from "../config/env-file.ts";
import { createLogger } from "../log.ts";
import { connectOnce } from "../xmpp/one-shot.ts";
import { clientSteps, connecting } from "./verbose.ts";
import { type ClientFlags, clientSettings } from "./xmpp-args.ts";

/** Prints `<nick> body` lines until SIGINT/SIGTERM; resolves with the exit code. */
export async function watch(env: Env, flags: ClientFlags): Promise<number> {
  const { settings, room, nick } = clientSettings(env, flags);
  const { log, step } = clientSteps({
    command: "watch",
    settings,
    verbose: flags.verbose === true,
    out: process.stderr,
    quiet: createLogger,
  });
  let session: Awaited<ReturnType<typeof connectOnce>>;
  try {
    step(connecting(settings));
    session = await connectOnce({
      settings,
      nick,
      rooms: [room],
      log,
      onRoomMessage: (m) => process.stdout.write(`<${m.nick}> ${m.body}\n`),
    });
  } catch (err) {
    process.stderr.write(`xmpp-msg-gw watch: ${(err as Error).message}\n`);
    return 1;
  }
  process.stderr.write(`watching ${room} as ${nick}; Ctrl-C to stop\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await session.stop();
  return 0;
}
