/** `picluster run|tasks|ping`: tasks and pings through the running primary's HTTP API. */

import type { StoredTaskRun } from "@picluster/common";
import { type Config, durationType, zoneLabel } from "@picluster/common";
import { type Command, Option } from "commander";
import { ApiError, apiToken, callJson, getJson, streamText, tokenHint } from "../api-client.js";
import { runWithConfig } from "../config-options.js";
import { ago, bytes, selectorArg, table } from "../format.js";
import { type CliIo, EXIT_FAILED, EXIT_OK, EXIT_USAGE } from "../io.js";
import { jsonLogLine, LineSplitter, readableLogLine } from "../log-lines.js";
import { safeJson, safeLine, safeText } from "../safe.js";

type TaskRun = StoredTaskRun;

interface ProcessRow {
  pid: number;
  user: string;
  command: string;
  cpuPct: number;
  rssBytes: number;
}

type PingResult =
  | { nodeId: string; name: string; ok: true; rttMs: number; offsetMs: number }
  | { nodeId: string; name: string; ok: false; error: string; skipped?: true };

const POLL_MS = 250;
const FINAL = new Set(["ok", "failed", "skipped", "cancelled"]);

function statusText(status: string, colour: boolean): string {
  if (!colour) return status;
  const code = status === "ok" ? 32 : status === "failed" ? 31 : status === "running" ? 36 : 33;
  return `\u001b[${code}m${status}\u001b[0m`;
}

function firstLine(text: string): string {
  const line = text.split("\n").find((l) => l.trim() !== "") ?? "";
  return line.length > 60 ? `${line.slice(0, 57)}...` : line;
}

/** The per-node result table, and each node's full output when asked for. */
export function renderRun(run: TaskRun, colour: boolean, withOutput: boolean): string {
  const rows = run.nodes.map((n) => [
    safeLine(n.name),
    statusText(n.status, colour),
    n.exitCode === null ? safeLine(n.signal ?? "–") : String(n.exitCode),
    n.startedAt !== undefined && n.finishedAt !== undefined
      ? `${((n.finishedAt - n.startedAt) / 1000).toFixed(1)}s`
      : "–",
    safeLine(n.error ?? firstLine(n.output)),
  ]);
  let text = `run ${run.id}: ${safeLine(run.task)} on ${safeLine(run.selector)} — ${statusText(run.status, colour)}\n\n`;
  text += table(["NODE", "STATUS", "EXIT", "TIME", "OUTPUT / WHY"], rows);
  if (withOutput) {
    for (const n of run.nodes) {
      if (n.output === "") continue;
      text += `\n── ${safeLine(n.name)} ──\n${safeText(n.output)}${n.output.endsWith("\n") ? "" : "\n"}`;
      if (n.truncated) text += "(output truncated)\n";
    }
  }
  return text;
}

function progressBar(run: TaskRun): string {
  const done = run.nodes.filter((n) => FINAL.has(n.status)).length;
  const failed = run.nodes.filter((n) => n.status === "failed").length;
  const width = 24;
  const filled = run.nodes.length === 0 ? width : Math.round((done / run.nodes.length) * width);
  return `\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${run.nodes.length} done${failed > 0 ? `, ${failed} failed` : ""}  `;
}

