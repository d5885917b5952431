/**
 * Config flags for every command: `--config FILE` and one hidden
 * `--<section>-<key>` flag per schema key, derived from the table.
 */

import {
  type Config,
  ConfigError,
  type ConfigNotice,
  describeError,
  flagName,
  type LoadedConfig,
  loadConfig,
  processPathContext,
  schemaKeys,
} from "@picluster/common";
import { type Command, Option } from "commander";
import { type CliIo, EXIT_FAILED, EXIT_OK, EXIT_USAGE } from "./io.js";
import { safeLine } from "./safe.js";

/** Commander's camelCase attribute for a flag: `--primary-port` → `primaryPort`. */
function attributeName(flag: string): string {
  return flag.replace(/^--/, "").replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

export function addConfigOptions(program: Command): void {
  program.option(
    "--config <file>",
    "configuration file (default: $PICLUSTER_CONFIG, ./picluster.ini, /etc/picluster/picluster.ini)",
  );
  for (const { section, key } of schemaKeys()) {
    program.addOption(
      new Option(`${flagName(section, key)} <value>`, `[${section}] ${key}`).hideHelp(),
    );
  }
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

export function formatNotice(n: ConfigNotice): string {
  const label = n.kind === "deprecated" || n.kind === "obsolete" ? "deprecated" : "warning";
  return `${label}: ${n.where}: ${n.message}`;
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

/**
 * Run a command's `body` with the loaded config: a bad config exits 2, a
 * failure prints one line and exits 1, success exits 0 unless the body set
 * another code (it returns it).
 */
/** `runWithConfig` bound to a command group's io and exit setter. */
export function configRunner(
  io: CliIo,
  setExit: (code: number) => void,
): (cmd: Command, body: (config: Config) => Promise<unknown>) => Promise<void> {
  return (cmd, body) => runWithConfig(cmd, io, setExit, body);
}

export function runWithConfig(
  cmd: Command,
  io: CliIo,
  setExit: (code: number) => void,
  body: (config: Config) => Promise<unknown>,
): Promise<void> {
  const loaded = loadCliConfig(cmd.optsWithGlobals(), io);
  if (loaded === undefined) {
    setExit(EXIT_USAGE);
    return Promise.resolve();
  }
  return body(loaded.config).then(
    (code) => setExit(typeof code === "number" ? code : EXIT_OK),
    (err: unknown) => {
      // The message may quote what a node said (a refused request's reason).
      io.err(`error: ${safeLine(describeError(err))}\n`);
      setExit(EXIT_FAILED);
    },
  );
}
