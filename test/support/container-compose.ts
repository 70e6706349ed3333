/**
 * A compose service turned into exactly what `docker compose up` would hand the engine,
 * as `podman run` arguments: no compose engine runs here (Debian's podman-compose 1.0.3
 * adds a bridge network even under `network_mode: host`, and bridge addresses are not
 * allowed on this machine). The files are read with the `yaml` package and merged as
 * compose merges them (later files win; `environment` by name, `volumes` by container
 * path). A key this does not translate fails the test: a compose file cannot gain a
 * setting the container test silently leaves out.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse } from "yaml";

/** The `build:` of a service (compose's short form is the context alone). */
export interface ComposeBuild {
  /** As written in the file (relative to the directory of the file). */
  readonly context: string;
  /** The Dockerfile stage; none is the last one. */
  readonly target?: string | undefined;
}

/** One service of a set of compose files, as `docker compose up` would start it. */
export interface ComposeService {
  readonly build: ComposeBuild | undefined;
  readonly image: string;
  /** Every `podman run` argument but the image (and a command, if any, after it). */
  readonly runArgs: string[];
  /** Named volumes, as the engine names them (`<project>_<volume>`). */
  readonly volumes: string[];
  /** `stop_grace_period` in seconds (compose's default is 10). */
  readonly stopGraceSeconds: number;
  /** The command after the image, if the service sets one. */
  readonly command: string[];
  /** The published ports as written ("10080:10080"); dropped from runArgs on the host network. */
  readonly ports: string[];
  /** The merged environment the service sets. */
  readonly environment: Record<string, string>;
  /** The container's name, as compose v2 names it. */
  readonly containerName: string;
}

type Service = Record<string, unknown>;

/** The keys {@link composeService} knows how to pass on; any other fails loudly. */
const KNOWN = new Set([
  "build",
  "image",
  "volumes",
  "ports",
  "restart",
  "stop_grace_period",
  "environment",
  "network_mode",
  "command",
  "profiles",
]);

/**
 * Reads `files` (the first one's directory is the project directory, as for
 * `docker compose -f a -f b`) and returns `service` of project `project`, as `up` starts
 * it, or with `oneOff` as `docker compose run` does (no published ports, no restart).
 */
export function composeService(
  files: readonly string[],
  service: string,
  project: string,
  opts: { oneOff?: boolean } = {},
): ComposeService {
  const [first] = files;
  if (first === undefined) throw new Error("no compose file");
  const projectDir = dirname(resolve(first));
  let merged: Service = {};
  const declaredVolumes = new Set<string>();
  for (const file of files) {
    const doc = parse(readFileSync(file, "utf8")) as {
      services?: Record<string, Service>;
      volumes?: Record<string, unknown>;
    };
    for (const name of Object.keys(doc.volumes ?? {})) declaredVolumes.add(name);
    const s = doc.services?.[service];
    if (s !== undefined) merged = merge(merged, s, file);
  }
  if (merged.image === undefined) throw new Error(`${files.join(", ")}: ${service} has no image`);
  const unknown = Object.keys(merged).filter((k) => !KNOWN.has(k));
  if (unknown.length > 0) {
    throw new Error(
      `${service}: ${unknown.join(", ")}: not translated by test/support/container-compose.ts; teach it what compose passes for them`,
    );
  }

  const containerName = `${project}-${service}-${opts.oneOff ? "run-1" : "1"}`;
  const args: string[] = ["--name", containerName];
  const hostNetwork = merged.network_mode === "host";
  if (merged.network_mode !== undefined) args.push("--network", String(merged.network_mode));
  const environment = envMap(merged.environment);
  for (const [k, v] of Object.entries(environment)) args.push("--env", `${k}=${v}`);
  const volumes: string[] = [];
  for (const spec of volumeList(merged.volumes)) {
    const [source = "", target = "", mode] = spec.split(":");
    let from: string;
    if (source.startsWith(".") || isAbsolute(source)) {
      from = resolve(projectDir, source);
    } else {
      if (!declaredVolumes.has(source))
        throw new Error(`${service}: volume ${source} not declared`);
      from = `${project}_${source}`;
      volumes.push(from);
    }
    args.push("--volume", [from, target, ...(mode ? [mode] : [])].join(":"));
  }
  const ports = ((merged.ports as unknown[] | undefined) ?? []).map(String);
  // Docker discards published ports under the host network (with a warning); podman refuses them.
  if (!hostNetwork && !opts.oneOff) for (const p of ports) args.push("--publish", p);
  if (merged.restart !== undefined && !opts.oneOff) {
    args.push("--restart", String(merged.restart));
  }
  const stopGraceSeconds =
    merged.stop_grace_period === undefined ? 10 : seconds(String(merged.stop_grace_period));
  args.push("--stop-timeout", String(stopGraceSeconds));
  const command =
    merged.command === undefined
      ? []
      : Array.isArray(merged.command)
        ? merged.command.map(String)
        : String(merged.command).split(/\s+/);
  return {
    build: buildOf(merged.build),
    image: String(merged.image),
    runArgs: args,
    volumes,
    stopGraceSeconds,
    command,
    ports,
    environment,
    containerName,
  };
}

