/** `picluster status|nodes|node show|events|vitals`: reading the cluster through the HTTP API. */

import type { NodeView as ApiNodeView, NodeDetail } from "@picluster/common";
import {
  describeError,
  durationType,
  isMetricName,
  localTime,
  METRIC_NAMES,
  type MetricName,
  zoneLabel,
} from "@picluster/common";
import type { Command } from "commander";
import { apiBase, getJson } from "../api-client.js";
import { configRunner } from "../config-options.js";
import { ago, bytes, duration, selectorArg, sparkline, stateText, table } from "../format.js";
import { type CliIo, EXIT_FAILED, EXIT_OK } from "../io.js";
import { nodeName, safeJson, safeLine } from "../safe.js";

/** A node as the API answers (common/api/nodes.ts): in lists without its details, alone with them. */
type NodeView = ApiNodeView & { details?: NodeDetail["details"] };

const pct = (used: number, total: number) =>
  total > 0 ? `${((used / total) * 100).toFixed(0)}%` : "–";

/** Ids of the nodes whose name another node has too (an agent and a tutorial node on one host). */
function sharedNames(nodes: readonly NodeView[]): Set<string> {
  const count = new Map<string, number>();
  for (const n of nodes) count.set(n.name, (count.get(n.name) ?? 0) + 1);
  return new Set(nodes.filter((n) => (count.get(n.name) ?? 0) > 1).map((n) => n.id));
}

/** A node's name in a listing; when another has the same, its id too, which commands take. */
function listedName(n: NodeView, shared: ReadonlySet<string>): string {
  const name = nodeName(n.name, n.legacy);
  return shared.has(n.id) ? `${name} [id ${safeLine(n.id)}]` : name;
}

function row(n: NodeView, colour: boolean, shared: ReadonlySet<string> = new Set()): string[] {
  const v = n.vitals;
  const root = v?.disks.find((d) => d.mount === "/") ?? v?.disks[0];
  const temp =
    v && v.temps.length > 0 ? `${Math.max(...v.temps.map((t) => t.celsius)).toFixed(1)}°C` : "–";
  const power = v?.throttling
    ? v.throttling.underVoltage
      ? "UNDER-VOLTAGE"
      : v.throttling.throttled || v.throttling.freqCapped
        ? "throttled"
        : "ok"
    : "";
  return [
    listedName(n, shared),
    `${stateText(n.state, colour)} ${ago(n.stateSince)}`,
    v ? `${v.cpu.total.toFixed(0)}%` : "–",
    temp,
    v ? pct(v.memory.usedBytes, v.memory.totalBytes) : "–",
    root ? pct(root.usedBytes, root.sizeBytes) : "–",
    v?.uptimeS === undefined ? "–" : duration(v.uptimeS),
    power,
  ];
}

/** How far back `vitals` looks in raw samples when the rollup it asked for has none yet. */
const RAW_FALLBACK_MS = 10 * 60_000;

const HEADER = ["NAME", "STATE", "CPU", "TEMP", "MEM", "DISK", "UPTIME", "POWER"];

