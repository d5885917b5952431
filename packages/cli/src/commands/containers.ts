/** `picluster containers NODE [--json]`: a node's containers, through the running primary. */

import { type ContainerList, rate } from "@picluster/common";
import type { Command } from "commander";
import { getJson } from "../api-client.js";
import { runWithConfig } from "../config-options.js";
import { ago, bytes, table } from "../format.js";
import { type CliIo, EXIT_OK } from "../io.js";
import { safeJson, safeLine } from "../safe.js";

export function registerContainerCommands(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
): void {
  program
    .command("containers <node>")
    .description(
      "a node's containers (Docker or Podman): state, health, restarts, CPU, memory, network",
    )
    .option("--json", "print as JSON")
    .addHelpText(
      "after",
      "\nExamples:\n  picluster containers pi-3\n  picluster containers pi-3 --json\n",
    )
    .action((node: string, opts: { json?: boolean }, cmd: Command) =>
      runWithConfig(cmd, io, setExit, async (config) => {
        const answer = await getJson<ContainerList>(
          config,
          `/api/nodes/${encodeURIComponent(node)}/containers`,
        );
        if (opts.json) {
          io.out(`${safeJson(answer)}\n`);
          return EXIT_OK;
        }
        if (answer.containers.length === 0) {
          io.out(
            answer.at === null
              ? `${safeLine(node)} has sent no sample yet.\n`
              : `${safeLine(node)} reports no containers (no Docker or Podman API socket, or none created; see docs/containers.md).\n`,
          );
          return EXIT_OK;
        }
        io.out(
          table(
            ["NAME", "IMAGE", "STATE", "HEALTH", "RESTARTS", "CPU", "MEMORY", "NET IN", "NET OUT"],
            answer.containers.map((c) => [
              safeLine(c.name),
              safeLine(c.image),
              c.state === "exited" && c.exitCode !== undefined
                ? `exited (${c.exitCode})`
                : safeLine(c.state),
              safeLine(c.health ?? "–"),
              String(c.restarts),
              c.cpuPct === undefined ? "–" : `${c.cpuPct.toFixed(1)} %`,
              c.memBytes === undefined ? "–" : bytes(c.memBytes),
              c.rxBps === undefined ? "–" : rate(c.rxBps),
              c.txBps === undefined ? "–" : rate(c.txBps),
            ]),
          ),
        );
        if (answer.at !== null) io.out(`\nas of ${ago(answer.at)} ago\n`);
        return EXIT_OK;
      }),
    );
}
