/** `picluster agent` and `picluster primary`: the long-running roles, imported lazily. */

import type { Command } from "commander";
import { buildPrimary } from "../build-primary.js";
import { loadCliConfig } from "../config-options.js";
import { roleContext, untilSignal, writableDataDir } from "../daemon.js";
import { type CliIo, EXIT_FAILED, EXIT_USAGE } from "../io.js";
import { describeStartError } from "../port-holder.js";
import { safeLine } from "../safe.js";
import { runAgent } from "./agent-run.js";

export function registerAgentCommand(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
): void {
  program
    .command("agent")
    .description("run the agent: report this node to the primary and answer its requests")
    .addHelpText(
      "after",
      "\nExamples:\n  picluster agent --agent-primary-host 192.168.1.10 --agent-join-token pcj1.…   # first start\n  picluster agent                                                               # afterwards\n",
    )
    .action(async (_opts: unknown, cmd: Command) => {
      setExit(await runAgent(cmd.optsWithGlobals(), io));
    });
}

export function registerPrimaryCommand(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
): void {
  program
    .command("primary")
    .description("run the primary: accept agents and keep track of the cluster")
    .addHelpText("after", "\nExample:\n  picluster primary --config /etc/picluster/picluster.ini\n")
    .action(async (_opts: unknown, cmd: Command) => {
      const loaded = loadCliConfig(cmd.optsWithGlobals(), io);
      if (loaded === undefined) return setExit(EXIT_USAGE);
      if (!writableDataDir(loaded, io)) return setExit(EXIT_FAILED);
      const ctx = await roleContext(loaded, "primary", io);
      // The token `picluster up` made here, when none is configured.
      const { primary } = await buildPrimary({
        config: ctx.config,
        dataDir: ctx.dataDir,
        log: ctx.log,
        livenessLog: ctx.routineLog,
        localToken: "read",
      });
      try {
        await primary.start();
      } catch (err) {
        const why = describeStartError(err, ctx.config);
        ctx.log.fatal("cannot start the primary", { err: why });
        io.err(`error: cannot start the primary: ${safeLine(why)}\n`);
        ctx.closeLog();
        return setExit(EXIT_FAILED);
      }
      setExit(await untilSignal(ctx.log, () => primary.close()));
      ctx.closeLog();
    });
}
