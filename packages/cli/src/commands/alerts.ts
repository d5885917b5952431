/** `picluster alerts [test CHANNEL]`: the rules, what fires, and a test message, through the running primary. */

import type { AlertsAnswer, ChannelTest as TestAnswer } from "@picluster/common";
import type { Command } from "commander";
import { apiToken, callJson, getJson, tokenHint } from "../api-client.js";
import { runWithConfig } from "../config-options.js";
import { ago, table } from "../format.js";
import { type CliIo, EXIT_FAILED, EXIT_OK, EXIT_USAGE } from "../io.js";
import { nodeName, safeJson, safeLine } from "../safe.js";

export function registerAlertCommands(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
): void {
  const alerts = program
    .command("alerts")
    .description("alert rules, what is firing now, and the channels they tell")
    .option("--json", "print as JSON")
    .addHelpText(
      "after",
      "\nExamples:\n  picluster alerts\n  picluster alerts test phone     # send a test message through [channel.phone]\n",
    )
    .action((opts: { json?: boolean }, cmd: Command) =>
      runWithConfig(cmd, io, setExit, async (config) => {
        const answer = await getJson<AlertsAnswer>(config, "/api/alerts");
        if (opts.json) {
          io.out(`${safeJson(answer)}\n`);
          return EXIT_OK;
        }
        if (!answer.enabled) io.out("Alerts are off ([alerts] enabled = off).\n\n");
        const firing = answer.states.filter((s) => s.state === "firing");
        const pending = answer.states.filter((s) => s.state === "pending");
        io.out(
          firing.length === 0
            ? "Nothing is firing.\n"
            : `${table(
                ["FIRING", "NODE", "SINCE", "VALUE", "SEVERITY"],
                firing.map((s) => [
                  safeLine(s.rule),
                  nodeName(s.name, s.legacy),
                  // Since the condition began (the node went down), not since the rule's `for` ran out.
                  `${ago(s.since)} ago`,
                  String(Math.round(s.value * 10) / 10),
                  s.severity,
                ]),
              )}`,
        );
        if (pending.length > 0)
          io.out(
            `\n${table(
              ["PENDING", "NODE", "HOLDING FOR"],
              pending.map((s) => [safeLine(s.rule), nodeName(s.name, s.legacy), ago(s.since)]),
            )}`,
          );
        io.out(
          `\n${table(
            ["RULE", "WHEN", "SEVERITY", "CHANNELS", ""],
            answer.rules.map((r) => [
              r.name,
              r.summary,
              r.severity,
              r.channels.length > 0 ? r.channels.join(", ") : "default",
              [r.enabled ? "" : "off", r.stock ? "stock" : ""].filter((x) => x !== "").join(", "),
            ]),
          )}`,
        );
        io.out(
          answer.channels.length === 0
            ? "\nNo channels: add a [channel.NAME] section to be told (docs/alerts.md).\n"
            : `\nChannels: ${answer.channels.map((c) => `${c.name} (${c.type})`).join(", ")}\n`,
        );
        return EXIT_OK;
      }),
    );

  alerts
    .command("test <channel>")
    .description("send a test message through one channel now and say whether it was delivered")
    .option("--json", "print as JSON")
    .addHelpText(
      "after",
      "\nExample:\n  picluster alerts test phone\n\nExit code 1 when it was not delivered.\n",
    )
    .action((channel: string, opts: { json?: boolean }, cmd: Command) =>
      runWithConfig(cmd, io, setExit, async (config) => {
        if (apiToken(config) === "") {
          io.err(`error: a test message needs the API token: ${tokenHint(config)}\n`);
          return EXIT_USAGE;
        }
        const answer = await callJson<TestAnswer>(config, "POST", "/api/alerts/test", { channel });
        // `--json` after the channel may land on `alerts` itself, which takes it too.
        const json = opts.json === true || cmd.optsWithGlobals().json === true;
        if (json) io.out(`${safeJson(answer)}\n`);
        else if (answer.ok) io.out(`delivered through ${channel} in ${answer.ms.toFixed(0)} ms\n`);
        else
          io.err(
            `error: not delivered through ${channel}: ${safeLine(answer.error ?? "unknown error")}\n`,
          );
        return answer.ok ? EXIT_OK : EXIT_FAILED;
      }),
    );
}
