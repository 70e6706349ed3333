/**
 * The base image of the Dockerfile, `node:24-bookworm-slim`, with no image registry: a
 * stand-in made here (a Debian bookworm minbase root filesystem from Debian's archive,
 * Node 24 and npm from the npm registry in /usr/local as the official image has them, a
 * `node` user with uid and gid 1000), kept between runs: it changes only with Node's
 * version.
 */
import { existsSync } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, rename, rm, symlink, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { requireExecutable } from "../../src/devserver/process.ts";
import { type ContainerTools, exec, INSTALL_HINT } from "./container.ts";

/** The name the Dockerfile's `FROM` lines use. */
export const BASE_IMAGE = "docker.io/library/node:24-bookworm-slim";
/** The Node major version of {@link BASE_IMAGE}. */
const NODE_MAJOR = "24";
/** The npm the stand-in carries (Node 24 ships npm 11). */
const NPM_RANGE = "11";
/** Set on the stand-in to the Node version inside; a real image has no such label. */
const NODE_LABEL = "xmpp-msg-gw.node";
/** Root filesystems of the stand-in, one per Node version and CPU. */
const CACHE_DIR =
  process.env.XMPP_MSG_GW_IMAGE_CACHE ?? join(homedir(), ".cache", "xmpp-msg-gw-images");
const DEBIAN_SOURCES = [
  "deb http://deb.debian.org/debian bookworm main",
  "deb http://deb.debian.org/debian bookworm-updates main",
  "deb http://deb.debian.org/debian-security bookworm-security main",
];
/** How the base image was had: already in podman's storage, imported from the cache, or made. */
export type BaseImageSource = "in storage" | "imported from the cache" | "built";

/**
 * Makes sure {@link BASE_IMAGE} is in podman's storage. A real image of that name (no
 * stand-in label) is used as it is; a stand-in is kept while it carries the newest Node 24
 * on the npm registry, else imported from the cache or built (about a minute) and cached.
 */
export async function ensureBaseImage(tools: ContainerTools): Promise<BaseImageSource> {
  const label = await tools.podman(
    ["image", "inspect", "--format", `{{index .Labels "${NODE_LABEL}"}}`, BASE_IMAGE],
    { allowFail: true },
  );
  const present = label.code === 0;
  const inside = label.stdout.trim().replace("<no value>", "");
  if (present && inside === "") return "in storage";
  const version = await newestNode().catch((err: Error) => {
    if (present) return inside; // offline: the stand-in we have will do
    throw new Error(`no ${BASE_IMAGE} and no Node ${NODE_MAJOR} from the npm registry: ${err}`);
  });
  if (present && inside === version) return "in storage";
  const rootfs = join(CACHE_DIR, `node-${version}-bookworm-${process.arch}.tar`);
  const cached = existsSync(rootfs);
  if (!cached) await buildRootfs(version, rootfs);
  await tools.podman(
    [
      "import",
      "--change",
      "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "--change",
      'CMD ["node"]',
      "--change",
      `LABEL ${NODE_LABEL}=${version}`,
      rootfs,
      BASE_IMAGE,
    ],
    { timeoutMs: 300_000 },
  );
  return cached ? "imported from the cache" : "built";
}

/** The newest Node `NODE_MAJOR`.x on the npm registry, e.g. "24.22.3". */
async function newestNode(): Promise<string> {
  const npm = requireExecutable("npm", "npm is not installed");
  const out = await exec(npm, ["view", `${nodePackage()}@${NODE_MAJOR}`, "version", "--json"], {
    timeoutMs: 30_000,
  });
  const versions: string[] = [JSON.parse(out.stdout)].flat();
  const parts = (v: string) => v.split(".").map(Number);
  const newest = versions
    .sort((a, b) => {
      const [x, y] = [parts(a), parts(b)];
      for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return (x[i] ?? 0) - (y[i] ?? 0);
      return 0;
    })
    .at(-1);
  if (newest === undefined) throw new Error(`no ${nodePackage()}@${NODE_MAJOR} on the registry`);
  return newest;
}

/** The npm package that carries Node's binary for this CPU. */
function nodePackage(): string {
  return `node-linux-${process.arch === "arm64" ? "arm64" : "x64"}`;
}

/**
 * Writes the stand-in's root filesystem as a tar file at `out`: Debian bookworm minbase
 * (mmdebstrap, from Debian's archive), Node `version` and npm in /usr/local as the official
 * image has them, and the `node` user (uid and gid 1000) with its home.
 */
async function buildRootfs(version: string, out: string): Promise<void> {
  const npm = requireExecutable("npm", "npm is not installed");
  const work = await mkdtemp(join(tmpdir(), "xmpp-msg-gw-rootfs-"));
  try {
    const packed = await exec(
      npm,
      [
        "pack",
        "--silent",
        "--pack-destination",
        work,
        `${nodePackage()}@${version}`,
        `npm@${NPM_RANGE}`,
      ],
      { timeoutMs: 300_000, cwd: work },
    );
    const [nodeTgz, npmTgz] = packed.stdout.trim().split("\n");
    if (nodeTgz === undefined || npmTgz === undefined)
      throw new Error(`npm pack: ${packed.stdout}`);
    const stage = join(work, "stage");
    const local = join(stage, "usr", "local");
    const npmDir = join(local, "lib", "node_modules", "npm");
    await mkdir(join(local, "bin"), { recursive: true });
    await mkdir(npmDir, { recursive: true });
    await exec("tar", ["-xzf", join(work, nodeTgz), "-C", work]);
    await copyFile(join(work, "package", "bin", "node"), join(local, "bin", "node"));
    await chmod(join(local, "bin", "node"), 0o755);
    await exec("tar", ["-xzf", join(work, npmTgz), "--strip-components=1", "-C", npmDir]);
    await symlink("../lib/node_modules/npm/bin/npm-cli.js", join(local, "bin", "npm"));
    await symlink("../lib/node_modules/npm/bin/npx-cli.js", join(local, "bin", "npx"));
    const hook = join(work, "customize.sh");
    await writeFile(
      hook,
      `set -e
root="$1"
tar -C '${stage}' -c . | tar -C "$root" -x
echo 'node:x:1000:1000::/home/node:/bin/bash' >> "$root/etc/passwd"
echo 'node:x:1000:' >> "$root/etc/group"
echo 'node:*:19000:0:99999:7:::' >> "$root/etc/shadow"
mkdir -p "$root/home/node"
chown 1000:1000 "$root/home/node"
`,
    );
    await mkdir(CACHE_DIR, { recursive: true });
    const partial = `${out}.partial`;
    await rm(partial, { recursive: true, force: true });
    await exec(
      requireExecutable("mmdebstrap", INSTALL_HINT),
      [
        "--variant=minbase",
        "--format=tar",
        "--quiet",
        `--customize-hook=sh '${hook}' "$1"`,
        "bookworm",
        partial,
        ...DEBIAN_SOURCES,
      ],
      { timeoutMs: 900_000 },
    );
    await rename(partial, out);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
