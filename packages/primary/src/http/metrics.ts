/**
 * GET /metrics in the Prometheus text exposition format (0.0.4): every
 * node's state and latest vitals, labelled with its id, name and labels, and
 * the primary's own process, connection and ingest figures. Written by hand:
 * it is a small, fixed format, and prom-client's registry model (metrics
 * registered once, updated in place) does not fit series that come and go
 * with nodes.
 */
import { errorMessage, NODE_STATES, splitSeriesKey } from "@picluster/common";
import type { FastifyInstance } from "fastify";
import type { AlertState } from "../alerts/engine.js";
import type { NodeRecord, Registry } from "../registry.js";
import { sendError } from "./guard.js";

export interface ProcessStats {
  rssBytes: number;
  cpuSecondsTotal: number;
  startTimeSeconds: number;
  sessions: number;
  legacySessions: number;
  samplesTotal: number;
  /** Whether the store can write (0: a full or read-only disk; nothing new is stored). */
  storeOk?: boolean;
  /** Open HTTP event streams (`/api/stream`, task output, followed logs). */
  httpStreams?: number;
  /** With `[heartbeat] url` set: when a heartbeat was last taken, Unix seconds (0: never yet). */
  heartbeatLastSuccessSeconds?: number;
}

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/** A node label key as a Prometheus label name: `label_` + [a-zA-Z0-9_]. */
function labelName(key: string): string {
  return `label_${key.replace(/[^a-zA-Z0-9_]/g, "_")}`;
}

function nodeLabels(n: NodeRecord): string {
  const parts = [`node_id="${escapeLabel(n.id)}"`, `name="${escapeLabel(n.name)}"`];
  const seen = new Set(["node_id", "name"]);
  for (const [k, v] of Object.entries(n.labels).sort(([a], [b]) => a.localeCompare(b))) {
    const name = labelName(k);
    if (seen.has(name)) continue;
    seen.add(name);
    parts.push(`${name}="${escapeLabel(v)}"`);
  }
  return parts.join(",");
}

function num(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(v);
}

class Exposition {
  private readonly lines: string[] = [];

  family(
    name: string,
    type: "gauge" | "counter",
    help: string,
    samples: Array<[string, number]>,
  ): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples)
      this.lines.push(`${name}${labels === "" ? "" : `{${labels}}`} ${num(value)}`);
  }

  text(): string {
    return `${this.lines.join("\n")}\n`;
  }
}

type PerNode = (n: NodeRecord) => number | undefined;

function perNode(
  nodes: readonly NodeRecord[],
  labels: Map<NodeRecord, string>,
  value: PerNode,
): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  for (const n of nodes) {
    const v = value(n);
    if (v !== undefined && Number.isFinite(v)) out.push([labels.get(n) ?? "", v]);
  }
  return out;
}

/**
 * The nodes' own series (`[metrics.NAME]`), as `picluster_custom_<name>`
 * gauges with the node's labels and the series' own; a series label that
 * clashes with a node label is renamed `exported_<label>`, as Prometheus
 * renames clashing target labels.
 */
function customFamilies(
  e: Exposition,
  nodes: readonly NodeRecord[],
  labels: Map<NodeRecord, string>,
): void {
  const families = new Map<string, Array<[string, number]>>();
  for (const n of nodes) {
    if (n.vitals?.custom === undefined || n.state === "down" || n.state === "left") continue;
    const own = labels.get(n) ?? "";
    const taken = new Set(["node_id", "name", ...Object.keys(n.labels).map(labelName)]);
    for (const { series, value } of n.vitals.custom) {
      if (!Number.isFinite(value)) continue;
      const { name, labels: seriesLabels } = splitSeriesKey(series);
      const extra = seriesLabels.map(
        ([k, v]) => `${taken.has(k) ? `exported_${k}` : k}="${escapeLabel(v)}"`,
      );
      const family = `picluster_custom_${name}`;
      let samples = families.get(family);
      if (samples === undefined) {
        samples = [];
        families.set(family, samples);
      }
      samples.push([[own, ...extra].filter((x) => x !== "").join(","), value]);
    }
  }
  for (const [family, samples] of [...families].sort(([a], [b]) => (a < b ? -1 : 1)))
    e.family(family, "gauge", "A node's own series, from its [metrics.NAME] sections.", samples);
}

