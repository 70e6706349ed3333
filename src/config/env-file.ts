/**
 * Reads the old gateway's `.pyenv` file (lines `export KEY="value"`, `${VAR}` expansion)
 * and `.env` files, unchanged, with dotenv and dotenv-expand.
 */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import dotenv from "dotenv";
import { expand } from "dotenv-expand";
import { ConfigError } from "./index.ts";

/** Environment as a plain string map. */
export type Env = Readonly<Record<string, string | undefined>>;

/** Files read from the working directory, in this order; earlier files win. */
export const ENV_FILES = [".env", ".pyenv"] as const;

/**
 * Merges the env files found in `dir` under `env`: a variable already in the real
 * environment always wins, then the earlier file. `${VAR}` in a file expands against
 * the real environment and the variables defined before it.
 */
export function withEnvFiles(env: Env, dir: string, files: readonly string[] = ENV_FILES): Env {
  const merged: Record<string, string | undefined> = { ...env };
  for (const name of files) {
    const path = resolve(dir, name);
    if (!existsSync(path)) continue;
    const parsed = dotenv.parse(readEnvFile(path));
    // dotenv-expand writes into `processEnv`; give it a copy so the real env stays untouched.
    const scratch: Record<string, string> = {};
    for (const [k, v] of Object.entries(merged)) if (v !== undefined) scratch[k] = v;
    const out = expand({ parsed, processEnv: scratch });
    if (out.error) throw out.error;
    for (const [key, value] of Object.entries(out.parsed ?? {})) {
      if (merged[key] === undefined) merged[key] = value;
    }
  }
  return merged;
}

/** The file's text; one it cannot read is a configuration error saying whom it must let in. */
function readEnvFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    const uid = process.getuid?.();
    const who = uid === undefined ? "" : ` (the gateway runs as uid ${uid})`;
    const fix =
      code === "EACCES"
        ? `: make it readable by the gateway's user${who}, e.g. chown ${uid ?? "<uid>"} or chmod 644`
        : "";
    throw new ConfigError([{ setting: path, message: `cannot be read (${code})${fix}` }]);
  }
}