export function registerReadCommands(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
): void {
  const run = configRunner(io, setExit);

  /** The nodes `--on` selects; a name that matches none is a warning and exit 1. */
  const listNodes = async (
    config: Parameters<typeof getJson>[0],
    on: string | undefined,
  ): Promise<{ nodes: NodeView[]; unknownNames: string[] }> => {
    const q = on === undefined ? "" : `?on=${encodeURIComponent(on)}`;
    const list = await getJson<{ nodes: NodeView[]; unknownNames?: string[] }>(
      config,
      `/api/nodes${q}`,
    );
    const unknownNames = list.unknownNames ?? [];
    for (const name of unknownNames) io.err(`warning: no node is called "${safeLine(name)}"\n`);
    return { nodes: list.nodes, unknownNames };
  };
  const ON_HELP = "only these nodes: all, names or ids, label=value or a state, joined with commas";

  program
    .command("status")
    .description("one screen: counts by state and a table of nodes")
    .option("--on <selector>", ON_HELP, selectorArg)
    .option("--json", "print as JSON")
    .addHelpText(
      "after",
      "\nExamples:\n  picluster status\n  picluster status --on rack=a,down\n\nTotals count each machine once: a tutorial node on an agent's machine adds nothing.\n",
    )
    .action((opts: { on?: string; json?: boolean }, cmd: Command) =>
      run(cmd, async (config) => {
        const q = opts.on === undefined ? "" : `?on=${encodeURIComponent(opts.on)}`;
        const [cluster, list] = await Promise.all([
          getJson<{
            nodes: number;
            states: Record<string, number>;
            totals: { cores: number; memoryBytes: number };
            sameMachine?: number;
          }>(config, `/api/cluster${q}`),
          listNodes(config, opts.on),
        ]);
        const code = list.unknownNames.length > 0 ? EXIT_FAILED : EXIT_OK;
        if (opts.json) {
          io.out(`${safeJson({ ...cluster, list: list.nodes })}\n`);
          return code;
        }
        const s = cluster.states;
        const c = io.isTty;
        const once = cluster.sameMachine ?? 0;
        io.out(
          `${cluster.nodes} nodes: ${s.alive} ${stateText("alive", c)}, ${s.suspect} ${stateText("suspect", c)}, ${s.down} ${stateText("down", c)}, ${s.left} ${stateText("left", c)}` +
            ` · ${cluster.totals.cores} cores, ${bytes(cluster.totals.memoryBytes)}` +
            (once === 0
              ? ""
              : ` (${once} tutorial node${once === 1 ? "" : "s"} on an agent's machine not counted again)`) +
            "\n\n",
        );
        const shared = sharedNames(list.nodes);
        io.out(
          table(
            HEADER,
            list.nodes.map((n) => row(n, c, shared)),
          ),
        );
        return code;
      }),
    );

  program
    .command("nodes")
    .description("list the nodes")
    .option("--on <selector>", ON_HELP, selectorArg)
    .option("--json", "print as JSON")
    .addHelpText(
      "after",
      "\nExamples:\n  picluster nodes --on down\n  picluster nodes --json | jq '.[] | select(.state != \"alive\") | .name'\n",
    )
    .action((opts: { on?: string; json?: boolean }, cmd: Command) =>
      run(cmd, async (config) => {
        const list = await listNodes(config, opts.on);
        if (opts.json) io.out(`${safeJson(list.nodes)}\n`);
        else {
          const shared = sharedNames(list.nodes);
          io.out(
            table(
              HEADER,
              list.nodes.map((n) => row(n, io.isTty, shared)),
            ),
          );
        }
        return list.unknownNames.length > 0 ? EXIT_FAILED : EXIT_OK;
      }),
    );

  const node = program.commands.find((c) => c.name() === "node") ?? program.command("node");
  node
    .command("show <name>")
    .description("one node in full: state, details, latest vitals")
    .option("--json", "print as JSON")
    .addHelpText("after", "\nExample:\n  picluster node show pi-01\n")
    .action((name: string, opts: { json?: boolean }, cmd: Command) =>
      run(cmd, async (config) => {
        const n = await getJson<NodeView>(config, `/api/nodes/${encodeURIComponent(name)}`);
        if (opts.json) {
          io.out(`${safeJson(n)}\n`);
          return;
        }
        const d = n.details;
        const lines = [
          `${nodeName(n.name, n.legacy)}  ${stateText(n.state, io.isTty)} for ${ago(n.stateSince)} (${safeLine(n.stateReason)})`,
          `  id ${safeLine(n.id)}  address ${safeLine(n.address)}  agent ${safeLine(n.agentVersion)}`,
          `  labels ${
            Object.entries(n.labels)
              .map(([k, v]) => safeLine(`${k}=${v}`))
              .join(", ") || "–"
          }`,
        ];
        if (d) {
          lines.push(
            safeLine(
              `  ${d.board?.model ?? d.cpu.model} · ${d.cpu.cores} cores · ${bytes(d.memory.totalBytes)} · ${d.os.name} ${d.os.version} · kernel ${d.kernel || "?"} ${d.arch}`,
            ),
          );
          if (d.updates !== undefined)
            lines.push(
              `  updates ${d.updates.available} available (checked ${ago(d.updates.checkedAt)} ago)`,
            );
          if (d.tasks !== undefined)
            lines.push(
              `  tasks ${d.tasks.map((t) => safeLine(t.name)).join(", ") || "none allowed"}`,
            );
        }
        // A name two nodes share (an agent and a tutorial node on one host): say how to reach the other.
        const others = (await getJson<{ nodes: NodeView[] }>(config, "/api/nodes")).nodes.filter(
          (o) => o.name === n.name && o.id !== n.id,
        );
        for (const o of others)
          lines.push(
            `  ${nodeName(o.name, o.legacy)} is another node: \`picluster node show ${safeLine(o.id)}\``,
          );
        io.out(`${lines.join("\n")}\n\n${table(HEADER, [row(n, io.isTty)])}`);
      }),
    );

  program
    .command("events")
    .description("recent events, oldest first (the newest --limit of them), or follow them live")
    .option("--node <name>", "only this node")
    .option("--kind <kind>", "only this kind, e.g. node.state")
    .option("-n, --limit <n>", "how many of the newest events", "50")
    .option(
      "--follow",
      "keep printing new events as they happen (reconnects if the primary restarts)",
    )
    .option("--json", "one JSON object per event")
    .addHelpText(
      "after",
      "\nExamples:\n  picluster events --node pi-01 --kind node.state\n  picluster events --follow\n",
    )
    .action(
      (
        opts: { node?: string; kind?: string; limit: string; follow?: boolean; json?: boolean },
        cmd: Command,
      ) =>
        run(cmd, async (config) => {
          const q = new URLSearchParams({ limit: opts.limit });
          if (opts.node) q.set("node", opts.node);
          if (opts.kind) q.set("kind", opts.kind);
          const { events } = await getJson<{ events: StreamedEvent[] }>(config, `/api/events?${q}`);
          // Which nodes are the tutorial's, to say so next to their names.
          const legacy = new Set(
            opts.json
              ? []
              : (await getJson<{ nodes: NodeView[] }>(config, "/api/nodes")).nodes
                  .filter((n) => n.legacy)
                  .map((n) => n.id),
          );
          const print = (e: StreamedEvent) => {
            if (opts.json) return io.out(`${safeJson(e)}\n`);
            const name = nodeName(
              typeof e.data.name === "string" ? e.data.name : "",
              e.nodeId !== null && legacy.has(e.nodeId),
            );
            io.out(
              `${localTime(e.ts)}  ${name.padEnd(16)} ${safeLine(e.kind).padEnd(16)} ${eventWhat(e, io.isTty)}\n`,
            );
          };
          if (!opts.json) io.out(`times in ${zoneLabel(Date.now())}, oldest first\n`);
          // The API answers newest first; a log reads down, and --follow goes on below.
          for (const e of [...events].reverse()) print(e);
          if (!opts.follow) return;
          await followStream(
            config,
            events[0]?.id ?? 0,
            (e) => {
              if (
                (opts.kind && e.kind !== opts.kind) ||
                (opts.node && e.data.name !== opts.node && e.nodeId !== opts.node)
              )
                return;
              print(e);
            },
            (note) => io.err(`${note}\n`),
          );
        }),
    );

  program
    .command("vitals <name>")
    .description("a node's figures over time, as small terminal charts")
    .option(
      "--metric <metric>",
      "one metric (cpu, load1, temp, mem, swap, disk, net_rx, net_tx, disk_read, disk_write, freq)",
    )
    .option("--since <duration>", "how far back", "1h")
    .option("--json", "print as JSON")
    .addHelpText(
      "after",
      "\nExamples:\n  picluster vitals pi-01\n  picluster vitals pi-01 --metric temp --since 24h\n",
    )
    .action(
      (name: string, opts: { metric?: string; since: string; json?: boolean }, cmd: Command) =>
        run(cmd, async (config) => {
          const since = durationType(60_000, 400 * 86_400_000).parse(opts.since);
          if (!since.ok)
            throw new Error(`--since: expected ${since.expected}, got "${opts.since}"`);
          const to = Date.now();
          const from = to - since.value;
          if (opts.metric !== undefined && !isMetricName(opts.metric))
            throw new Error(
              `--metric: expected one of ${METRIC_NAMES.join(", ")}, got "${opts.metric}"`,
            );
          const metrics: readonly MetricName[] = opts.metric
            ? [opts.metric]
            : ["cpu", "temp", "mem", "disk", "net_rx", "net_tx"];
          const step = Math.max(1_000, Math.ceil(since.value / 60));
          type Answer = {
            metric: string;
            resolution: string;
            points: Array<{ ts: number; avg: number | null }>;
          };
          const ask = (metric: string, askFrom: number, askStep: number) =>
            getJson<Answer>(
              config,
              `/api/nodes/${encodeURIComponent(name)}/vitals?metric=${metric}&from=${askFrom}&to=${to}&step=${askStep}`,
            );
          const all: Answer[] = [];
          for (const metric of metrics) {
            let series = await ask(metric, from, step);
            // A node that joined a minute ago has raw samples but no rollup yet:
            // show those rather than nothing.
            if (series.points.length === 0 && series.resolution !== "raw") {
              const recent = Math.max(from, to - RAW_FALLBACK_MS);
              series = await ask(metric, recent, Math.max(1_000, Math.ceil((to - recent) / 60)));
            }
            all.push(series);
          }
          if (opts.json) {
            io.out(`${safeJson(all)}\n`);
            return;
          }
          for (const s of all) {
            const values = s.points.map((p) => p.avg);
            const last = values.filter((v): v is number => v !== null).at(-1);
            io.out(
              `${s.metric.padEnd(10)} ${sparkline(values).padEnd(60)} ${last === undefined ? "–" : last.toFixed(1)}\n`,
            );
          }
        }),
    );
}

