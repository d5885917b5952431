/**
 * `picluster job run|show|results|cancel` and `picluster jobs`: a task run
 * once per item on whichever selected nodes have a free slot, through the
 * running primary's HTTP API (/api/jobs).
 */
import { readFileSync } from "node:fs";
import {
  durationType,
  type JsonValue,
  type NodeView,
  readItemRange,
  type StoredJob,
  type StoredJobItem,
} from "@picluster/common";
import type { Command } from "commander";
import { ApiError, apiToken, callJson, getJson, tokenHint } from "../api-client.js";
import { runWithConfig } from "../config-options.js";
import { ago, duration, selectorArg, table } from "../format.js";
import { type CliIo, EXIT_FAILED, EXIT_OK, EXIT_USAGE } from "../io.js";
import { safeJson, safeLine } from "../safe.js";
import { parseArgs } from "./tasks.js";

const POLL_MS = 500;
const PAGE = 1_000;
const ENDED = new Set(["ok", "failed", "cancelled"]);

/** `A..B` as a range of items, or why not. */
export function parseRangeArg(text: string): { kind: "range"; from: number; to: number } {
  const range = readItemRange(text);
  if (range === undefined)
    throw new ApiError("E_USAGE", `--range ${text}: expected FROM..TO, e.g. 1..100`);
  return range;
}

/** One JSON value (or object) per line; blank lines are skipped; a bad line is named. */
export function parseItemLines(text: string, where: string): JsonValue[] {
  const values: JsonValue[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    try {
      values.push(JSON.parse(line) as JsonValue);
    } catch (err) {
      throw new ApiError(
        "E_USAGE",
        `${where}:${i + 1}: not a JSON value (${(err as Error).message}); write one per line, e.g. 42, "text" or {"n": 1}`,
      );
    }
  });
  if (values.length === 0) throw new ApiError("E_USAGE", `${where}: no items`);
  return values;
}

function wholeNumber(flag: string, raw: string | undefined, min: number, max: number) {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new ApiError("E_USAGE", `${flag} ${raw}: expected a whole number from ${min} to ${max}`);
  return n;
}

/** `counts` as `job show --json` gives them: the API's, and `done` (finished fine). */
function withDone(job: StoredJob): StoredJob & { counts: StoredJob["counts"] & { done: number } } {
  return { ...job, counts: { ...job.counts, done: job.counts.ok } };
}

