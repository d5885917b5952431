/**
 * Tables and colour for a terminal. Numbers and times are written by
 * common's format module, the same as on the dashboard.
 */
import { parseSelector } from "@picluster/common";
import { InvalidArgumentError } from "commander";

export { ago, bytes, duration } from "@picluster/common";

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

/**
 * A `--on` value read by the primary's own selector parser, so a selector
 * it cannot read is refused before anything is sent (commander prints the
 * reason with the option's name).
 */
export function selectorArg(value: string): string {
  try {
    parseSelector(value);
  } catch (err) {
    throw new InvalidArgumentError(err instanceof Error ? err.message : String(err));
  }
  return value;
}
