/**
 * The cluster at a glance, above the nodes: totals of the live picture and a
 * small chart of average CPU, memory used and nodes alive since the page
 * opened (from the stream; see history.ts).
 */
import { bytes, clockTime, NODE_STATES, pct } from "@picluster/common/shared";
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import { type ClusterHistory, type ClusterTotals, clusterTotals } from "./history.js";
import { useColorScheme, useLive } from "./hooks.js";

const CHART_HEIGHT = 120;
/** The time axis spans at least this, in seconds: a page open for 5 s is not drawn to the millisecond. */
const MIN_SPAN_S = 60;

function statesText(t: ClusterTotals): string {
  if (t.nodes === 0) return "none yet";
  return NODE_STATES.filter((s) => t.byState[s] > 0)
    .map((s) => `${t.byState[s]} ${s}`)
    .join(", ");
}

/** Copies: the history keeps growing in place between two draws. */
function chartData(h: ClusterHistory): uPlot.AlignedData {
  return [h.ts.slice(), h.cpu.slice(), h.mem.slice(), h.alive.slice()];
}

function ClusterChart({ history, version }: { history: ClusterHistory; version: number }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  const scheme = useColorScheme();
  useEffect(() => {
    const el = box.current;
    if (el === null) return;
    const css = getComputedStyle(document.documentElement);
    const color = (name: string, fallback: string) => css.getPropertyValue(name).trim() || fallback;
    const muted = color("--muted", "#888");
    const grid = { stroke: "rgba(128,128,128,0.15)" };
    const p = new uPlot(
      {
        width: el.clientWidth || 400,
        height: CHART_HEIGHT,
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: {
          x: {
            time: true,
            // Now on the right edge; the first minute is drawn as a minute. (From
            // the data: uPlot widens a single point to a day before asking.)
            range: (u) => {
              const xs = u.data[0];
              const last = xs[xs.length - 1] ?? Date.now() / 1000;
              return [Math.min(xs[0] ?? last, last - MIN_SPAN_S), last];
            },
          },
          pct: { range: [0, 100] },
          // Room above the line of nodes alive, so that "all alive" is not drawn on the frame.
          n: { range: (_u, _min, max) => [0, Math.max(1, max) * 1.15] },
        },
        axes: [
          {
            stroke: muted,
            grid,
            space: 70,
            size: 28,
            // One line, the time of day: seconds only where the ticks are that close.
            values: (_u, vals, _axis, _space, step) =>
              vals.map((v) => clockTime(v * 1000).slice(0, step < 60 ? 8 : 5)),
          },
          {
            scale: "pct",
            stroke: muted,
            grid,
            size: 56,
            values: (_u, vals) => vals.map((v) => `${v} %`),
          },
          {
            scale: "n",
            side: 1,
            stroke: muted,
            grid: { show: false },
            size: 36,
            // Whole nodes only.
            values: (_u, vals) => vals.map((v) => (Number.isInteger(v) ? String(v) : "")),
          },
        ],
        series: [
          {},
          { label: "CPU", scale: "pct", stroke: color("--accent", "#2f7de1"), width: 1.5 },
          { label: "memory", scale: "pct", stroke: color("--mem", "#8e6bd8"), width: 1.5 },
          { label: "alive", scale: "n", stroke: color("--alive", "#1f9d55"), width: 1.5 },
        ],
      },
      chartData(history),
      el,
    );
    plot.current = p;
    const resize = () => p.setSize({ width: el.clientWidth || 400, height: CHART_HEIGHT });
    addEventListener("resize", resize);
    return () => {
      removeEventListener("resize", resize);
      p.destroy();
      plot.current = undefined;
    };
  }, [history, scheme]);
  useEffect(() => {
    plot.current?.setData(chartData(history));
  }, [history, version]);
  return <div class="cluster-chart-plot" ref={box} />;
}

export function Totals() {
  const cluster = useLive();
  const t = clusterTotals(cluster.nodes.values());
  const h = cluster.history;
  const last = h.length - 1;
  const since = h.ts[0];
  return (
    <section class="totals" aria-label="cluster totals" data-testid="totals">
      <dl class="totals-figures">
        <div>
          <dt>Nodes</dt>
          <dd data-testid="total-nodes">{statesText(t)}</dd>
        </div>
        <div>
          <dt>Cores alive</dt>
          <dd data-testid="total-cores">{t.cores}</dd>
        </div>
        <div>
          <dt>Memory used</dt>
          <dd data-testid="total-memory">
            {t.memTotalBytes === 0 ? "–" : `${bytes(t.memUsedBytes)} of ${bytes(t.memTotalBytes)}`}
          </dd>
        </div>
        <div>
          <dt>CPU average</dt>
          <dd data-testid="total-cpu">{pct(t.cpu)}</dd>
        </div>
      </dl>
      {t.nodes > 0 && (
        <figure class="cluster-chart" data-testid="cluster-chart" data-points={h.length}>
          <ClusterChart history={h} version={cluster.version} />
          <figcaption>
            <ul class="chart-legend">
              <li>
                <span class="swatch swatch-cpu" aria-hidden="true" /> CPU average{" "}
                <b data-testid="chart-cpu">{pct(h.cpu[last])}</b>
              </li>
              <li>
                <span class="swatch swatch-mem" aria-hidden="true" /> memory used{" "}
                <b data-testid="chart-mem">{pct(h.mem[last])}</b>
              </li>
              <li>
                <span class="swatch swatch-alive" aria-hidden="true" /> nodes alive{" "}
                <b data-testid="chart-alive">{h.alive[last] ?? "–"}</b>
              </li>
            </ul>
            <span class="muted">
              {since === undefined
                ? ""
                : `since ${clockTime(since * 1000)}, while this page is open`}
            </span>
          </figcaption>
        </figure>
      )}
    </section>
  );
}