/** The nodes' checks: up, latency and certificate expiry per check, with the node's labels. */
function checkFamilies(
  e: Exposition,
  nodes: readonly NodeRecord[],
  labels: Map<NodeRecord, string>,
): void {
  const up: Array<[string, number]> = [];
  const latency: Array<[string, number]> = [];
  const expiry: Array<[string, number]> = [];
  for (const n of nodes) {
    if (n.state !== "alive" && n.state !== "suspect") continue;
    for (const c of n.vitals?.checks ?? []) {
      const l = `${labels.get(n) ?? ""},check="${escapeLabel(c.name)}",kind="${c.kind}"`;
      up.push([l, c.up ? 1 : 0]);
      if (c.latencyMs !== undefined) latency.push([l, c.latencyMs / 1000]);
      if (c.certExpiresAt !== undefined) expiry.push([l, c.certExpiresAt / 1000]);
    }
  }
  e.family(
    "picluster_check_up",
    "gauge",
    "1 while a node's check ([check.NAME]) is up, 0 while it is down.",
    up,
  );
  e.family(
    "picluster_check_latency_seconds",
    "gauge",
    "How long a check's last run took to answer (http, tcp, ping).",
    latency,
  );
  e.family(
    "picluster_check_certificate_expiry_timestamp_seconds",
    "gauge",
    "When the certificate an https check saw expires, Unix seconds.",
    expiry,
  );
}

/** The nodes' containers: running or not, restarts, CPU, memory and network, with the node's labels. */
function containerFamilies(
  e: Exposition,
  nodes: readonly NodeRecord[],
  labels: Map<NodeRecord, string>,
): void {
  const running: Array<[string, number]> = [];
  const restarts: Array<[string, number]> = [];
  const cpu: Array<[string, number]> = [];
  const mem: Array<[string, number]> = [];
  const rx: Array<[string, number]> = [];
  const tx: Array<[string, number]> = [];
  for (const n of nodes) {
    if (n.state !== "alive" && n.state !== "suspect") continue;
    for (const c of n.vitals?.containers ?? []) {
      const l = `${labels.get(n) ?? ""},container="${escapeLabel(c.name)}",image="${escapeLabel(c.image)}"`;
      running.push([l, c.state === "running" ? 1 : 0]);
      restarts.push([l, c.restarts]);
      if (c.cpuPct !== undefined) cpu.push([l, c.cpuPct / 100]);
      if (c.memBytes !== undefined) mem.push([l, c.memBytes]);
      if (c.rxBps !== undefined) rx.push([l, c.rxBps]);
      if (c.txBps !== undefined) tx.push([l, c.txBps]);
    }
  }
  e.family(
    "picluster_container_running",
    "gauge",
    "1 while a node's container runs, else 0.",
    running,
  );
  e.family(
    "picluster_container_restarts",
    "gauge",
    "How many times the engine restarted a container.",
    restarts,
  );
  e.family(
    "picluster_container_cpu_cores",
    "gauge",
    "A container's CPU use over the last sample, in cores.",
    cpu,
  );
  e.family(
    "picluster_container_memory_bytes",
    "gauge",
    "A container's memory use, the page cache left out.",
    mem,
  );
  e.family(
    "picluster_container_network_receive_bytes_per_second",
    "gauge",
    "A container's network traffic in.",
    rx,
  );
  e.family(
    "picluster_container_network_transmit_bytes_per_second",
    "gauge",
    "A container's network traffic out.",
    tx,
  );
}

