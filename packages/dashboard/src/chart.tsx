/** One metric of one node over a range, drawn by uPlot (min–max band and average). */
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { SeriesPoint } from "./api.js";
import { useColorScheme } from "./hooks.js";

/**
 * The least a y axis spans, in the metric's unit: a near-constant series
 * (a disk at 9.81 %) gets a readable axis, not 9.8 %, 9.8 %, 9.8 %.
 */
function minSpan(unit: string, mid: number): number {
  if (unit === "B/s" || unit === "B") return Math.max(1024, Math.abs(mid) * 0.2);
  if (unit === "%" || unit === "°C") return 2;
  return Math.max(1, Math.abs(mid) * 0.1);
}

/** A y range around the data, widened to minSpan, kept within what the unit allows. */
export function yRange(unit: string, min: number | null, max: number | null): [number, number] {
  if (min === null || max === null) return [0, 1];
  const need = minSpan(unit, (min + max) / 2);
  const pad = max - min >= need ? (max - min) * 0.1 : (need - (max - min)) / 2;
  let lo = min - pad;
  let hi = max + pad;
  const floor = unit === "°C" ? Number.NEGATIVE_INFINITY : 0;
  const ceiling = unit === "%" ? 100 : Number.POSITIVE_INFINITY;
  if (lo < floor) [lo, hi] = [floor, hi + (floor - lo)];
  if (hi > ceiling) [lo, hi] = [Math.max(floor, lo - (hi - ceiling)), ceiling];
  return [lo, hi];
}

/** As many decimals as the ticks' step needs to tell two ticks apart, and no more. */
export function decimalsFor(step: number): number {
  if (!(step > 0) || step >= 1) return 0;
  return Math.min(3, Math.ceil(-Math.log10(step) - 1e-9));
}

export function Chart({
  title,
  unit,
  points,
  format,
  range,
  empty,
}: {
  title: string;
  unit: string;
  points: SeriesPoint[];
  format: (v: number | null) => string;
  /** The time range shown, Unix ms: the axis spans it however few the points. */
  range: [number, number];
  /** Said instead of a plot when there is nothing to draw ("No data…", "No sensor…"). */
  empty: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const scheme = useColorScheme();
  const drawable = points.some((p) => p.avg !== null);
  useEffect(() => {
    const el = box.current;
    if (el === null || !drawable) return;
    const xs = points.map((p) => p.ts / 1000);
    const data: uPlot.AlignedData = [
      xs,
      points.map((p) => p.min),
      points.map((p) => p.avg),
      points.map((p) => p.max),
    ];
    const css = getComputedStyle(document.documentElement);
    const accent = css.getPropertyValue("--accent").trim() || "#2f7de1";
    const text = css.getPropertyValue("--muted").trim() || "#888";
    const plot = new uPlot(
      {
        width: el.clientWidth || 600,
        height: 180,
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: {
          x: { time: true, range: () => [range[0] / 1000, range[1] / 1000] },
          y: { range: (_u, min, max) => yRange(unit, min, max) },
        },
        axes: [
          { stroke: text, grid: { stroke: "rgba(128,128,128,0.15)" }, space: 70 },
          {
            stroke: text,
            grid: { stroke: "rgba(128,128,128,0.15)" },
            values: (_u, vals, _axis, _space, step) => {
              const places = decimalsFor(step);
              const labels = vals.map((v) =>
                unit === "B/s" || unit === "B" ? format(v) : `${v.toFixed(places)} ${unit}`,
              );
              // What the axis says, for the browser tests (it is drawn on a canvas).
              el.dataset.yTicks = JSON.stringify(labels);
              return labels;
            },
            size: 90,
          },
        ],
        series: [
          {},
          { label: "min", stroke: "transparent", points: { show: false } },
          // Points drawn where they are sparse (uPlot decides): a short history stays visible.
          { label: `${title} (${unit})`, stroke: accent, width: 1.5 },
          { label: "max", stroke: "transparent", points: { show: false } },
        ],
        bands: [{ series: [3, 1], fill: "rgba(47,125,225,0.15)" }],
        hooks: {
          // The x scale as drawn, for the browser tests: it spans the chosen range.
          draw: [
            (u) => {
              el.dataset.xFrom = String(u.scales.x?.min);
              el.dataset.xTo = String(u.scales.x?.max);
            },
          ],
        },
      },
      data,
      el,
    );
    const resize = () => plot.setSize({ width: el.clientWidth || 600, height: 180 });
    addEventListener("resize", resize);
    return () => {
      removeEventListener("resize", resize);
      plot.destroy();
    };
  }, [points, drawable, title, unit, format, range[0], range[1], scheme]);
  return (
    <figure class="chart" data-metric={title} data-points={points.length}>
      <figcaption>{title}</figcaption>
      {drawable ? <div ref={box} /> : <p class="empty chart-empty">{empty}</p>}
    </figure>
  );
}
