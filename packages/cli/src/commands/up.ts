/**
 * `picluster up`: a primary and a local agent in one process, for trying
 * picluster with no configuration at all. It creates its data directory and
 * the local node's credential itself. `npm start` runs it.
 */

import { hostname } from "node:os";
import { dataFiles, describeError, loadConfig, processPathContext } from "@picluster/common";
import type { Command } from "commander";
import { buildPrimary } from "../build-primary.js";
import { configFlags, loadCliConfig } from "../config-options.js";
import { roleContext, untilSignal, writableDataDir } from "../daemon.js";
import { type CliIo, EXIT_FAILED, EXIT_USAGE } from "../io.js";
import { describeStartError } from "../port-holder.js";
import { safeLine } from "../safe.js";
import { version } from "../version.js";

export function registerUpCommand(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
): void {
  program
    .command("up")
    .description(
      "run a primary and an agent for this machine in one process (try it out; `npm start`)",
    )
    .option("--json", "print the ready line as JSON")
    .addHelpText("after", "\nExample:\n  picluster up            # then open the printed URL\n")
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const globals = cmd.optsWithGlobals();
      const loaded = loadCliConfig(globals, io);
      if (loaded === undefined) return setExit(EXIT_USAGE);
      if (!writableDataDir(loaded, io)) return setExit(EXIT_FAILED);
      // On a terminal, the banner and warnings only: what `up` does as it
      // goes is in the log file (the banner says where).
      const ctx = await roleContext(
        loaded,
        "primary",
        io,
        io.errIsTty === true ? "warn" : undefined,
      );
      const { Agent } = await import("@picluster/agent");
      const { readCredentialFile } = await import("@picluster/common");
      // No [http] token: make one in the data directory, so that the page
      // (the printed link carries it) and the CLI here can run tasks.
      const { primary, local } = await buildPrimary({
        config: ctx.config,
        dataDir: ctx.dataDir,
        log: ctx.log,
        livenessLog: ctx.routineLog,
        localToken: "create",
      });
      let ports: { agentPort: number; httpPort: number };
      try {
        ports = await primary.start();
      } catch (err) {
        io.err(
          `error: cannot start the primary: ${safeLine(describeStartError(err, ctx.config))}\n`,
        );
        ctx.closeLog();
        return setExit(EXIT_FAILED);
      }

      // The local agent: its own data directory, joined with a token the first time.
      const agentDir = dataFiles(ctx.dataDir).localAgentDir;
      const name = ctx.config.node.name || hostname();
      let token = "";
      if (
        primary.credentials !== undefined &&
        readCredentialFile(dataFiles(agentDir).credential) === undefined
      ) {
        const store = primary.credentials;
        try {
          token = store.addToken(name);
        } catch (err) {
          ctx.log.warn("the local node's name is taken; joining it under a new one", {
            name,
            err: describeError(err),
          });
          token = store.addToken(`${name}-local`);
        }
      }
      // The same file and environment as the primary (its [task.NAME] sections
      // are the local node's), with the link pointed at this primary.
      const agentConfig = loadConfig({
        configPath: loaded.file,
        env: io.env,
        flags: {
          ...configFlags(globals),
          "node.data_dir": agentDir,
          "agent.primary_host": "127.0.0.1",
          "agent.primary_port": String(ports.agentPort),
          "agent.tls": ctx.config.primary.tls ? "on" : "off",
          "agent.join_token": token,
        },
        paths: { ...processPathContext(), cwd: io.cwd },
      }).config;
      const agent = new Agent({
        config: agentConfig,
        dataDir: agentDir,
        log: ctx.log,
        livenessLog: ctx.routineLog,
        version: version(),
        // One process, one log: the local node's `logs` are this process's.
        ...(ctx.logFile === undefined ? {} : { logFile: ctx.logFile }),
      });
      agent.start();

      const host = ctx.config.http.host.includes(":")
        ? `[${ctx.config.http.host}]`
        : ctx.config.http.host;
      const url = `http://${host}:${ports.httpPort}/`;
      // The fragment never reaches a server or its logs; the page keeps the token and drops it
      // from the address. Only on a terminal: output that is captured (a service's journal, a
      // CI log) must not carry it; the file has it.
      const tokenFile = local?.file;
      const link = local === undefined || !io.isTty ? url : `${url}#token=${local.token}`;
      // Signals are handled before "up" is said: whoever reads that line may stop us at once.
      const stopped = untilSignal(ctx.log, async (reason) => {
        await agent.stop(reason);
        await primary.close();
      });
      if (opts.json)
        io.out(
          `${JSON.stringify({ ready: true, url, ...(tokenFile === undefined ? {} : { tokenFile }), agentPort: ports.agentPort, dataDir: ctx.dataDir })}\n`,
        );
      else {
        io.out(`picluster is up: ${link}\n`);
        if (tokenFile !== undefined && !io.isTty)
          io.out(`  the API token for the page's task controls is in ${tokenFile}\n`);
        io.out(
          `  this machine reports as "${name}"; add others with \`picluster node add NAME\` (agents connect to port ${ports.agentPort})\n`,
        );
        io.out(`  data: ${ctx.dataDir}; stop with Ctrl-C\n`);
        if (ctx.logFile !== undefined)
          io.out(
            io.errIsTty === true
              ? `  log: ${ctx.logFile} (only warnings are shown here; --log-level debug shows everything)\n`
              : `  log: ${ctx.logFile}\n`,
          );
      }
      setExit(await stopped);
      ctx.closeLog();
    });
}
