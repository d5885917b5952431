import {
  ago,
  bytes,
  celsius,
  clockTime,
  duration,
  nodeName,
  pct,
  rate,
  seriesKey,
} from "@picluster/common/shared";
import { useEffect, useState } from "preact/hooks";
import {
  ApiError,
  type ContainerList,
  type CustomSeriesList,
  type NodeDetail,
  type NodeView,
  type SeriesPoint,
  type StoredEvent,
  sendJson,
} from "./api.js";
import { Chart } from "./chart.js";
import { NodeChecks } from "./checks.js";
import { useJson, useLive } from "./hooks.js";
import { live } from "./live.js";
import { Modal } from "./modal.js";
import { RunList, TokenForm } from "./tasks.js";
import { may, useWho } from "./who.js";

const RANGES = [
  { id: "1h", ms: 3_600_000 },
  { id: "24h", ms: 86_400_000 },
  { id: "7d", ms: 7 * 86_400_000 },
  { id: "30d", ms: 30 * 86_400_000 },
] as const;

const METRICS = [
  { name: "cpu", title: "CPU", unit: "%", format: (v: number | null) => pct(v) },
  { name: "temp", title: "Temperature", unit: "°C", format: (v: number | null) => celsius(v) },
  { name: "mem", title: "Memory", unit: "%", format: (v: number | null) => pct(v) },
  { name: "disk", title: "Disk", unit: "%", format: (v: number | null) => pct(v) },
  { name: "net_rx", title: "Network in", unit: "B/s", format: (v: number | null) => rate(v) },
  { name: "net_tx", title: "Network out", unit: "B/s", format: (v: number | null) => rate(v) },
] as const;

interface ChartMetric {
  /** The API's `metric=`: a stored figure, or `custom.` and one of the node's own series. */
  name: string;
  title: string;
  unit: string;
  format: (v: number | null) => string;
}

/** A custom series' value: integers as sent, others to six significant digits. */
function plain(v: number | null): string {
  if (v === null) return "–";
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
}

/** Charts past this many are listed, not drawn (a node may send up to 1 000 series). */
const MAX_CUSTOM_CHARTS = 12;

function CustomMetrics({ id, rangeMs, rangeId }: { id: string; rangeMs: number; rangeId: string }) {
  const { data } = useJson<CustomSeriesList>(`/api/nodes/${encodeURIComponent(id)}/custom`, 10_000);
  const series = data?.series ?? [];
  if (series.length === 0) return null;
  const rest = series.slice(MAX_CUSTOM_CHARTS);
  return (
    <>
      <h2>Custom metrics</h2>
      <div class="charts custom-charts">
        {series.slice(0, MAX_CUSTOM_CHARTS).map((s) => (
          <MetricChart
            key={`${s.series}-${rangeId}`}
            id={id}
            metric={{ name: `custom.${s.series}`, title: s.series, unit: "", format: plain }}
            rangeMs={rangeMs}
            noSensor={false}
          />
        ))}
      </div>
      {rest.length > 0 && (
        <p class="empty">
          Not charted: {rest.map((s) => `${s.series} ${plain(s.value)}`).join(", ")}
        </p>
      )}
    </>
  );
}

/** Containers charted (CPU and memory each), running ones first; the rest are in the table. */
const MAX_CONTAINER_CHARTS = 6;

