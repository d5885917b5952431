/** `picluster checks [--down] [--json]`: every node's checks, through the running primary. */

import type { CheckList } from "@picluster/common";
import type { Command } from "commander";
import { getJson } from "../api-client.js";
import { runWithConfig } from "../config-options.js";
import { ago, table } from "../format.js";
import { type CliIo, EXIT_FAILED, EXIT_OK } from "../io.js";
import { nodeName, safeJson, safeLine } from "../safe.js";

export function registerCheckCommands(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
): void {
  program
    .command("checks")
    .description("every node's checks ([check.NAME]): up or down, since when and why")
    .option("--down", "only the checks that are not up")
    .option("--json", "print as JSON")
    .addHelpText(
      "after",
      "\nExit status: 0 when every check shown is up, 1 when one is down or unknown.\n\nExamples:\n  picluster checks\n  picluster checks --down --json\n",
    )
    .action((opts: { down?: boolean; json?: boolean }, cmd: Command) =>
      runWithConfig(cmd, io, setExit, async (config) => {
        const answer = await getJson<CheckList>(config, "/api/checks");
        const checks = opts.down ? answer.checks.filter((c) => c.state !== "up") : answer.checks;
        const allUp = checks.every((c) => c.state === "up");
        if (opts.json) {
          io.out(`${safeJson({ checks })}\n`);
          return allUp ? EXIT_OK : EXIT_FAILED;
        }
        if (checks.length === 0) {
          io.out(
            opts.down
              ? "Every check is up.\n"
              : "No checks: a node runs them from its [check.NAME] sections (docs/checks.md).\n",
          );
          return EXIT_OK;
        }
        io.out(
          table(
            ["NODE", "CHECK", "KIND", "STATE", "SINCE", "WHY"],
            checks.map((c) => [
              nodeName(c.node),
              safeLine(c.check),
              c.kind,
              c.state === "up" ? "up" : c.state.toUpperCase(),
              `${ago(c.since)} ago`,
              safeLine(c.reason),
            ]),
          ),
        );
        return allUp ? EXIT_OK : EXIT_FAILED;
      }),
    );
}