/** One line of progress: done, failed, running, queued, items/s and the time left. */
export function progressLine(job: StoredJob, perSecond: number): string {
  const c = job.counts;
  const finished = c.ok + c.failed + c.cancelled;
  const width = 24;
  const filled = c.total === 0 ? width : Math.floor((finished / c.total) * width);
  const left = c.total - finished;
  const eta = perSecond > 0 && left > 0 ? `, ETA ${duration(left / perSecond)}` : "";
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${finished}/${c.total} · ${c.ok} done, ${c.failed} failed, ${c.running} running, ${c.queued} queued · ${perSecond.toFixed(1)} items/s${eta}${perNodeText(job, 4)}`;
}

/** ` · pi-a 120, pi-b 98, +3 nodes`: items each node finished, the busiest first. */
export function perNodeText(job: StoredJob, most: number): string {
  const nodes = [...(job.nodes ?? [])].sort((a, b) => b.ok + b.failed - (a.ok + a.failed));
  if (nodes.length === 0) return "";
  const shown = nodes.slice(0, most).map((n) => `${safeLine(n.name)} ${n.ok + n.failed}`);
  const more = nodes.length > most ? `, +${nodes.length - most} nodes` : "";
  return ` · ${shown.join(", ")}${more}`;
}

function summary(job: StoredJob): string {
  const c = job.counts;
  const took =
    job.finishedAt === undefined ? "" : ` in ${duration((job.finishedAt - job.createdAt) / 1000)}`;
  return `job ${job.id}: ${safeLine(job.task)} on ${safeLine(job.selector)} — ${job.status}${took}: ${c.ok} done, ${c.failed} failed, ${c.cancelled} cancelled of ${c.total}${job.reason === undefined ? "" : ` (${safeLine(job.reason)})`}\n`;
}

/** Every item of a job, a page at a time. */
async function* allItems(
  config: Parameters<typeof getJson>[0],
  id: number,
  state: string | undefined,
): AsyncGenerator<StoredJobItem> {
  let after = -1;
  for (;;) {
    const q = `after=${after}&limit=${PAGE}${state === undefined ? "" : `&state=${state}`}`;
    const { items } = await getJson<{ items: StoredJobItem[] }>(
      config,
      `/api/jobs/${id}/results?${q}`,
    );
    for (const item of items) yield item;
    if (items.length < PAGE) return;
    after = items.at(-1)?.index ?? after;
  }
}

function csvCell(v: string): string {
  return /[",\n\r]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
}

function jobId(raw: string): number {
  if (!/^\d+$/.test(raw)) throw new ApiError("E_USAGE", `"${raw}" is not a job id`);
  return Number(raw);
}

export function registerJobCommands(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
): void {
  const job = program
    .command("job")
    .description("distributed work: one task run once per item on whichever nodes are free");

  job
    .command("run")
    .description("submit a job and follow it with a live progress line (Ctrl-C detaches)")
    .argument("<task>", "a task the nodes allow (their [tasks] and [task.NAME] config)")
    .option("--on <selector>", "the nodes that may take items", selectorArg, "all")
    .option("--range <a..b>", "the items are the whole numbers from a to b; each fills {item}")
    .option("--items <file>", "one JSON value or object per line (- for stdin)")
    .option(
      "--arg <name=value>",
      "an argument template, e.g. n={item} or path={item.file} (repeat for more)",
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option("--per-node <n>", "at most n items of this job at once on a node")
    .option(
      "--retries <n>",
      "times an item lost to a node going down or timing out is tried again (default 2)",
    )
    .option("--retry-failed", "try an item that failed (non-zero exit) again too")
    .option("--item-timeout <duration>", "kill an item on its node after this long, e.g. 5m")
    .option("--detach", "submit, print the job id and return")
    .option("--json", 'print the finished job (with --detach: {"id": …}) as JSON')
    .addHelpText(
      "after",
      "\nExamples:\n  picluster job run primes --range 1..10000 --arg n={item}\n  picluster job run resize --on rack=a --items photos.jsonl --per-node 2\n  seq 1 100 | picluster job run square --arg n={item} --detach\n\nWithout --range or --items, items are read from stdin. Exit code 1 when an item failed.\n",
    )
    .action(
      (
        task: string,
        opts: {
          on: string;
          range?: string;
          items?: string;
          arg: string[];
          perNode?: string;
          retries?: string;
          retryFailed?: boolean;
          itemTimeout?: string;
          detach?: boolean;
          json?: boolean;
        },
        cmd: Command,
      ) =>
        runWithConfig(cmd, io, setExit, async (config) => {
          if (apiToken(config) === "") {
            io.err(`error: submitting a job needs the API token: ${tokenHint(config)}\n`);
            return EXIT_USAGE;
          }
          if (opts.range !== undefined && opts.items !== undefined) {
            io.err("error: give the items with --range or --items, not both\n");
            return EXIT_USAGE;
          }
          let items:
            | { kind: "range"; from: number; to: number }
            | { kind: "list"; values: JsonValue[] };
          if (opts.range !== undefined) items = parseRangeArg(opts.range);
          else if (opts.items !== undefined && opts.items !== "-")
            items = {
              kind: "list",
              values: parseItemLines(readFileSync(opts.items, "utf8"), opts.items),
            };
          else items = { kind: "list", values: parseItemLines(readFileSync(0, "utf8"), "stdin") };
          let timeoutMs: number | undefined;
          if (opts.itemTimeout !== undefined) {
            const parsed = durationType(1_000, 7 * 86_400_000).parse(opts.itemTimeout);
            if (!parsed.ok)
              throw new ApiError(
                "E_USAGE",
                `--item-timeout ${opts.itemTimeout}: expected ${parsed.expected}`,
              );
            timeoutMs = parsed.value;
          }
          const perNode = wholeNumber("--per-node", opts.perNode, 1, 64);
          const retries = wholeNumber("--retries", opts.retries, 0, 100);
          const submitted = await callJson<StoredJob>(config, "POST", "/api/jobs", {
            task,
            on: opts.on,
            items,
            args: parseArgs(opts.arg),
            ...(perNode === undefined ? {} : { perNode }),
            ...(retries === undefined ? {} : { retries }),
            ...(opts.retryFailed ? { retryFailed: true } : {}),
            ...(timeoutMs === undefined ? {} : { timeoutMs }),
          });
          if (opts.detach) {
            io.out(opts.json ? `${JSON.stringify({ id: submitted.id })}\n` : `${submitted.id}\n`);
            return EXIT_OK;
          }
          // Follow: poll the job, a progress line on a terminal; Ctrl-C leaves it running.
          let detached = false;
          const onSigint = () => {
            detached = true;
          };
          process.once("SIGINT", onSigint);
          let current = submitted;
          let lastNodes: StoredJob["nodes"];
          let last = { at: Date.now(), finished: 0 };
          let rate = 0;
          try {
            while (!ENDED.has(current.status) && !detached) {
              await new Promise((r) => setTimeout(r, POLL_MS));
              current = await getJson<StoredJob>(config, `/api/jobs/${submitted.id}`);
              if (current.nodes !== undefined) lastNodes = current.nodes;
              const c = current.counts;
              const finished = c.ok + c.failed + c.cancelled;
              const now = Date.now();
              if (now - last.at >= 1_000) {
                const instant = ((finished - last.finished) * 1000) / (now - last.at);
                rate = rate === 0 ? instant : rate * 0.7 + instant * 0.3;
                last = { at: now, finished };
              }
              if (io.errIsTty === true) io.err(`\r\u001b[2K${progressLine(current, rate)}`);
            }
          } finally {
            process.removeListener("SIGINT", onSigint);
            if (io.errIsTty === true) io.err("\r\u001b[2K");
          }
          if (detached) {
            io.err(
              `detached: job ${current.id} keeps running (picluster job show ${current.id}; picluster job cancel ${current.id})\n`,
            );
            return EXIT_OK;
          }
          if (opts.json) io.out(`${safeJson(withDone(current))}\n`);
          else {
            io.out(summary(current));
            // Each node's share, as last seen while it ran (a finished job no longer carries it).
            const nodes = current.nodes ?? lastNodes;
            if (nodes !== undefined && nodes.length > 0)
              io.out(
                table(
                  ["NODE", "DONE", "FAILED"],
                  [...nodes]
                    .sort((a, b) => b.ok + b.failed - (a.ok + a.failed))
                    .map((n) => [safeLine(n.name), String(n.ok), String(n.failed)]),
                ),
              );
          }
          return current.status === "ok" ? EXIT_OK : EXIT_FAILED;
        }),
    );

  job
    .command("show")
    .description("where a job stands: its items by state, how it ended")
    .argument("<id>", "the job's id")
    .option("--json", "print as JSON (counts: queued, running, done, failed, cancelled, total)")
    .action((id: string, opts: { json?: boolean }, cmd: Command) =>
      runWithConfig(cmd, io, setExit, async (config) => {
        const found = await getJson<StoredJob>(config, `/api/jobs/${jobId(id)}`);
        if (opts.json) {
          io.out(`${safeJson(withDone(found))}\n`);
          return EXIT_OK;
        }
        io.out(summary(found));
        for (const s of found.skipped ?? [])
          io.out(`  ${safeLine(s.name)} takes no items: ${safeLine(s.reason)}\n`);
        return EXIT_OK;
      }),
    );

  job
    .command("results")
    .description("every item's result, in item order")
    .argument("<id>", "the job's id")
    .option("--json", "one JSON object per line: item, node, ok, exitCode, durationMs, output")
    .option("--csv", "comma-separated, with a header line")
    .option("--failed", "only the items that failed")
    .action((id: string, opts: { json?: boolean; csv?: boolean; failed?: boolean }, cmd: Command) =>
      runWithConfig(cmd, io, setExit, async (config) => {
        const n = jobId(id);
        const { nodes } = await getJson<{ nodes: NodeView[] }>(config, "/api/nodes");
        const names = new Map(nodes.map((x) => [x.id, x.name]));
        const rows: string[][] = [];
        if (opts.csv) io.out("item,node,ok,exit_code,duration_ms,output\n");
        for await (const item of allItems(config, n, opts.failed ? "failed" : undefined)) {
          const node = item.nodeId === null ? null : (names.get(item.nodeId) ?? item.nodeId);
          const ok = item.state === "ok";
          if (opts.json)
            io.out(
              `${JSON.stringify({ item: item.value, node, ok, exitCode: item.exitCode, durationMs: item.durationMs, output: item.output, ...(item.error === undefined ? {} : { error: item.error }) })}\n`,
            );
          else if (opts.csv)
            io.out(
              `${[typeof item.value === "string" ? item.value : JSON.stringify(item.value), node ?? "", String(ok), item.exitCode === null ? "" : String(item.exitCode), item.durationMs === null ? "" : String(item.durationMs), item.output].map(csvCell).join(",")}\n`,
            );
          else
            rows.push([
              safeLine(JSON.stringify(item.value)),
              safeLine(node ?? "–"),
              item.state,
              item.exitCode === null ? "–" : String(item.exitCode),
              item.durationMs === null ? "–" : `${(item.durationMs / 1000).toFixed(1)}s`,
              safeLine((item.error ?? item.output).split("\n")[0] ?? ""),
            ]);
        }
        if (!opts.json && !opts.csv)
          io.out(table(["ITEM", "NODE", "STATE", "EXIT", "TIME", "OUTPUT"], rows));
        return EXIT_OK;
      }),
    );

  job
    .command("cancel")
    .description("stop handing out a job's items and stop those running")
    .argument("<id>", "the job's id")
    .option("--json", "print the job as JSON")
    .action((id: string, opts: { json?: boolean }, cmd: Command) =>
      runWithConfig(cmd, io, setExit, async (config) => {
        const cancelled = await callJson<StoredJob>(config, "DELETE", `/api/jobs/${jobId(id)}`);
        io.out(opts.json ? `${safeJson(withDone(cancelled))}\n` : summary(cancelled));
        return EXIT_OK;
      }),
    );

  program
    .command("jobs")
    .description("recent jobs")
    .option("-n, --limit <n>", "how many jobs to list", "20")
    .option("--json", "print as JSON")
    .action((opts: { limit: string; json?: boolean }, cmd: Command) =>
      runWithConfig(cmd, io, setExit, async (config) => {
        const { jobs } = await getJson<{ jobs: StoredJob[] }>(
          config,
          `/api/jobs?limit=${encodeURIComponent(opts.limit)}`,
        );
        if (opts.json) {
          io.out(`${safeJson(jobs.map(withDone))}\n`);
          return EXIT_OK;
        }
        io.out(
          table(
            ["ID", "TASK", "ON", "STATUS", "DONE", "FAILED", "TOTAL", "STARTED", "BY"],
            jobs.map((j) => [
              String(j.id),
              safeLine(j.task),
              safeLine(j.selector),
              j.status,
              String(j.counts.ok),
              String(j.counts.failed),
              String(j.counts.total),
              ago(j.createdAt),
              safeLine(j.requestedBy),
            ]),
          ),
        );
        return EXIT_OK;
      }),
    );
}
