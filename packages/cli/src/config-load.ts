/**
 * Loading the configuration from a command's options, without commander:
 * the installed agent starts `picluster agent` without loading commander
 * (agent-main.ts; 1.5 MiB of its RSS).
 */
import {
  ConfigError,
  flagName,
  type LoadedConfig,
  loadConfig,
  processPathContext,
  schemaKeys,
} from "@picluster/common";
import type { CliIo } from "./io.js";

/** Commander's camelCase attribute for a flag: `--primary-port` → `primaryPort`. */
export function attributeName(flag: string): string {
  return flag.replace(/^--/, "").replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** The `section.key` values given as flags. */
export function configFlags(opts: Record<string, unknown>): Record<string, string> {
  const flags: Record<string, string> = {};
  for (const { section, key } of schemaKeys()) {
    const value = opts[attributeName(flagName(section, key))];
    if (typeof value === "string") flags[`${section}.${key}`] = value;
  }
  return flags;
}

/**
 * Load the configuration for a command. On failure prints every problem as
 * one line each and returns undefined; the caller exits 2.
 */
export function loadCliConfig(opts: Record<string, unknown>, io: CliIo): LoadedConfig | undefined {
  try {
    return loadConfig({
      configPath: typeof opts.config === "string" ? opts.config : undefined,
      env: io.env,
      flags: configFlags(opts),
      paths: { ...processPathContext(), cwd: io.cwd },
    });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const w of err.warnings) io.err(`warning: ${w.where}: ${w.message}\n`);
    for (const p of err.problems) io.err(`error: ${p.where}: ${p.message}\n`);
    return undefined;
  }
}