function Containers({ id, rangeMs, rangeId }: { id: string; rangeMs: number; rangeId: string }) {
  const { data } = useJson<ContainerList>(
    `/api/nodes/${encodeURIComponent(id)}/containers`,
    10_000,
  );
  const list = data?.containers ?? [];
  if (list.length === 0) return null;
  const charted = list.filter((c) => c.state === "running").slice(0, MAX_CONTAINER_CHARTS);
  return (
    <>
      <h2>Containers</h2>
      <table class="checks containers">
        <thead>
          <tr>
            <th>Name</th>
            <th>State</th>
            <th class="num">Restarts</th>
            <th class="num">CPU</th>
            <th class="num">Memory</th>
            <th class="num">Net in / out</th>
          </tr>
        </thead>
        <tbody>
          {list.map((c) => (
            <tr
              key={c.id}
              data-container={c.name}
              class={`check-${c.state === "running" ? "up" : c.state === "exited" && (c.exitCode ?? 0) === 0 ? "unknown" : "down"}`}
            >
              <td>
                <b>{c.name}</b> <small>{c.image}</small>
              </td>
              <td class="state">
                {c.state === "exited" && c.exitCode !== undefined
                  ? `exited (${c.exitCode})`
                  : c.state}
                {c.health === undefined ? "" : <small> · {c.health}</small>}
              </td>
              <td class="num">{c.restarts}</td>
              <td class="num">{c.cpuPct === undefined ? "–" : pct(c.cpuPct)}</td>
              <td class="num">{c.memBytes === undefined ? "–" : bytes(c.memBytes)}</td>
              <td class="num">
                {c.rxBps === undefined ? "–" : `${rate(c.rxBps)} / ${rate(c.txBps ?? 0)}`}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {charted.length > 0 && (
        <div class="charts container-charts">
          {charted.flatMap((c) => [
            <MetricChart
              key={`cpu-${c.id}-${rangeId}`}
              id={id}
              metric={{
                name: seriesKey("container.cpu", [["name", c.name]]),
                title: `${c.name} CPU`,
                unit: "%",
                format: (v) => pct(v),
              }}
              rangeMs={rangeMs}
              noSensor={false}
            />,
            <MetricChart
              key={`mem-${c.id}-${rangeId}`}
              id={id}
              metric={{
                name: seriesKey("container.mem", [["name", c.name]]),
                title: `${c.name} memory`,
                unit: "B",
                format: (v) => bytes(v),
              }}
              rangeMs={rangeMs}
              noSensor={false}
            />,
          ])}
        </div>
      )}
    </>
  );
}

function MetricChart({
  id,
  metric,
  rangeMs,
  noSensor,
}: {
  id: string;
  metric: ChartMetric;
  rangeMs: number;
  /** The node reports no thermal zone: a temperature chart says so. */
  noSensor: boolean;
}) {
  // The API picks raw samples or rollups from the step; at most ~1 000 points.
  // The window slides: every refresh asks for the range ending now.
  const refreshMs = rangeMs <= 3_600_000 ? 10_000 : 60_000;
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), refreshMs);
    return () => clearInterval(timer);
  }, [refreshMs]);
  const from = now - rangeMs;
  const { data } = useJson<{ points: SeriesPoint[] }>(
    `/api/nodes/${encodeURIComponent(id)}/vitals?metric=${encodeURIComponent(metric.name)}&from=${from}&to=${now}`,
  );
  return (
    <Chart
      title={metric.title}
      unit={metric.unit}
      points={data?.points ?? []}
      format={metric.format}
      range={[from, now]}
      empty={
        metric.name === "temp" && noSensor
          ? "No sensor on this node"
          : data === undefined
            ? "Loading…"
            : "No data in this range yet"
      }
    />
  );
}

function RemoveDialog({
  name,
  keepHistory,
  setKeepHistory,
  onCancel,
  onConfirm,
}: {
  name: string;
  keepHistory: boolean;
  setKeepHistory: (keep: boolean) => void;
  onCancel: () => void;
  onConfirm: () => void;
}) {
  return (
    <Modal labelledBy="remove-title" onCancel={onCancel}>
      <h2 id="remove-title">Remove {name}?</h2>
      <p>
        Its credential is revoked and its connection cut: the agent on {name} cannot report again
        until it joins with a new token (<code>picluster node add {name}</code>). Alerts firing for
        it end, and nobody is told.
      </p>
      <label class="check">
        <input
          type="checkbox"
          checked={keepHistory}
          onChange={(e) => setKeepHistory((e.target as HTMLInputElement).checked)}
        />
        Keep its samples and events
      </label>
      <p class="muted">
        {keepHistory
          ? "They stay in the store; a node that joins again with the same id continues them."
          : "Its samples and events are deleted."}
      </p>
      <div class="actions">
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
        <button type="button" class="danger" onClick={onConfirm} data-testid="confirm-remove">
          Remove {name}
        </button>
      </div>
    </Modal>
  );
}

