/**
 * Config flags for every command: `--config FILE` and one hidden
 * `--<section>-<key>` flag per schema key, derived from the table.
 */

import {
  type Config,
  type ConfigNotice,
  describeError,
  flagName,
  schemaKeys,
} from "@picluster/common";
import { type Command, Option } from "commander";
import { loadCliConfig } from "./config-load.js";
import { type CliIo, EXIT_FAILED, EXIT_OK, EXIT_USAGE } from "./io.js";
import { safeLine } from "./safe.js";

export { configFlags, loadCliConfig } from "./config-load.js";

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

export function formatNotice(n: ConfigNotice): string {
  const label = n.kind === "deprecated" || n.kind === "obsolete" ? "deprecated" : "warning";
  return `${label}: ${n.where}: ${n.message}`;
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
