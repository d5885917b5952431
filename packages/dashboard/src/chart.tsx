/** One metric of one node over a range, drawn by uPlot (min–max band and average). */
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { SeriesPoint } from "./api.js";

export function Chart({
  title,
  unit,
  points,
  format,
  range,
}: {
  title: string;
  unit: string;
  points: SeriesPoint[];
  format: (v: number | null) => string;
  /** The time range shown, Unix ms: the axis spans it however few the points. */
  range: [number, number];
}) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (el === null) return;
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
        scales: { x: { time: true, range: () => [range[0] / 1000, range[1] / 1000] } },
        axes: [
          { stroke: text, grid: { stroke: "rgba(128,128,128,0.15)" }, space: 70 },
          {
            stroke: text,
            grid: { stroke: "rgba(128,128,128,0.15)" },
            // One decimal where the range is narrow (10.2 %, 10.4 %), rates in their units.
            values: (_u, vals) =>
              vals.map((v) => (unit === "B/s" ? format(v) : `${+v.toFixed(1)} ${unit}`)),
            size: 90,
          },
        ],
        series: [
          {},
          { label: "min", stroke: "transparent", points: { show: false } },
          { label: `${title} (${unit})`, stroke: accent, width: 1.5, points: { show: false } },
          { label: "max", stroke: "transparent", points: { show: false } },
        ],
        bands: [{ series: [3, 1], fill: "rgba(47,125,225,0.15)" }],
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
  }, [points, title, unit, format, range[0], range[1]]);
  return (
    <figure class="chart" data-metric={title} data-points={points.length}>
      <figcaption>{title}</figcaption>
      <div ref={box} />
      {points.length === 0 && <p class="empty">No data in this range yet.</p>}
    </figure>
  );
}
