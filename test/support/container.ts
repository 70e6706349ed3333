/**
 * Container images for the tests, with no Docker engine and no image registry: Debian's
 * buildah builds the Dockerfile as it is, podman runs the images on the host network
 * (the base image they build on: container-base.ts).
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireExecutable } from "../../src/devserver/process.ts";

/** One line saying how to install what the container tests need. */
export const INSTALL_HINT =
  "the container test needs podman, buildah, runc and mmdebstrap: run `sudo apt-get install -y podman buildah runc mmdebstrap` (Debian/Ubuntu)";
/** The host's CA bundle: registry traffic may pass a TLS proxy whose CA only it holds. */
const HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

/** What a finished command printed. */
export interface Exec {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of {@link ContainerTools.podman} and {@link ContainerTools.buildah}. */
export interface ExecOptions {
  /** Killed after this long (default 2 minutes). */
  readonly timeoutMs?: number;
  /** Resolve with a non-zero exit instead of rejecting. */
  readonly allowFail?: boolean;
  readonly cwd?: string;
}

/** podman and buildah set up for this machine, and the scratch directory they use. */
export interface ContainerTools {
  podman(args: readonly string[], opts?: ExecOptions): Promise<Exec>;
  buildah(args: readonly string[], opts?: ExecOptions): Promise<Exec>;
  /** The environment both run with (CONTAINERS_CONF points at the test's containers.conf). */
  readonly env: NodeJS.ProcessEnv;
  /** Removes the scratch directory. */
  cleanup(): Promise<void>;
}

/**
 * Finds podman, buildah, runc and mmdebstrap (or throws one line saying how to install
 * them) and writes the containers.conf this machine needs, passed by CONTAINERS_CONF so
 * that /etc stays untouched: runc (crun refuses a hybrid cgroup layout) and ulimits
 * within what a process without CAP_SYS_RESOURCE may set.
 */
export async function containerTools(): Promise<ContainerTools> {
  const podman = requireExecutable("podman", INSTALL_HINT);
  const buildah = requireExecutable("buildah", INSTALL_HINT);
  requireExecutable("runc", INSTALL_HINT);
  requireExecutable("mmdebstrap", INSTALL_HINT);
  const dir = await mkdtemp(join(tmpdir(), "xmpp-msg-gw-containers-"));
  const conf = join(dir, "containers.conf");
  await writeFile(
    conf,
    `[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
`,
  );
  const env = { ...process.env, CONTAINERS_CONF: conf };
  return {
    podman: (args, opts) => exec(podman, args, { ...opts, env }),
    buildah: (args, opts) => exec(buildah, args, { ...opts, env }),
    env,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Runs `file` with `args`; rejects on a non-zero exit (unless allowed) with its output. */
export function exec(
  file: string,
  args: readonly string[],
  opts: ExecOptions & { env?: NodeJS.ProcessEnv } = {},
): Promise<Exec> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const what = `${file} ${args.join(" ")}`;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: opts.cwd, env: opts.env, stdio: "pipe" });
    child.stdin.end();
    // Kept whole: builds log a few hundred KB at most, and a failure shows its end.
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`${what}: ${err.message}`));
    });
    child.once("close", (code, sig) => {
      clearTimeout(timer);
      const result = { code, stdout, stderr };
      if (code === 0 || opts.allowFail) return resolve(result);
      const why = sig === "SIGKILL" ? `killed after ${timeoutMs} ms` : `exit ${code}`;
      const tail = `${stdout}\n${stderr}`.trim().split("\n").slice(-40).join("\n");
      reject(new Error(`${what}: ${why}\n${tail}`));
    });
  });
}

/**
 * Copies the build context `repo` as it is now into a new directory (less node_modules and
 * .git, which .dockerignore leaves out anyway), so that the images of one run are built
 * from the same sources even while the working tree is being edited.
 */
export async function snapshotContext(repo: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "xmpp-msg-gw-context-"));
  await exec("sh", [
    "-c",
    'tar -C "$1" --exclude=./node_modules --exclude=./.git -cf - . | tar -C "$2" -xf -',
    "sh",
    repo,
    dir,
  ]);
  return dir;
}

/** What {@link buildImage} builds. */
export interface BuildSpec {
  /** The build context (the repository). */
  readonly context: string;
  /** The stage; none builds the last one, as `docker build .` does. */
  readonly target?: string | undefined;
  readonly tag: string;
}

/**
 * Builds `spec` from the context's Dockerfile with buildah, as `docker build` would: the
 * docker format (OCI drops HEALTHCHECK), no pull (the base is local), cached layers, the
 * host network. The host's CA bundle and an npmrc naming it are mounted on /usr/local/etc
 * for the RUN steps only (npm's global config; empty in the image, so nothing is left).
 */
export async function buildImage(tools: ContainerTools, spec: BuildSpec): Promise<void> {
  const etc = await mkdtemp(join(tmpdir(), "xmpp-msg-gw-build-etc-"));
  try {
    if (existsSync(HOST_CA_BUNDLE)) {
      await copyFile(HOST_CA_BUNDLE, join(etc, "ca.crt"));
      await writeFile(join(etc, "npmrc"), "cafile=/usr/local/etc/ca.crt\n");
    }
    await chmod(etc, 0o755);
    await tools.buildah(
      [
        "bud",
        "--isolation",
        "chroot",
        "--pull=never",
        "--format",
        "docker",
        "--layers",
        "--network",
        "host",
        "--volume",
        `${etc}:/usr/local/etc:ro`,
        ...(spec.target === undefined ? [] : ["--target", spec.target]),
        "--tag",
        spec.tag,
        spec.context,
      ],
      { timeoutMs: 1_800_000 },
    );
  } finally {
    await rm(etc, { recursive: true, force: true });
  }
  // Cached layers of older sources pile up: keep a week of them.
  await tools.podman(["image", "prune", "--force", "--filter", "until=168h"], { allowFail: true });
}

/** The prefix of every container and volume the tests create, then `<pid>-`. */
export const TEST_PREFIX = "xmpp-msg-gw-test-";

/** Removes containers and volumes left by test processes that are gone (a killed run). */
export async function removeLeftovers(tools: ContainerTools): Promise<void> {
  const alive = (name: string): boolean => {
    const pid = Number(name.slice(TEST_PREFIX.length).split("-")[0]);
    if (!Number.isInteger(pid) || pid <= 0) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const list = async (args: string[]) =>
    (await tools.podman(args, { allowFail: true })).stdout
      .split("\n")
      .map((l) => l.trim())
      .filter((n) => n.startsWith(TEST_PREFIX) && !alive(n));
  const containers = await list(["ps", "--all", "--format", "{{.Names}}"]);
  if (containers.length > 0) await tools.podman(["rm", "--force", ...containers]);
  const volumes = await list(["volume", "ls", "--format", "{{.Name}}"]);
  if (volumes.length > 0) await tools.podman(["volume", "rm", "--force", ...volumes]);
}
