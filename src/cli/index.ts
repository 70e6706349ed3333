/**
 * `xmpp-msg-gw <command>`: argv → subcommand. Thin: each command lives in its own file.
 */
import { parseArgs } from "node:util";
import { withEnvFiles } from "../config/env-file.ts";
import { ConfigError } from "../config/index.ts";
import { SPOOL_USAGE } from "./spool.ts";

/** Usage text printed by `--help` and on a usage error. */
export const USAGE = `Usage: xmpp-msg-gw [command] [options]

Commands:
  serve              run the gateway (default): HTTP on :10080 → XMPP rooms
  send [text…]       post one message to a room and wait until the room confirms it
                     -j/--jid JID -p/--password PASS -r/--room ROOM -n/--nick NICK
                     (text from the arguments, or from stdin when there are none)
  watch              join a room and print each message that arrives
                     -j/--jid JID -p/--password PASS -r/--room ROOM -n/--nick NICK
  token              print a new random token for KNOWN_ROOMS
  check              validate the configuration, log in, join every room, report;
                     exits 1 on a problem (2 for an invalid configuration)
  demo               start a throwaway local Prosody and a gateway, post a sample
                     message and show it arriving (--once: exit after it arrived)
${SPOOL_USAGE}

Settings come from the environment, then ./.env, then ./.pyenv (see README.md).
-j and -p default to JID_FROM_USER and JID_FROM_PASS.`;

/** Runs the CLI; resolves with the exit code (serve keeps running and resolves with -1). */
export async function runCli(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      jid: { type: "string", short: "j" },
      password: { type: "string", short: "p" },
      room: { type: "string", short: "r" },
      nick: { type: "string", short: "n" },
      once: { type: "boolean" },
      all: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  const [command = "serve", ...rest] = positionals;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const fullEnv = withEnvFiles(env, process.cwd());
  try {
    switch (command) {
      case "serve": {
        const { serve } = await import("../main.ts");
        await serve(() => withEnvFiles(env, process.cwd()));
        return -1;
      }
      case "token": {
        const { newToken } = await import("./token.ts");
        process.stdout.write(`${newToken()}\n`);
        return 0;
      }
      case "send": {
        const { send } = await import("./send.ts");
        return await send(fullEnv, values, rest);
      }
      case "watch": {
        const { watch } = await import("./watch.ts");
        return await watch(fullEnv, values);
      }
      case "demo": {
        const { demo } = await import("./demo.ts");
        return await demo({ once: values.once === true });
      }
      case "check": {
        const { check } = await import("./check.ts");
        return await check(fullEnv);
      }
      case "spool": {
        const { spool } = await import("./spool.ts");
        return await spool(fullEnv, values, rest);
      }
      default:
        process.stderr.write(`xmpp-msg-gw: unknown command "${command}"\n\n${USAGE}\n`);
        return 2;
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`xmpp-msg-gw: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
