/**
 * The commands of `xmpp-msg-gw`: what each one accepts and its `--help`. Each command
 * parses only its own options, so that an option it does not know is an error that
 * names the option and the command, never a silent no-op.
 */
import type { ParseArgsOptionsConfig } from "node:util";
import { SPOOL_USAGE } from "./spool.ts";

/** The name of a command. */
export type CommandName = "serve" | "send" | "watch" | "token" | "check" | "demo" | "spool";

/** What a command accepts, and what `xmpp-msg-gw <command> --help` prints. */
export interface CommandSpec {
  readonly options: ParseArgsOptionsConfig;
  /** Whether it takes arguments besides its options (the text of `send`, spool's action). */
  readonly positionals: boolean;
  readonly usage: string;
}

const help = { help: { type: "boolean", short: "h" } } as const;
const client = {
  jid: { type: "string", short: "j" },
  password: { type: "string", short: "p" },
  room: { type: "string", short: "r" },
  nick: { type: "string", short: "n" },
  verbose: { type: "boolean", short: "v" },
  ...help,
} as const;

const CLIENT_OPTIONS = `Options:
  -j, --jid JID          the account to log in as (default: JID_FROM_USER)
  -p, --password PASS    its password (default: JID_FROM_PASS)
  -r, --room ROOM        the room, e.g. ops@conference.example.org (required)
  -n, --nick NICK        the nick in the room (default: the JID's local part)
  -v, --verbose          print each XMPP step on stderr: connecting, TLS, login, join, …
  -h, --help             print this help

The server is found by DNS SRV of the JID's domain, or set with XMPP_HOST, XMPP_PORT,
XMPP_TLS and XMPP_CA_FILE (from the environment, ./.env or ./.pyenv).`;

/** Every command, by name. */
export const COMMANDS: Readonly<Record<CommandName, CommandSpec>> = {
  serve: {
    options: help,
    positionals: false,
    usage: `Usage: xmpp-msg-gw [serve]

Runs the gateway: HTTP on HTTP_HOST:HTTP_PORT (0.0.0.0:10080) → XMPP rooms, until SIGTERM
or Ctrl-C; SIGHUP reloads the routes. Settings come from the environment, then ./.env,
then ./.pyenv (see README.md, "Configuration reference").`,
  },
  send: {
    options: client,
    positionals: true,
    usage: `Usage: xmpp-msg-gw send -r ROOM [-j JID -p PASS -n NICK] [-v] [text…]

Posts one message to a room as NICK and exits 0 once the room has reflected it back
(1 if it did not, 2 for a usage or configuration error), like the old xmpp_client.py.
The text is the arguments, or stdin when there are none; a text that starts with "-"
goes after "--".

${CLIENT_OPTIONS}`,
  },
  watch: {
    options: client,
    positionals: false,
    usage: `Usage: xmpp-msg-gw watch -r ROOM [-j JID -p PASS -n NICK] [-v]

Joins a room and prints each message that arrives, as "<nick> text", until Ctrl-C.

${CLIENT_OPTIONS}`,
  },
  token: {
    options: help,
    positionals: false,
    usage: `Usage: xmpp-msg-gw token

Prints a new random token (32 URL-safe characters) for KNOWN_ROOMS or a token_file.`,
  },
  check: {
    options: help,
    positionals: false,
    usage: `Usage: xmpp-msg-gw check

Validates the configuration, opens the spool, logs in as every nick and joins every room,
sending nothing, and prints what works. Exits 0 when everything works, 1 on a problem,
2 for an invalid configuration. It reads the same settings as serve.`,
  },
  demo: {
    options: { once: { type: "boolean" }, ...help },
    positionals: false,
    usage: `Usage: xmpp-msg-gw demo [--once]

Starts a throwaway local Prosody with a room and a gateway wired to it, posts a sample
message and shows it arriving, then keeps running for your own curl posts (Ctrl-C stops
it and removes the server). HTTP listens on HTTP_HOST:HTTP_PORT (127.0.0.1:10080).

Options:
  --once       exit 0 as soon as the sample arrived
  -h, --help   print this help`,
  },
  spool: {
    options: { all: { type: "boolean" }, ...help },
    positionals: true,
    usage: `Usage: xmpp-msg-gw spool list | retry ID… | purge ID…

${SPOOL_USAGE}`,
  },
};

/** The general usage text, printed by `xmpp-msg-gw --help` and for an unknown command. */
export const USAGE = `Usage: xmpp-msg-gw [command] [options]

Commands:
  serve              run the gateway (default): HTTP on :10080 → XMPP rooms
  send [text…]       post one message to a room and wait until the room confirms it
                     -j/--jid JID -p/--password PASS -r/--room ROOM -n/--nick NICK
                     -v/--verbose (text from the arguments, or from stdin when there are none)
  watch              join a room and print each message that arrives
                     -j/--jid JID -p/--password PASS -r/--room ROOM -n/--nick NICK -v
  token              print a new random token for KNOWN_ROOMS
  check              validate the configuration, log in, join every room, report;
                     exits 1 on a problem (2 for an invalid configuration)
  demo               start a throwaway local Prosody and a gateway, post a sample
                     message and show it arriving (--once: exit after it arrived)
${SPOOL_USAGE}

xmpp-msg-gw <command> --help prints a command's own options.
Settings come from the environment, then ./.env, then ./.pyenv (see README.md).
-j and -p default to JID_FROM_USER and JID_FROM_PASS.`;

/** Whether `name` is a command. */
export function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name);
}