/** A stored event as the API and the stream give it. */
interface StreamedEvent {
  id: number;
  ts: number;
  kind: string;
  nodeId: string | null;
  data: Record<string, unknown>;
}

/** The WHAT column of `events`: the event in a few words. */
export function eventWhat(e: StreamedEvent, colour: boolean): string {
  const d = e.data;
  const text = (v: unknown) => safeLine(String(v ?? ""));
  const run = `run ${text(d.runId)}: ${text(d.task)}`;
  switch (e.kind) {
    case "node.state":
      return `${text(d.from ?? "new")} → ${stateText(text(d.to), colour)} (${text(d.reason)})`;
    case "node.throttling":
      return `${text(d.flag)} ${d.on ? "ON" : "off"}`;
    case "check.down":
    case "check.up":
      return `${text(d.check)} ${e.kind === "check.down" ? "DOWN" : "up"}: ${text(d.reason)}`;
    case "container.state":
      return `container ${text(d.container)}: ${text(d.from)} → ${text(d.to)}${d.exitCode === undefined ? "" : ` (exit ${text(d.exitCode)})`}`;
    case "node.details":
      return Array.isArray(d.changes) && d.changes.length > 0
        ? d.changes.map(text).join("; ")
        : "details";
    case "node.joined":
      return "joined";
    case "node.removed":
      return `removed by ${text(d.requestedBy)}${d.keepHistory ? " (history kept)" : ""}`;
    case "task.started":
      return `${run} on ${text(d.selector)}, ${text(d.nodes)} node${d.nodes === 1 ? "" : "s"}, by ${text(d.requestedBy)}`;
    case "task.node":
      return `${run} ${text(d.status)}${typeof d.exitCode === "number" ? ` (exit ${d.exitCode})` : ""}${typeof d.error === "string" ? `: ${text(d.error)}` : ""}`;
    case "task.finished":
      return `${run} ${text(d.status)}: ${text(d.ok)} ok, ${text(d.failed)} failed, ${text(d.skipped)} skipped${d.cancelled ? `, ${text(d.cancelled)} cancelled` : ""}`;
    case "alert.firing":
    case "alert.resolved":
      return `${text(d.rule)}: ${text(d.title)}`;
    case "alert.delivery_failed":
      return `${text(d.channel)}: ${text(d.title)} not delivered after ${text(d.attempts)} tries (${text(d.error)})`;
    default: {
      const { name: _name, ...rest } = d;
      return safeJson(rest);
    }
  }
}

