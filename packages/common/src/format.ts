/**
 * Numbers for people, the same on the terminal and on the page: units,
 * rounding, durations and relative times. A missing figure is "–".
 */
type Figure = number | null | undefined;

export function pct(v: Figure): string {
  return v === null || v === undefined ? "–" : `${v.toFixed(0)} %`;
}

export function celsius(v: Figure): string {
  return v === null || v === undefined ? "–" : `${v.toFixed(1)} °C`;
}

/** Binary units as `df -h` writes them: `512 B`, `1.5 KiB`, `15 MiB`, `153 GiB`. */
export function bytes(n: Figure): string {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 10 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

export function rate(n: Figure): string {
  return n === null || n === undefined ? "–" : `${bytes(n)}/s`;
}

/** A length of time in its two largest units: `45s`, `12m 5s`, `3h 5m`, `2d 3h`. */
export function duration(seconds: Figure): string {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3_600);
  const m = Math.floor((s % 3_600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

/** How long ago `ts` (epoch ms) was, as duration() writes it. */
export function ago(ts: number, now = Date.now()): string {
  return duration(Math.max(0, (now - ts) / 1000));
}

/** A node's name as people read it: a tutorial (legacy) node's says so. */
export function nodeName(view: { name: string; legacy: boolean }): string {
  return view.legacy ? `${view.name} (tutorial)` : view.name;
}

/** A time of day, 24-hour: `14:03:22`. */
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