/** Remove the node, after a confirmation; needs the API token, as running a task does. */
function RemoveNode({ node }: { node: NodeView }) {
  const [confirming, setConfirming] = useState(false);
  const [keepHistory, setKeepHistory] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const [needToken, setNeedToken] = useState<string>();
  const remove = async () => {
    setBusy(true);
    setError(undefined);
    try {
      // By id: a name can be shared by an old record and the node that joined again.
      await sendJson(
        "DELETE",
        `/api/nodes/${encodeURIComponent(node.id)}${keepHistory ? "?keepHistory=true" : ""}`,
      );
      live.removed(node.id);
      location.hash = "#/";
    } catch (err) {
      if (err instanceof ApiError && err.needsToken) setNeedToken(err.message);
      else setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="node-admin">
      <button
        type="button"
        class="danger"
        disabled={busy}
        onClick={() => setConfirming(true)}
        data-testid="remove-node"
      >
        Remove {node.name}…
      </button>
      {needToken !== undefined && (
        <TokenForm
          reason={needToken}
          purpose="remove nodes"
          onSaved={() => {
            setNeedToken(undefined);
            void remove();
          }}
        />
      )}
      {error !== undefined && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {confirming && (
        <RemoveDialog
          name={node.name}
          keepHistory={keepHistory}
          setKeepHistory={setKeepHistory}
          onCancel={() => setConfirming(false)}
          onConfirm={() => {
            setConfirming(false);
            void remove();
          }}
        />
      )}
    </div>
  );
}

export function NodePage({ id }: { id: string }) {
  const who = useWho();
  const cluster = useLive();
  const [range, setRange] = useState<(typeof RANGES)[number]>(RANGES[0]);
  const { data: node, error } = useJson<NodeDetail>(`/api/nodes/${encodeURIComponent(id)}`, 10_000);
  const { data: events } = useJson<{ events: StoredEvent[] }>(
    `/api/events?node=${encodeURIComponent(id)}&limit=50`,
    10_000,
  );
  const liveNode = cluster.nodes.get(node?.id ?? id);
  if (error !== undefined) return <p class="error">{error}</p>;
  if (node === undefined) return <p class="empty">Loading…</p>;
  const d = node.details;
  const state = liveNode?.view.state ?? node.state;
  const stale = cluster.unreachableSince;
  // Not connected: its uptime stopped when it was last heard from.
  const upUntil = state === "alive" ? Date.now() : (liveNode?.seenAt ?? node.lastSeen);
  return (
    <section class="node-page">
      <h1 class={`state-${state}`}>
        <span class="dot" aria-hidden="true" /> {nodeName(node)}{" "}
        <small>
          {stale === undefined
            ? `${state} · ${ago(liveNode?.view.stateSince ?? node.stateSince)}`
            : `unreachable since ${clockTime(stale)}`}
          {state !== "alive" &&
            stale === undefined &&
            ` · last seen ${ago(liveNode?.seenAt ?? node.lastSeen)} ago`}
        </small>
      </h1>
      {(cluster.alerts.get(node.id) ?? []).length > 0 && (
        <ul class="node-alerts" aria-label="alerts firing">
          {(cluster.alerts.get(node.id) ?? []).map((a) => (
            <li key={a.rule} class={`alert-${a.severity}`}>
              <b>{a.title}</b> <small>{a.rule}</small>
            </li>
          ))}
        </ul>
      )}
      {d && (
        <dl class="details">
          <div>
            <dt>Board</dt>
            <dd>{d.board?.model ?? d.cpu.model}</dd>
          </div>
          <div>
            <dt>OS</dt>
            <dd>
              {d.os.name} {d.os.version}
            </dd>
          </div>
          <div>
            <dt>Kernel</dt>
            <dd>
              {d.kernel} {d.arch}
            </dd>
          </div>
          <div>
            <dt>CPU</dt>
            <dd>
              {d.cpu.cores} cores{d.cpu.maxMhz ? ` · ${d.cpu.maxMhz} MHz` : ""}
            </dd>
          </div>
          <div>
            <dt>RAM</dt>
            <dd>{bytes(d.memory.totalBytes)}</dd>
          </div>
          <div>
            <dt>Disks</dt>
            <dd>{d.disks.map((x) => `${x.mount} ${bytes(x.sizeBytes)}`).join(", ") || "–"}</dd>
          </div>
          <div>
            <dt>Network</dt>
            <dd>
              {d.interfaces.map((i) => `${i.name} ${i.addresses.join(" ")}`).join(", ") || "–"}
            </dd>
          </div>
          <div>
            <dt>Agent</dt>
            <dd>
              {d.agentVersion} (Node.js {d.nodeVersion})
            </dd>
          </div>
          {d.bootTime !== undefined && (
            <div>
              <dt>Up{state === "alive" ? "" : " (last known)"}</dt>
              <dd>{duration((upUntil - d.bootTime) / 1000)}</dd>
            </div>
          )}
          {d.updates !== undefined && (
            <div>
              <dt>Updates</dt>
              <dd>{d.updates.available} available</dd>
            </div>
          )}
        </dl>
      )}
      <fieldset class="ranges" aria-label="Range">
        {RANGES.map((r) => (
          <button
            type="button"
            key={r.id}
            class={r === range ? "on" : ""}
            onClick={() => setRange(r)}
          >
            {r.id}
          </button>
        ))}
      </fieldset>
      <div class="charts">
        {METRICS.map((m) => (
          <MetricChart
            key={`${m.name}-${range.id}`}
            id={node.id}
            metric={m}
            rangeMs={range.ms}
            noSensor={node.vitals !== null && node.vitals.temps.length === 0}
          />
        ))}
      </div>
      <NodeChecks nodeId={node.id} />
      <Containers id={node.id} rangeMs={range.ms} rangeId={range.id} />
      <CustomMetrics id={node.id} rangeMs={range.ms} rangeId={range.id} />
      <h2>
        Recent tasks{" "}
        <a class="small-link" href={`#/tasks?on=${encodeURIComponent(node.name)}`}>
          Run a task on {node.name}
        </a>
      </h2>
      <RunList node={node.id} limit={10} />
      <h2>Events</h2>
      <ol class="timeline">
        {(events?.events ?? []).map((e) => (
          <li key={e.id}>
            <time>{new Date(e.ts).toLocaleString()}</time> <b>{e.kind}</b> {describe(e)}
          </li>
        ))}
      </ol>
      {may(who, "admin") && (
        <>
          <h2>Remove</h2>
          <RemoveNode node={node} />
        </>
      )}
    </section>
  );
}

export function describe(e: StoredEvent): string {
  const d = e.data;
  switch (e.kind) {
    case "node.state":
      return `${String(d.from ?? "new")} → ${String(d.to)} (${String(d.reason ?? "")})`;
    case "node.throttling":
      return `${String(d.flag)} ${d.on ? "on" : "off"}`;
    case "check.down":
    case "check.up":
      return `${String(d.check)} (${String(d.checkKind)} ${String(d.target)}): ${String(d.reason)}`;
    case "container.state":
      return `container ${String(d.container)}: ${String(d.from)} → ${String(d.to)}${d.exitCode === undefined ? "" : ` (exit ${String(d.exitCode)})`}`;
    case "task.node":
      return `${String(d.task)}: ${String(d.status)}${d.error ? ` (${String(d.error)})` : ""}`;
    case "task.finished":
      return `${String(d.task)}: ${String(d.status)}`;
    case "alert.firing":
    case "alert.resolved":
      return String(d.title ?? d.rule ?? "");
    case "alert.delivery_failed":
      return `${String(d.channel)}: ${String(d.title)} (${String(d.error)})`;
    case "primary.store_failed":
      return `nothing stored: ${String(d.cause)} (${String(d.error)})`;
    case "primary.store_ok":
      return `storing again after ${Math.round(Number(d.failedForMs) / 1000)} s`;
    case "node.removed":
      return `${String(d.name)} by ${String(d.requestedBy)}${d.keepHistory ? " (history kept)" : ""}`;
    default:
      return String(d.name ?? "");
  }
}
