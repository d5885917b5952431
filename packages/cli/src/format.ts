/** Numbers and tables for people: units, ages, colour on a terminal. */
export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 10 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

export function ago(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400)
    return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86_400)}d${Math.floor((s % 86_400) / 3600)}h`;
}

export function duration(seconds: number): string {
  return ago(0, seconds * 1000);
}

const COLOURS: Record<string, string> = { alive: "32", suspect: "33", down: "31", left: "90" };

export function stateText(state: string, colour: boolean): string {
  return colour && COLOURS[state] ? `\x1b[${COLOURS[state]}m${state}\x1b[0m` : state;
}

/** Visible width, ignoring colour codes. */
function width(s: string): number {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching ANSI colour escapes is the point
  return s.replace(/\x1b\[[0-9;]*m/g, "").length;
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(width(h), ...rows.map((r) => width(r[i] ?? ""))));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c + " ".repeat(Math.max(0, (widths[i] ?? 0) - width(c))))
      .join("  ")
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join("\n")}\n`;
}

const BARS = "▁▂▃▄▅▆▇█";

/** A one-line chart of the values, scaled between their min and max. */
export function sparkline(values: Array<number | null>): string {
  const nums = values.filter((v): v is number => v !== null);
  if (nums.length === 0) return "";
  const lo = Math.min(...nums);
  const hi = Math.max(...nums);
  return values
    .map((v) =>
      v === null
        ? " "
        : BARS[hi === lo ? 3 : Math.round(((v - lo) / (hi - lo)) * (BARS.length - 1))],
    )
    .join("");
}
