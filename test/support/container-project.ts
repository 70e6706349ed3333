/**
 * An old gateway's user, for the container test: their .pyenv as examples/pyenv.example
 * shows it, and the directory they run compose in, holding docker-compose.yml as it is,
 * the migration guide's docker-compose.override.yml and that .pyenv; nothing else.
 */
import assert from "node:assert/strict";
import { chmod, copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { REPO_ROOT } from "./doc-blocks.ts";

/** The old .pyenv and what it names. */
export interface OldPyenv {
  readonly text: string;
  /** The account's local part and password (JID_FROM_USER, JID_FROM_PASS). */
  readonly user: string;
  readonly password: string;
  /** The first route of KNOWN_ROOMS: token, room local part, nick. */
  readonly token: string;
  readonly roomName: string;
  readonly nick: string;
}

/**
 * examples/pyenv.example, untouched but for its domain (`domain`, the test server's); the
 * account, room, token and nick are read from it, so the example stays the old format.
 */
export async function oldPyenv(domain: string): Promise<OldPyenv> {
  const example = await readFile(join(REPO_ROOT, "examples/pyenv.example"), "utf8");
  const text = example.replace(/^export XMPP_DOMAIN=".*"$/m, `export XMPP_DOMAIN="${domain}"`);
  assert.notEqual(text, example, "examples/pyenv.example sets XMPP_DOMAIN");
  const user = /^export JID_FROM_USER="([^@"]+)@\$\{XMPP_DOMAIN\}"$/m.exec(text)?.[1];
  const password = /^export JID_FROM_PASS="([^"]+)"$/m.exec(text)?.[1];
  const route =
    /^export KNOWN_ROOMS="([^:\s"]+):([^@\s"]+)@conference\.\$\{XMPP_DOMAIN\}:([^\s"]+)/m.exec(
      text,
    );
  assert.ok(user && password && route, "examples/pyenv.example: JID_FROM_USER, _PASS, KNOWN_ROOMS");
  const [, token = "", roomName = "", nick = ""] = route;
  return { text, user, password, token, roomName, nick };
}

/** The user's compose directory and the files compose is given, in order. */
export interface ComposeProject {
  readonly dir: string;
  /** docker-compose.yml, docker-compose.override.yml, then the host's override. */
  readonly files: string[];
  cleanup(): Promise<void>;
}

/**
 * Writes the user's directory (readable by the container's node user, as a home directory
 * is) and, outside it, `hostOverride`: what this machine needs beyond a Docker host.
 */
export async function composeProject(
  pyenv: OldPyenv,
  hostOverride: Record<string, unknown>,
): Promise<ComposeProject> {
  const dir = await mkdtemp(join(tmpdir(), "xmpp-msg-gw-compose-"));
  const hostDir = await mkdtemp(join(tmpdir(), "xmpp-msg-gw-compose-host-"));
  await chmod(dir, 0o755);
  await copyFile(join(REPO_ROOT, "docker-compose.yml"), join(dir, "docker-compose.yml"));
  await copyFile(
    join(REPO_ROOT, "docs/migration/docker-compose.override.yml"),
    join(dir, "docker-compose.override.yml"),
  );
  await writeFile(join(dir, ".pyenv"), pyenv.text, { mode: 0o644 });
  const host = join(hostDir, "host-network.yml");
  await writeFile(host, stringify(hostOverride));
  return {
    dir,
    files: [join(dir, "docker-compose.yml"), join(dir, "docker-compose.override.yml"), host],
    cleanup: async () => {
      await rm(dir, { recursive: true, force: true });
      await rm(hostDir, { recursive: true, force: true });
    },
  };
}
