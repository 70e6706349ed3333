/**
 * `xmpp-msg-gw <command>`: argv → subcommand. Thin: each command lives in its own file,
 * what it accepts and its `--help` in commands.ts.
 */
import { parseArgs } from "node:util";
import { withEnvFiles } from "../config/env-file.ts";
import { ConfigError } from "../config/index.ts";
import { COMMANDS, type CommandName, isCommand, USAGE } from "./commands.ts";

export { USAGE } from "./commands.ts";

/** The parsed command line of one command. */
interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/**
 * Splits argv into the command (the first argument, `serve` when there is none or it is
 * an option) and its options; returns the exit code instead when that is all there is
 * to do (help, a usage error).
 */
function parse(argv: readonly string[]): { command: CommandName; parsed: Parsed } | number {
  const [first, ...after] = argv;
  if (first === "-h" || first === "--help" || (first === "help" && after.length === 0)) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (first === "help") return parse([...after.slice(0, 1), "--help"]);
  const [command, args] =
    first === undefined || first.startsWith("-") ? ["serve", argv] : [first, after];
  if (!isCommand(command)) {
    process.stderr.write(`xmpp-msg-gw: unknown command "${command}"\n\n${USAGE}\n`);
    return 2;
  }
  const spec = COMMANDS[command];
  const config = { args: [...args], options: spec.options, allowPositionals: spec.positionals };
  let parsed: Parsed;
  try {
    parsed = parseArgs({ ...config, strict: true }) as Parsed;
  } catch (err) {
    return usageError(command, explain(command, err as Error & { code?: string }, config));
  }
  if (parsed.values.help) {
    process.stdout.write(`${spec.usage}\n`);
    return 0;
  }
  return { command, parsed };
}

/** What was wrong with the command line, in words that name the option and the command. */
function explain(
  command: CommandName,
  err: Error & { code?: string },
  config: Parameters<typeof parseArgs>[0] & object,
): string {
  if (err.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    // Parsed again leniently, for the option as it was written (`-x`, `--xyz`).
    const { tokens } = parseArgs({ ...config, strict: false, tokens: true });
    const unknown = tokens.find((t) => t.kind === "option" && !(t.name in (config.options ?? {})));
    const name = unknown?.kind === "option" ? unknown.rawName : "?";
    const dash = COMMANDS[command].positionals
      ? `; a text that starts with "-" goes after "--"`
      : "";
    return `unknown option "${name}" (${command} takes the options below${dash})`;
  }
  if (err.code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") {
    const extra = /'([^']*)'/.exec(err.message)?.[1] ?? "";
    return `unexpected argument "${extra}": ${command} takes only the options below`;
  }
  // A missing or ambiguous value: Node's words name the option ("Option '-r, --room <value>' argument missing").
  return err.message.split("\n")[0] ?? err.message;
}

function usageError(command: CommandName, message: string): number {
  process.stderr.write(`xmpp-msg-gw ${command}: ${message}\n\n${COMMANDS[command].usage}\n`);
  return 2;
}

/** Runs the CLI; resolves with the exit code (serve keeps running and resolves with -1). */
export async function runCli(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const cli = parse(argv);
  if (typeof cli === "number") return cli;
  const { command, parsed } = cli;
  const { values, positionals: rest } = parsed;
  const flags = {
    jid: values.jid as string | undefined,
    password: values.password as string | undefined,
    room: values.room as string | undefined,
    nick: values.nick as string | undefined,
    verbose: values.verbose === true,
  };
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
        return await send(fullEnv, flags, rest);
      }
      case "watch": {
        const { watch } = await import("./watch.ts");
        return await watch(fullEnv, flags);
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
        return await spool(fullEnv, { all: values.all === true }, rest);
      }
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`xmpp-msg-gw: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
