/**
 * Running a page's shell blocks as a reader would (test/docs-run.test.ts): in bash, in a
 * scratch directory that stands for the reader's checkout, each command's exit code and
 * output kept apart, so that each can be compared with what the page quotes under it.
 */
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BIN, type CliProcess, captureCli, LISTENING } from "./cli.ts";
import { REPO_ROOT, type ShellBlock, type Step, stepsOf } from "./doc-blocks.ts";

/** Commands a block must not run here: they install, configure or start things system-wide. */
export const SYSTEM_COMMANDS = [
  "sudo",
  "apt-get",
  "apt",
  "systemctl",
  "journalctl",
  "useradd",
  "install",
  "docker",
  "docker-compose",
  "podman",
  "buildah",
  "git",
  "nginx",
  "certbot",
];

/** The system command `command` runs (outside its comments), if any. */
export function systemCommandIn(command: string): string | undefined {
  const system = new RegExp(`(^\\s*|[|;&(]\\s*)(${SYSTEM_COMMANDS.join("|")})\\b`, "m");
  return system.exec(command.replace(/\s#.*$/gm, ""))?.[2];
}

/**
 * Makes `dir` the reader's checkout and returns the environment its blocks run in (`base`
 * on top): `bin/xmpp-msg-gw`, `xmpp-msg-gw` and `npx xmpp-msg-gw` are this checkout's,
 * `npm ci` is a no-op (done), `npm start` runs package.json's start script, the
 * SYSTEM_COMMANDS fail, and curl (~/.curlrc) is silent and writes the status after the body.
 */
export function readerDir(dir: string, base: Record<string, string>): Record<string, string> {
  const start = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")).scripts.start;
  const launcher = join(REPO_ROOT, "bin", "xmpp-msg-gw");
  const self = existsSync(launcher)
    ? `exec "${launcher}" "$@"`
    : `exec "${process.execPath}" "${BIN}" "$@"`;
  const stubs: Record<string, string> = {
    ".bin/xmpp-msg-gw": self,
    "bin/xmpp-msg-gw": self,
    ".bin/npx": `[ "$1" = xmpp-msg-gw ] || { echo "docs test: npx $1 is not this checkout's" >&2; exit 127; }\nshift; exec xmpp-msg-gw "$@"`,
    ".bin/npm": `case "$1" in\n  ci) exit 0 ;;\n  start) ${/^exec\s/.test(start) ? start : `exec ${start}`} ;;\nesac\necho "docs test: npm $* does not run here" >&2; exit 127`,
  };
  for (const name of SYSTEM_COMMANDS)
    stubs[`.bin/${name}`] =
      `echo "docs test: ${name} changes the machine and does not run here: list the block in CANNOT_RUN" >&2; exit 127`;
  mkdirSync(join(dir, ".bin"));
  mkdirSync(join(dir, "bin"));
  for (const [name, body] of Object.entries(stubs)) {
    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, name), 0o755);
  }
  writeFileSync(
    join(dir, ".curlrc"),
    'silent\nshow-error\nwrite-out = "\\n[HTTP %{http_code}]\\n"\n',
  );
  return {
    PATH: `${join(dir, ".bin")}:${process.env.PATH ?? ""}`,
    HOME: dir,
    CURL_HOME: dir,
    ...(process.env.TMPDIR && { TMPDIR: process.env.TMPDIR }),
    ...base,
  };
}

/** The last command of a block that starts the gateway and keeps it running. */
export const STARTS_GATEWAY = /^(npm start|(bin\/|npx )?xmpp-msg-gw( serve)?)\s*(#.*)?$/;

/** What one command of a block did. */
export interface StepResult {
  readonly step: Step;
  /** Its exit code, as bash's `$?` printed it; undefined if it never ran. */
  readonly rc: string | undefined;
  /** What it printed on stdout, without curl's status line. */
  readonly printed: string;
  /** The HTTP status curl wrote, for a curl command. */
  readonly status: number | undefined;
}

/** A block that ran: each command's result, and the process (still running when it starts the gateway). */
export interface BlockRun {
  readonly results: StepResult[];
  readonly process: CliProcess;
  /** With a block that starts the gateway, where it listens. */
  readonly url: string | undefined;
}

const MARK = "\x1e";

/**
 * Runs `block` in bash in `dir` with `env`, each command through `substitute`. A block
 * whose last command starts the gateway resolves once it listens, with that command left
 * running; any other within `ms`.
 */
export async function runShellBlock(
  block: ShellBlock,
  opts: {
    dir: string;
    env: Record<string, string>;
    substitute(command: string): string;
    ms?: number;
  },
): Promise<BlockRun> {
  const steps = stepsOf(block.text);
  const starts = STARTS_GATEWAY.test(steps.at(-1)?.command ?? "");
  const script = steps
    .map((s, i) =>
      starts && i === steps.length - 1
        ? `exec ${opts.substitute(s.command)}` // its PID is the gateway's
        : `${opts.substitute(s.command)}\nprintf '\\n${MARK}%d\\n' $?`,
    )
    .join("\n");
  const p = captureCli(spawn("bash", ["-c", script], { cwd: opts.dir, env: opts.env }));
  p.child.stdin?.end();
  let out: string;
  let url: string | undefined;
  if (starts) {
    url = (await p.waitFor(LISTENING, opts.ms ?? 20_000))[1];
    out = p.stdout().split(LISTENING)[0] ?? "";
  } else {
    const timer = setTimeout(() => p.child.kill("SIGKILL"), opts.ms ?? 20_000);
    await p.closed;
    clearTimeout(timer);
    out = p.stdout();
  }
  const parts = out.split(new RegExp(`\\n?${MARK}(\\d+)\\n`));
  const results = (starts ? steps.slice(0, -1) : steps).map((step, i) => {
    const printed = (parts[2 * i] ?? "").replace(/^\n/, "");
    const http = /\n?\[HTTP (\d{3})\]\n?$/.exec(printed);
    return {
      step,
      rc: parts[2 * i + 1],
      printed: (http ? printed.slice(0, http.index) : printed).trimEnd(),
      status: http ? Number(http[1]) : undefined,
    };
  });
  return { results, process: p, url };
}
