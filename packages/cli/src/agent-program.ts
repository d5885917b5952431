/**
 * The agent-only command line with commander: `agent`, `config`, `service`,
 * help and errors. Loaded by agent-main.ts for anything but a plain
 * `agent [--config FILE] [--section-key VALUE…]`.
 */
import { Command, CommanderError } from "commander";
import { registerConfigCommands } from "./commands/config.js";
import { registerAgentCommand } from "./commands/roles.js";
import { registerServiceCommand } from "./commands/service.js";
import { addConfigOptions } from "./config-options.js";
import { type CliIo, EXIT_FAILED, EXIT_OK, EXIT_USAGE } from "./io.js";
import { version } from "./version.js";

export async function agentProgram(argv: readonly string[], io: CliIo): Promise<number> {
  let code: number = EXIT_OK;
  const setExit = (c: number) => {
    code = c;
  };
  const program = new Command("picluster-agent")
    .description("The picluster agent for this node.")
    .version(version(), "-V, --version")
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err });
  addConfigOptions(program);
  registerConfigCommands(program, io, setExit);
  registerAgentCommand(program, io, setExit);
  registerServiceCommand(program, io, setExit);
  try {
    await program.parseAsync([...argv], { from: "user" });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    io.err(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_FAILED;
  }
}
