/**
 * The `settings:` of CONFIG_FILE sit between the environment and the defaults: a variable
 * in the real environment (or its `.env` / `.pyenv` files) always wins over the file.
 */
import type { Env } from "./env-file.ts";
import { type ConfigFile, FILE_SETTING, readConfigFile } from "./file.ts";
import type { SettingIssue } from "./known-rooms.ts";

/** The environment with the file's settings merged under it, and what the file said. */
export interface WithConfigFile {
  readonly env: Env;
  /** The checked file; undefined when CONFIG_FILE is unset or the file is unusable. */
  readonly file: ConfigFile | undefined;
  /** Problems with the file itself, reported under CONFIG_FILE. */
  readonly issues: readonly SettingIssue[];
  /** Reports an issue about a setting that came from the file as `CONFIG_FILE: settings.X: …`. */
  relabel(issue: SettingIssue): SettingIssue;
}

/**
 * Reads CONFIG_FILE when set and merges its settings under `env`. A secret and its
 * `<NAME>_FILE` form count as one setting: the environment giving either hides both in
 * the file. `secrets` lists the settings that have a `<NAME>_FILE` form.
 */
export function withConfigFile(
  env: Env,
  settingNames: readonly string[],
  secrets: readonly string[],
): WithConfigFile {
  const path = env[FILE_SETTING];
  if (path === undefined || path === "") {
    return { env, file: undefined, issues: [], relabel: (i) => i };
  }
  const { file, issues } = readConfigFile(path, settingNames);
  const merged: Record<string, string | undefined> = { ...env };
  const fromFile = new Set<string>();
  const inEnv = (name: string) => env[name] !== undefined && env[name] !== "";
  for (const [name, value] of Object.entries(file?.settings ?? {})) {
    const secret = secrets.find((s) => name === s || name === `${s}_FILE`);
    const hidden = secret === undefined ? inEnv(name) : inEnv(secret) || inEnv(`${secret}_FILE`);
    if (hidden) continue;
    merged[name] = value;
    fromFile.add(name);
  }
  return {
    env: merged,
    file,
    issues,
    relabel: (i) =>
      fromFile.has(i.setting)
        ? { setting: FILE_SETTING, message: `settings.${i.setting}: ${i.message}` }
        : i,
  };
}
