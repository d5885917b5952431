/** `picluster status|nodes|node show|events|vitals`: reading the cluster through the HTTP API. */

import { durationType } from "@picluster/common";
import type { Command } from "commander";
import { getJson } from "../api-client.js";
import { type loadCliConfig, runWithConfig } from "../config-options.js";
import { ago, bytes, duration, sparkline, stateText, table } from "../format.js";
import type { CliIo } from "../io.js";
import { nodeName, safeJson, safeLine } from "../safe.js";

interface NodeView {
  id: string;
  name: string;
  state: string;
  stateSince: number;
  stateReason: string;
  labels: Record<string, string>;
  address: string;
  legacy: boolean;
  agentVersion: string;
  vitals: null | {
    cpu: { total: number };
    temps: Array<{ celsius: number }>;
    memory: { totalBytes: number; usedBytes: number };
    disks: Array<{ mount: string; usedBytes: number; sizeBytes: number }>;
    uptimeS?: number;
    throttling?: { underVoltage: boolean; throttled: boolean; freqCapped: boolean };
  };
  details?: null | {
    os: { name: string; version: string };
    kernel: string;
    arch: string;
    cpu: { model: string; cores: number };
    memory: { totalBytes: number };
    board?: { model: string };
    updates?: { available: number; checkedAt: number };
    tasks?: Array<{ name: string }>;
  };
}

const pct = (used: number, total: number) =>
  total > 0 ? `${((used / total) * 100).toFixed(0)}%` : "–";

function row(n: NodeView, colour: boolean): string[] {
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
    nodeName(n.name, n.legacy),
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
  const run = (
    cmd: Command,
    body: (config: NonNullable<ReturnType<typeof loadCliConfig>>["config"]) => Promise<void>,
  ) => runWithConfig(cmd, io, setExit, body);

  program
    .command("status")
    .description("one screen: counts by state and a table of nodes")
    .option("--json", "print as JSON")
    .addHelpText("after", "\nExample:\n  picluster status\n")
    .action((opts: { json?: boolean }, cmd: Command) =>
      run(cmd, async (config) => {
        const [cluster, list] = await Promise.all([
          getJson<{
            nodes: number;
            states: Record<string, number>;
            totals: { cores: number; memoryBytes: number };
          }>(config, "/api/cluster"),
          getJson<{ nodes: NodeView[] }>(config, "/api/nodes"),
        ]);
        if (opts.json) {
          io.out(`${safeJson({ ...cluster, list: list.nodes })}\n`);
          return;
        }
        const s = cluster.states;
        const c = io.isTty;
        io.out(
          `${cluster.nodes} nodes: ${s.alive} ${stateText("alive", c)}, ${s.suspect} ${stateText("suspect", c)}, ${s.down} ${stateText("down", c)}, ${s.left} ${stateText("left", c)}` +
            ` · ${cluster.totals.cores} cores, ${bytes(cluster.totals.memoryBytes)}\n\n`,
        );
        io.out(
          table(
            HEADER,
            list.nodes.map((n) => row(n, c)),
          ),
        );
      }),
    );

  program
    .command("nodes")
    .description("list the nodes")
    .option("--json", "print as JSON")
    .addHelpText(
      "after",
      "\nExample:\n  picluster nodes --json | jq '.[] | select(.state != \"alive\") | .name'\n",
    )
    .action((opts: { json?: boolean }, cmd: Command) =>
      run(cmd, async (config) => {
        const list = await getJson<{ nodes: NodeView[] }>(config, "/api/nodes");
        if (opts.json) io.out(`${safeJson(list.nodes)}\n`);
        else
          io.out(
            table(
              HEADER,
              list.nodes.map((n) => row(n, io.isTty)),
            ),
          );
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
        io.out(`${lines.join("\n")}\n\n${table(HEADER, [row(n, io.isTty)])}`);
      }),
    );

  program
    .command("events")
    .description("recent events, newest first (or follow them live)")
    .option("--node <name>", "only this node")
    .option("--kind <kind>", "only this kind, e.g. node.state")
    .option("--limit <n>", "how many", "50")
    .option("--follow", "keep printing new events as they happen")
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
          const { events } = await getJson<{
            events: Array<{
              id: number;
              ts: number;
              kind: string;
              nodeId: string | null;
              data: Record<string, unknown>;
            }>;
          }>(config, `/api/events?${q}`);
          // Which nodes are the tutorial's, to say so next to their names.
          const legacy = new Set(
            opts.json
              ? []
              : (await getJson<{ nodes: NodeView[] }>(config, "/api/nodes")).nodes
                  .filter((n) => n.legacy)
                  .map((n) => n.id),
          );
          const print = (e: {
            ts: number;
            kind: string;
            nodeId: string | null;
            data: Record<string, unknown>;
          }) => {
            if (opts.json) return io.out(`${safeJson(e)}\n`);
            const d = e.data;
            const what =
              e.kind === "node.state"
                ? `${safeLine(String(d.from ?? "new"))} → ${stateText(safeLine(String(d.to)), io.isTty)} (${safeLine(String(d.reason))})`
                : e.kind === "node.throttling"
                  ? `${safeLine(String(d.flag))} ${d.on ? "ON" : "off"}`
                  : "";
            const name = nodeName(String(d.name ?? ""), e.nodeId !== null && legacy.has(e.nodeId));
            io.out(
              `${new Date(e.ts).toISOString()}  ${name.padEnd(16)} ${safeLine(e.kind).padEnd(16)} ${what}\n`,
            );
          };
          for (const e of [...events].reverse()) print(e);
          if (!opts.follow) return;
          await followStream(config, events[0]?.id ?? 0, (e) => {
            if (
              (opts.kind && e.kind !== opts.kind) ||
              (opts.node && e.data.name !== opts.node && e.nodeId !== opts.node)
            )
              return;
            print(e);
          });
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
          const metrics = opts.metric
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

/** Print events from the live stream until interrupted. */
async function followStream(
  config: Parameters<typeof getJson>[0],
  lastId: number,
  onEvent: (e: {
    id: number;
    ts: number;
    kind: string;
    nodeId: string | null;
    data: Record<string, unknown>;
  }) => void,
): Promise<void> {
  const { apiBase } = await import("../api-client.js");
  const res = await fetch(`${apiBase(config)}/api/stream`, {
    headers: { "last-event-id": String(lastId) },
  });
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    const frames = buffer.split("\n\n");
    buffer = frames.pop() ?? "";
    for (const frame of frames) {
      const data = frame.split("\n").find((l) => l.startsWith("data: "));
      // Only stored events carry an id; the vitals batches do not.
      const stored = frame.split("\n").some((l) => l.startsWith("id: "));
      if (data === undefined || !stored) continue;
      onEvent(JSON.parse(data.slice(6)));
    }
  }
}
