/** `picluster config check` and `picluster config show`. */

import { effectiveValues } from "@picluster/common";
import type { Command } from "commander";
import { formatNotice, loadCliConfig } from "../config-options.js";
import { type CliIo, EXIT_OK, EXIT_USAGE } from "../io.js";

export function registerConfigCommands(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
): void {
  const config = program.command("config").description("check and show the configuration");

  config
    .command("check")
    .description(
      "validate the configuration file, environment and flags; exit 0 if usable, 2 if not",
    )
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      "\nExample:\n  picluster config check --config /etc/picluster/picluster.ini\n",
    )
    .action((opts: { json?: boolean }, cmd: Command) => {
      const loaded = loadCliConfig(cmd.optsWithGlobals(), io);
      if (opts.json) {
        io.out(
          `${JSON.stringify({ ok: loaded !== undefined, file: loaded?.file ?? null, notices: loaded?.notices ?? [] })}\n`,
        );
      }
      if (loaded === undefined) {
        setExit(EXIT_USAGE);
        return;
      }
      if (!opts.json) {
        for (const n of loaded.notices) io.err(`${formatNotice(n)}\n`);
        io.out(
          loaded.file
            ? `ok: ${loaded.file}\n`
            : "ok: no configuration file found, using defaults\n",
        );
      }
      setExit(EXIT_OK);
    });

  config
    .command("show")
    .description("print every effective setting and where it came from (secrets redacted)")
    .option("--json", "print as JSON")
    .addHelpText(
      "after",
      "\nExample:\n  picluster config show --json | jq '.values[] | select(.source != \"default\")'\n",
    )
    .action((opts: { json?: boolean }, cmd: Command) => {
      const loaded = loadCliConfig(cmd.optsWithGlobals(), io);
      if (loaded === undefined) {
        setExit(EXIT_USAGE);
        return;
      }
      const values = effectiveValues(loaded);
      if (opts.json) {
        io.out(
          `${JSON.stringify({ file: loaded.file ?? null, values, notices: loaded.notices }, null, 2)}\n`,
        );
        setExit(EXIT_OK);
        return;
      }
      for (const n of loaded.notices) io.err(`${formatNotice(n)}\n`);
      io.out(`# file: ${loaded.file ?? "(none, defaults)"}\n`);
      let section = "";
      const width = Math.max(...values.map((v) => v.key.length + v.value.length + 3));
      for (const v of values) {
        if (v.section !== section) {
          io.out(`${section === "" ? "" : "\n"}[${v.section}]\n`);
          section = v.section;
        }
        const line = `${v.key} = ${v.value}`;
        io.out(`${line.padEnd(width)}  # ${v.source}\n`);
      }
      setExit(EXIT_OK);
    });
}
