/** Numbers for people: units, rounding, relative times. */

export function pct(v: number | null | undefined): string {
  return v === null || v === undefined ? "–" : `${v.toFixed(0)} %`;
}

export function celsius(v: number | null | undefined): string {
  return v === null || v === undefined ? "–" : `${v.toFixed(1)} °C`;
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

export function rate(n: number | null | undefined): string {
  return n === null || n === undefined ? "–" : `${bytes(n)}/s`;
}

export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return "–";
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3_600);
  const m = Math.floor((seconds % 3_600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  return `${m}m ${Math.floor(seconds % 60)}s`;
}

export function ago(ts: number, now = Date.now()): string {
  return duration(Math.max(0, (now - ts) / 1000));
}

/** A node's name as people read it: a tutorial (legacy) node's says so. */
export function nodeName(view: { name: string; legacy: boolean }): string {
  return view.legacy ? `${view.name} (tutorial)` : view.name;
}

/** A time of day as the page shows it, 24-hour: `14:03:22`. */
export function clockTime(ts: number): string {
  const d = new Date(ts);
  return [d.getHours(), d.getMinutes(), d.getSeconds()]
    .map((n) => String(n).padStart(2, "0"))
    .join(":");
}

/** A configured duration in ms as people write it in the config: `30s`, `5m`, `2h`; 0 is "at once". */
export function span(ms: number): string {
  if (ms === 0) return "at once";
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${+(ms / 1000).toFixed(1)}s`;
}