/** `--arg name=value` pairs as an object; a pair without `=` is a usage error. */
export function parseArgs(pairs: readonly string[]): Record<string, string> {
  const args: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new ApiError("E_USAGE", `--arg ${pair}: expected NAME=VALUE`);
    args[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return args;
}

export function registerTaskCommands(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
): void {
  program
    .command("run")
    .description("run a task on nodes, with live progress and a per-node result table")
    .argument("<task>", "a task the nodes allow (their [tasks] and [task.NAME] config)")
    .option(
      "--on <selector>",
      "all, names, label=value or a state, joined with commas",
      selectorArg,
      "all",
    )
    .option(
      "--arg <name=value>",
      "an argument of the task (repeat for more)",
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option("--batch <n>", "rolling batches of n nodes, stopping at the first failure")
    .option("--wait-alive", "after each batch, wait until its nodes are alive again")
    .option("--timeout <duration>", "kill the task on a node after this long, e.g. 30s")
    .option("--output", "print each node's full output after the table")
    .option("--json", "print the finished run as JSON")
    .addHelpText(
      "after",
      "\nExamples:\n  picluster run updates.check\n  picluster run restart-service --on rack=a --arg service=nginx\n  picluster run reboot --on pi-01,pi-02 --batch 1 --wait-alive\n\nExit code 1 when any node failed.\n",
    )
    .action(
      (
        task: string,
        opts: {
          on: string;
          arg: string[];
          batch?: string;
          waitAlive?: boolean;
          timeout?: string;
          output?: boolean;
          json?: boolean;
        },
        cmd: Command,
      ) =>
        runWithConfig(cmd, io, setExit, async (config) => {
          if (apiToken(config) === "") {
            io.err(`error: running tasks needs the API token: ${tokenHint(config)}\n`);
            return EXIT_USAGE;
          }
          const batch = opts.batch === undefined ? undefined : Number(opts.batch);
          if (batch !== undefined && !(Number.isInteger(batch) && batch >= 1)) {
            io.err(`error: --batch ${opts.batch}: expected a whole number of nodes, at least 1\n`);
            return EXIT_USAGE;
          }
          let timeoutMs: number | undefined;
          if (opts.timeout !== undefined) {
            const parsed = durationType(1_000, 7 * 86_400_000).parse(opts.timeout);
            if (!parsed.ok) {
              io.err(`error: --timeout ${opts.timeout}: expected ${parsed.expected}\n`);
              return EXIT_USAGE;
            }
            timeoutMs = parsed.value;
          }
          const started = await callJson<TaskRun>(config, "POST", "/api/tasks", {
            task,
            on: opts.on,
            args: parseArgs(opts.arg),
            ...(batch === undefined ? {} : { batch }),
            ...(opts.waitAlive ? { waitAlive: true } : {}),
            ...(timeoutMs === undefined ? {} : { timeoutMs }),
          });
          const run = await follow(config, started, io);
          if (opts.json) io.out(`${safeJson(run)}\n`);
          else io.out(renderRun(run, io.isTty, opts.output === true));
          return run.status === "ok" ? EXIT_OK : EXIT_FAILED;
        }),
    );

  program
    .command("tasks")
    .description("recent task runs, or one run with each node's output")
    .argument("[id]", "a run's id: show it in full")
    .option("-n, --limit <n>", "how many runs to list", "20")
    .option("--json", "print as JSON")
    .addHelpText("after", "\nExamples:\n  picluster tasks\n  picluster tasks 12\n")
    .action((id: string | undefined, opts: { limit: string; json?: boolean }, cmd: Command) =>
      runWithConfig(cmd, io, setExit, async (config) => {
        if (id !== undefined) {
          if (!/^\d+$/.test(id)) {
            io.err(`error: "${id}" is not a run id\n`);
            return EXIT_USAGE;
          }
          const run = await getJson<TaskRun>(config, `/api/tasks/${id}`);
          io.out(opts.json ? `${safeJson(run)}\n` : renderRun(run, io.isTty, true));
          return EXIT_OK;
        }
        const { runs } = await getJson<{ runs: TaskRun[] }>(
          config,
          `/api/tasks?limit=${encodeURIComponent(opts.limit)}`,
        );
        if (opts.json) {
          io.out(`${safeJson(runs)}\n`);
          return EXIT_OK;
        }
        io.out(
          table(
            ["ID", "TASK", "ON", "STATUS", "STARTED", "BY"],
            runs.map((r) => [
              String(r.id),
              safeLine(r.task),
              safeLine(r.selector),
              statusText(r.status, io.isTty),
              ago(r.createdAt),
              safeLine(r.requestedBy),
            ]),
          ),
        );
        return EXIT_OK;
      }),
    );

  program
    .command("logs")
    .description("the last lines of a node's agent log, readable (--json: the records as they are)")
    .argument("<node>", "node name or id")
    .option("-n, --limit <n>", "how many lines", "50")
    .addOption(new Option("--lines <n>", "the same as --limit").hideHelp())
    .option("-f, --follow", "keep printing new lines until Ctrl-C")
    .option("--json", "the log's own JSON records, one a line")
    .addHelpText(
      "after",
      "\nExamples:\n  picluster logs pi-01 -n 200\n  picluster logs pi-01 --follow\n  picluster logs pi-01 --json | jq 'select(.level == \"warn\")'\n",
    )
    .action(
      (
        node: string,
        opts: { limit: string; lines?: string; follow?: boolean; json?: boolean },
        cmd: Command,
      ) =>
        runWithConfig(cmd, io, setExit, async (config) => {
          const limit = encodeURIComponent(opts.lines ?? opts.limit);
          const show = (line: string) =>
            io.out(`${opts.json ? jsonLogLine(line) : readableLogLine(line)}\n`);
          if (!opts.json) io.out(`times in ${zoneLabel(Date.now())}\n`);
          if (opts.follow) {
            const stop = new AbortController();
            const onSigint = () => stop.abort();
            process.once("SIGINT", onSigint);
            const lines = new LineSplitter();
            try {
              await streamText(
                config,
                `/api/nodes/${encodeURIComponent(node)}/logs?follow=true&lines=${limit}`,
                (text) => {
                  for (const line of lines.push(text)) show(line);
                },
                stop.signal,
              );
              for (const line of lines.end()) show(line);
            } finally {
              process.off("SIGINT", onSigint);
            }
            return EXIT_OK;
          }
          const { lines } = await getJson<{ lines: string[] }>(
            config,
            `/api/nodes/${encodeURIComponent(node)}/logs?lines=${limit}`,
          );
          for (const line of lines) show(line);
          return EXIT_OK;
        }),
    );

  program
    .command("top")
    .description("a node's busiest processes, by CPU and by memory")
    .argument("<node>", "node name or id")
    .option("-n, --limit <n>", "processes in each list", "10")
    .option("--json", "print as JSON")
    .addHelpText("after", "\nExample:\n  picluster top pi-01 -n 5\n")
    .action((node: string, opts: { limit: string; json?: boolean }, cmd: Command) =>
      runWithConfig(cmd, io, setExit, async (config) => {
        const top = await getJson<{
          sampledMs: number;
          byCpu: ProcessRow[];
          byMemory: ProcessRow[];
        }>(
          config,
          `/api/nodes/${encodeURIComponent(node)}/processes?n=${encodeURIComponent(opts.limit)}`,
        );
        if (opts.json) {
          io.out(`${safeJson(top)}\n`);
          return EXIT_OK;
        }
        const rows = (list: ProcessRow[]) =>
          list.map((p) => [
            String(p.pid),
            safeLine(p.user),
            `${p.cpuPct.toFixed(1)}%`,
            bytes(p.rssBytes),
            safeLine(p.command),
          ]);
        const header = ["PID", "USER", "CPU", "RSS", "COMMAND"];
        io.out(
          `by CPU (over ${(top.sampledMs / 1000).toFixed(1)} s)\n${table(header, rows(top.byCpu))}\n`,
        );
        io.out(`by memory\n${table(header, rows(top.byMemory))}`);
        return EXIT_OK;
      }),
    );

  program
    .command("ping")
    .description("round-trip time and clock offset of each node")
    .option(
      "--on <selector>",
      "all, names, label=value or a state, joined with commas",
      selectorArg,
      "all",
    )
    .option("--json", "print as JSON")
    .addHelpText(
      "after",
      "\nExample:\n  picluster ping --on rack=a\n\nExit code 1 when any node did not answer; nodes that cannot be pinged (tutorial nodes) are skipped.\n",
    )
    .action((opts: { on: string; json?: boolean }, cmd: Command) =>
      runWithConfig(cmd, io, setExit, async (config) => {
        const { results } = await getJson<{ results: PingResult[] }>(
          config,
          `/api/ping?on=${encodeURIComponent(opts.on)}`,
        );
        if (opts.json) io.out(`${safeJson(results)}\n`);
        else
          io.out(
            table(
              ["NODE", "RTT", "CLOCK OFFSET", "NOTE"],
              results.map((r) =>
                r.ok
                  ? [
                      safeLine(r.name),
                      `${r.rttMs.toFixed(1)} ms`,
                      `${r.offsetMs >= 0 ? "+" : ""}${r.offsetMs.toFixed(0)} ms`,
                      "",
                    ]
                  : [
                      safeLine(r.name),
                      "–",
                      "–",
                      r.skipped ? `skipped: ${safeLine(r.error)}` : safeLine(r.error),
                    ],
              ),
            ),
          );
        return results.every((r) => r.ok || r.skipped === true) ? EXIT_OK : EXIT_FAILED;
      }),
    );
}

/** Poll the run until it ends, drawing a progress bar on a terminal; Ctrl-C cancels it. */
async function follow(config: Config, run: TaskRun, io: CliIo): Promise<TaskRun> {
  let current = run;
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(EXIT_FAILED);
    interrupted = true;
    io.err("\ncancelling the run (Ctrl-C again to leave it running)…\n");
    callJson(config, "DELETE", `/api/tasks/${run.id}`).catch(() => {});
  };
  process.on("SIGINT", onSigint);
  try {
    while (current.status === "running") {
      if (io.isTty) io.err(progressBar(current));
      await new Promise((r) => setTimeout(r, POLL_MS));
      current = await getJson<TaskRun>(config, `/api/tasks/${run.id}`);
    }
    if (io.isTty) io.err(`${progressBar(current)}\n`);
    return current;
  } finally {
    process.off("SIGINT", onSigint);
  }
}
