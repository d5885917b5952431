/**
 * What `picluster agent` does once its options are parsed, without
 * commander: the installed agent's entry (agent-main.ts) calls it directly
 * for a plain `agent --config FILE` (what its systemd unit runs).
 */
import { describeError, PiclusterError } from "@picluster/common";
import { loadCliConfig } from "../config-load.js";
import { roleContext, untilSignal } from "../daemon.js";
import { type CliIo, EXIT_FAILED, EXIT_USAGE } from "../io.js";
import { version } from "../version.js";

/** `opts`: the global options as commander names them (`config`, `agentPrimaryHost`, …). */
export async function runAgent(opts: Record<string, unknown>, io: CliIo): Promise<number> {
  const loaded = loadCliConfig(opts, io);
  if (loaded === undefined) return EXIT_USAGE;
  const ctx = await roleContext(loaded, "agent", io);
  // Imported here so `picluster primary` never loads the agent, and the reverse.
  const { Agent } = await import("@picluster/agent");
  let agent: InstanceType<typeof Agent>;
  try {
    agent = new Agent({
      config: ctx.config,
      dataDir: ctx.dataDir,
      log: ctx.log,
      livenessLog: ctx.routineLog,
      version: version(),
      ...(ctx.logFile === undefined ? {} : { logFile: ctx.logFile }),
      // A reboot or shutdown task whose command failed: exit, and let the service restart us.
      onFatal: () => process.exit(EXIT_FAILED),
    });
  } catch (err) {
    io.err(`error: ${describeError(err)}\n`);
    ctx.closeLog();
    return err instanceof PiclusterError ? EXIT_USAGE : EXIT_FAILED;
  }
  agent.start();
  const code = await untilSignal(ctx.log, (reason) => agent.stop(reason));
  ctx.closeLog();
  return code;
}