/** Waits between reconnects to the event stream: doubling from 500 ms to 10 s, with jitter. */
const FOLLOW_RETRY_BASE_MS = 500;
const FOLLOW_RETRY_MAX_MS = 10_000;
/** Three of the stream's 15 s keep-alives missed. */
const FOLLOW_SILENCE_MS = 45_000;

/**
 * Hand every stored event from the live stream to `onEvent`, resuming after
 * `lastId`, until interrupted. A primary that restarts (or a network that
 * drops) is waited for: the stream reconnects with backoff, resumes after
 * the last event seen, and says so through `note`.
 */
async function followStream(
  config: Parameters<typeof getJson>[0],
  lastId: number,
  onEvent: (e: StreamedEvent) => void,
  note: (text: string) => void,
): Promise<void> {
  let last = lastId;
  let failures = 0;
  for (;;) {
    let reason: string;
    // The primary sends a keep-alive every 15 s: silence past this means it is gone
    // without a word (power cut, cable), which TCP alone would not notice for long.
    const silence = new AbortController();
    let watchdog = setTimeout(() => silence.abort(), FOLLOW_SILENCE_MS);
    try {
      const res = await fetch(`${apiBase(config)}/api/stream`, {
        headers: { "last-event-id": String(last) },
        signal: silence.signal,
      });
      if (!res.ok || res.body === null) throw new Error(`the primary answered ${res.status}`);
      if (failures > 0) note("event stream: reconnected");
      failures = 0;
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        clearTimeout(watchdog);
        watchdog = setTimeout(() => silence.abort(), FOLLOW_SILENCE_MS);
        buffer += decoder.decode(value, { stream: true });
        const frames = buffer.split("\n\n");
        buffer = frames.pop() ?? "";
        for (const frame of frames) {
          const lines = frame.split("\n");
          if (lines.includes("event: resync"))
            note(
              "event stream: some events were missed while away (`picluster events` lists them)",
            );
          const data = lines.find((l) => l.startsWith("data: "));
          // Only stored events carry an id; the vitals batches do not.
          if (data === undefined || !lines.some((l) => l.startsWith("id: "))) continue;
          const e = JSON.parse(data.slice(6)) as StreamedEvent;
          last = Math.max(last, e.id);
          onEvent(e);
        }
      }
      reason = "the primary closed it";
    } catch (err) {
      // fetch hides why in `cause` (ECONNREFUSED while the primary is away).
      const cause = (err as { cause?: { code?: string } }).cause;
      reason = silence.signal.aborted
        ? `nothing heard for ${FOLLOW_SILENCE_MS / 1000} s`
        : (cause?.code ?? describeError(err));
    } finally {
      clearTimeout(watchdog);
    }
    const step = Math.min(FOLLOW_RETRY_MAX_MS, FOLLOW_RETRY_BASE_MS * 2 ** Math.min(failures, 10));
    const waitMs = Math.round(step / 2 + (Math.random() * step) / 2);
    failures += 1;
    note(
      `event stream lost (${safeLine(reason)}); reconnecting in ${(waitMs / 1000).toFixed(1)} s`,
    );
    await new Promise((resolve) => setTimeout(resolve, waitMs));
  }
}