/** Compose's merge of an override into a service: `environment` by name, `volumes` by target. */
function merge(base: Service, over: Service, file: string): Service {
  const out: Service = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (key === "environment") {
      out.environment = { ...envMap(base.environment), ...envMap(value) };
    } else if (key === "volumes") {
      const byTarget = new Map<string, string>();
      for (const v of [...volumeList(base.volumes), ...volumeList(value)]) {
        byTarget.set(v.split(":")[1] ?? v, v);
      }
      out.volumes = [...byTarget.values()];
    } else if (key === "ports") {
      out.ports = [...((base.ports as unknown[]) ?? []), ...(value as unknown[])];
    } else if (key === "build" && typeof value === "object" && typeof base.build === "object") {
      out.build = { ...(base.build as object), ...(value as object) };
    } else if (value === null) {
      throw new Error(`${file}: ${key}: null is not translated`);
    } else {
      out[key] = value;
    }
  }
  return out;
}

function envMap(env: unknown): Record<string, string> {
  if (env === undefined) return {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((e) => {
        const s = String(e);
        const eq = s.indexOf("=");
        if (eq < 0) throw new Error(`environment: ${s}: a name without a value is not translated`);
        return [s.slice(0, eq), s.slice(eq + 1)];
      }),
    );
  }
  return Object.fromEntries(
    Object.entries(env as Record<string, unknown>).map(([k, v]) => [k, String(v ?? "")]),
  );
}

function volumeList(volumes: unknown): string[] {
  return ((volumes as unknown[] | undefined) ?? []).map((v) => {
    if (typeof v !== "string") throw new Error("volumes: only the short syntax is translated");
    return v;
  });
}

function buildOf(build: unknown): ComposeBuild | undefined {
  if (build === undefined) return undefined;
  if (typeof build === "string") return { context: build };
  const b = build as Record<string, unknown>;
  const unknown = Object.keys(b).filter((k) => k !== "context" && k !== "target");
  if (unknown.length > 0) throw new Error(`build: ${unknown.join(", ")}: not translated`);
  return { context: String(b.context ?? "."), target: b.target as string | undefined };
}

/** Compose durations: "30s", "1m30s", "500ms". */
function seconds(duration: string): number {
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let matched = "";
  for (const m of duration.matchAll(re)) {
    matched += m[0];
    const n = Number(m[1]);
    total += m[2] === "h" ? n * 3600 : m[2] === "m" ? n * 60 : m[2] === "s" ? n : n / 1000;
  }
  if (matched !== duration) throw new Error(`stop_grace_period: ${duration}: not a duration`);
  return Math.ceil(total);
}
