/**
 * The `picluster` command. Parses flags and dispatches; roles are imported
 * lazily so `picluster agent` never loads the primary's modules.
 */
import { Command, CommanderError } from "commander";
import { registerAlertCommands } from "./commands/alerts.js";
import { registerCheckCommands } from "./commands/checks.js";
import { registerClusterCommands } from "./commands/cluster.js";
import { registerConfigCommands } from "./commands/config.js";
import { registerContainerCommands } from "./commands/containers.js";
import { registerDemoCommands } from "./commands/demo.js";
import { registerJobCommands } from "./commands/jobs.js";
import { registerNodeCommands } from "./commands/node.js";
import { registerReadCommands } from "./commands/read.js";
import { registerAgentCommand, registerPrimaryCommand } from "./commands/roles.js";
import { registerServiceCommand } from "./commands/service.js";
import { registerTaskCommands } from "./commands/tasks.js";
import { registerTokenCommands } from "./commands/tokens.js";
import { registerUpCommand } from "./commands/up.js";
import { addConfigOptions } from "./config-options.js";
import { type CliIo, EXIT_FAILED, EXIT_OK, EXIT_USAGE, processIo } from "./io.js";
import { safeLine } from "./safe.js";
import { version } from "./version.js";

export { exitQuietlyOnClosedPipe } from "./io.js";

export function buildProgram(io: CliIo, setExit: (code: number) => void): Command {
  const program = new Command("picluster")
    .description("Keep a cluster of Linux machines visible and under control from one place.")
    .version(version(), "-V, --version")
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError("(run with --help for usage)");
  addConfigOptions(program);
  registerConfigCommands(program, io, setExit);
  registerAgentCommand(program, io, setExit);
  registerPrimaryCommand(program, io, setExit);
  registerNodeCommands(program, io, setExit);
  registerUpCommand(program, io, setExit);
  registerReadCommands(program, io, setExit);
  registerTaskCommands(program, io, setExit);
  registerJobCommands(program, io, setExit);
  registerAlertCommands(program, io, setExit);
  registerCheckCommands(program, io, setExit);
  registerContainerCommands(program, io, setExit);
  registerClusterCommands(program, io, setExit);
  registerTokenCommands(program, io, setExit);
  registerServiceCommand(program, io, setExit);
  registerDemoCommands(program, io, setExit);
  program.addHelpText(
    "after",
    "\nEvery configuration key can also be set with --<section>-<key> VALUE (see docs/configuration.md).\n",
  );
  return program;
}

/** Run the CLI; resolves to the process exit code. Never throws for bad usage. */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  let code: number = EXIT_OK;
  const program = buildProgram(io, (c) => {
    code = c;
  });
  try {
    await program.parseAsync([...argv], { from: "user" });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; every other parse failure is bad usage.
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    // A message may quote what a node or the primary said.
    io.err(`error: ${safeLine(err instanceof Error ? err.message : String(err))}\n`);
    return EXIT_FAILED;
  }
}