export function renderMetrics(
  nodes: readonly NodeRecord[],
  stats: ProcessStats,
  version: string,
  alerts: readonly AlertState[] = [],
): string {
  const e = new Exposition();
  e.family(
    "picluster_alert_firing",
    "gauge",
    "1 for every alert rule firing on a node (pending and resolved ones are absent).",
    alerts
      .filter((a) => a.state === "firing")
      .map((a): [string, number] => [
        `rule="${escapeLabel(a.rule)}",node="${escapeLabel(a.name)}",node_id="${escapeLabel(a.nodeId)}",severity="${a.severity}"`,
        1,
      ]),
  );
  const labels = new Map(nodes.map((n) => [n, nodeLabels(n)]));
  const vitals =
    (f: (v: NonNullable<NodeRecord["vitals"]>) => number | undefined): PerNode =>
    (n) =>
      n.vitals === undefined || n.state === "down" || n.state === "left" ? undefined : f(n.vitals);

  e.family("picluster_build_info", "gauge", "The running picluster version.", [
    [`version="${escapeLabel(version)}"`, 1],
  ]);
  e.family(
    "picluster_nodes",
    "gauge",
    "Known nodes by state.",
    NODE_STATES.map((s) => [`state="${s}"`, nodes.filter((n) => n.state === s).length]),
  );
  e.family(
    "picluster_node_up",
    "gauge",
    "1 if the node is alive or suspect (connected), else 0.",
    perNode(nodes, labels, (n) => (n.state === "alive" || n.state === "suspect" ? 1 : 0)),
  );
  e.family(
    "picluster_node_state",
    "gauge",
    "1 for the node's current state, 0 for the others.",
    nodes.flatMap((n) =>
      NODE_STATES.map((s): [string, number] => [
        `${labels.get(n)},state="${s}"`,
        n.state === s ? 1 : 0,
      ]),
    ),
  );
  e.family(
    "picluster_node_last_seen_timestamp_seconds",
    "gauge",
    "When the node was last heard from.",
    perNode(nodes, labels, (n) => n.lastSeen / 1000),
  );
  e.family(
    "picluster_node_cpu_usage_ratio",
    "gauge",
    "CPU busy over the last interval, all cores, 0 to 1.",
    perNode(
      nodes,
      labels,
      vitals((v) => v.cpu.total / 100),
    ),
  );
  e.family(
    "picluster_node_load1",
    "gauge",
    "1-minute load average.",
    perNode(
      nodes,
      labels,
      vitals((v) => v.load?.[0]),
    ),
  );
  e.family(
    "picluster_node_temperature_celsius",
    "gauge",
    "Hottest thermal zone.",
    perNode(
      nodes,
      labels,
      vitals((v) =>
        v.temps.length === 0 ? undefined : Math.max(...v.temps.map((t) => t.celsius)),
      ),
    ),
  );
  e.family(
    "picluster_node_cpu_frequency_hertz",
    "gauge",
    "Current CPU frequency.",
    perNode(
      nodes,
      labels,
      vitals((v) => (v.freqMhz === undefined ? undefined : v.freqMhz * 1e6)),
    ),
  );
  e.family(
    "picluster_node_memory_total_bytes",
    "gauge",
    "Total memory.",
    perNode(
      nodes,
      labels,
      vitals((v) => v.memory.totalBytes),
    ),
  );
  e.family(
    "picluster_node_memory_used_bytes",
    "gauge",
    "Memory in use (total minus available).",
    perNode(
      nodes,
      labels,
      vitals((v) => v.memory.usedBytes),
    ),
  );
  e.family(
    "picluster_node_swap_used_bytes",
    "gauge",
    "Swap in use.",
    perNode(
      nodes,
      labels,
      vitals((v) => v.swap.usedBytes),
    ),
  );
  e.family(
    "picluster_node_filesystem_used_ratio",
    "gauge",
    "Used share of the root filesystem, 0 to 1.",
    perNode(
      nodes,
      labels,
      vitals((v) => {
        const root = v.disks.find((d) => d.mount === "/") ?? v.disks[0];
        return root === undefined || root.sizeBytes === 0
          ? undefined
          : root.usedBytes / root.sizeBytes;
      }),
    ),
  );
  e.family(
    "picluster_node_network_receive_bytes_per_second",
    "gauge",
    "Received over all interfaces.",
    perNode(
      nodes,
      labels,
      vitals((v) => (v.net.length === 0 ? undefined : v.net.reduce((a, x) => a + x.rxBps, 0))),
    ),
  );
  e.family(
    "picluster_node_network_transmit_bytes_per_second",
    "gauge",
    "Sent over all interfaces.",
    perNode(
      nodes,
      labels,
      vitals((v) => (v.net.length === 0 ? undefined : v.net.reduce((a, x) => a + x.txBps, 0))),
    ),
  );
  e.family(
    "picluster_node_under_voltage",
    "gauge",
    "1 while a Raspberry Pi reports under-voltage (check its power supply).",
    perNode(
      nodes,
      labels,
      vitals((v) => (v.throttling === undefined ? undefined : Number(v.throttling.underVoltage))),
    ),
  );
  e.family(
    "picluster_node_throttled",
    "gauge",
    "1 while a Raspberry Pi is throttled or frequency-capped.",
    perNode(
      nodes,
      labels,
      vitals((v) =>
        v.throttling === undefined
          ? undefined
          : Number(v.throttling.throttled || v.throttling.freqCapped),
      ),
    ),
  );
  e.family(
    "picluster_node_reboot_required",
    "gauge",
    "1 if the node says a reboot is required.",
    perNode(
      nodes,
      labels,
      vitals((v) => (v.rebootRequired === undefined ? undefined : Number(v.rebootRequired))),
    ),
  );
  e.family(
    "picluster_node_updates_available",
    "gauge",
    "Packages that can be upgraded, from the node's last updates.check.",
    perNode(nodes, labels, (n) => n.details?.updates?.available),
  );
  e.family(
    "picluster_node_samples_dropped",
    "gauge",
    "Samples the agent dropped from a full outbox since it started.",
    perNode(nodes, labels, (n) => n.dropped),
  );

  customFamilies(e, nodes, labels);
  checkFamilies(e, nodes, labels);
  containerFamilies(e, nodes, labels);

  e.family("process_resident_memory_bytes", "gauge", "Resident memory of the primary.", [
    ["", stats.rssBytes],
  ]);
  e.family("process_cpu_seconds_total", "counter", "CPU time of the primary.", [
    ["", stats.cpuSecondsTotal],
  ]);
  e.family("process_start_time_seconds", "gauge", "Start time of the primary, Unix seconds.", [
    ["", stats.startTimeSeconds],
  ]);
  e.family(
    "picluster_agent_connections",
    "gauge",
    "Connected agents (TLS sessions and tutorial nodes).",
    [
      [`protocol="v1"`, stats.sessions],
      [`protocol="legacy"`, stats.legacySessions],
    ],
  );
  e.family(
    "picluster_ingested_samples_total",
    "counter",
    "Vitals samples stored since the primary started.",
    [["", stats.samplesTotal]],
  );
  if (stats.storeOk !== undefined)
    e.family(
      "picluster_primary_store_ok",
      "gauge",
      "1 while the primary's store writes; 0 while it cannot (a full or read-only disk: nothing new is stored).",
      [["", stats.storeOk ? 1 : 0]],
    );
  if (stats.httpStreams !== undefined)
    e.family(
      "picluster_http_streams",
      "gauge",
      "Open HTTP event streams (at most [http] max_streams).",
      [["", stats.httpStreams]],
    );
  if (stats.heartbeatLastSuccessSeconds !== undefined)
    e.family(
      "picluster_heartbeat_last_success_timestamp_seconds",
      "gauge",
      "When the receiver at [heartbeat] url last took a heartbeat, Unix seconds; 0 before the first.",
      [["", stats.heartbeatLastSuccessSeconds]],
    );
  return e.text();
}

/** GET /metrics: Prometheus text format, for every node and the primary itself. */
export function registerMetricsRoute(
  app: FastifyInstance,
  deps: {
    registry: Registry;
    version: string;
    stats(): ProcessStats;
    alertStates(): readonly AlertState[];
  },
): void {
  app.get("/metrics", async (req, reply) => {
    const p = req.principal;
    // A scoped token (a share link) sees its nodes only; /metrics is the whole cluster.
    if (p?.scope !== undefined)
      return sendError(
        reply,
        "E_FORBIDDEN",
        errorMessage(
          "E_FORBIDDEN",
          `"${p.name}"`,
          `it is limited to ${p.scopeText ?? "some nodes"}, and /metrics covers every node (give Prometheus an unscoped viewer token)`,
        ),
      );
    reply.header("content-type", "text/plain; version=0.0.4; charset=utf-8");
    return renderMetrics(deps.registry.list(), deps.stats(), deps.version, deps.alertStates());
  });
}
