/**
 * The text a `[metrics.NAME]` program prints or its file holds, read into
 * series and values. Three shapes, line by line:
 *
 * - Prometheus text exposition: `name{label="value",…} value [timestamp]`,
 *   `#` lines (HELP, TYPE, comments) ignored; what node_exporter's textfile
 *   collector reads, so the same files serve both.
 * - `name value` lines (the Prometheus shape without labels).
 * - one bare number: the series is named after the section.
 *
 * Written by hand: the exposition format's grammar is small and the agent
 * must not grow (its RSS budget); parsers on npm carry whole client
 * libraries. A series is kept in canonical form, labels sorted by name and
 * values escaped as Prometheus escapes them, so that one series has one key.
 */

export const SERIES_NAME = /^[A-Za-z_:][A-Za-z0-9_:]*$/;
const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const MAX_SERIES_KEY = 256;
export const MAX_SERIES_LABELS = 8;
const MAX_LABEL_VALUE = 128;

export interface ParsedSeries {
  /** Series key → value, in the order the text gave them (finite values only). */
  values: Map<string, number>;
  /** One line each: `line N: what was wrong`. */
  problems: string[];
}

function escapeLabelValue(v: string): string {
  return v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/** `name` or `name{a="x",b="y"}`, labels sorted by name. */
export function seriesKey(name: string, labels: ReadonlyArray<[string, string]> = []): string {
  if (labels.length === 0) return name;
  const sorted = [...labels].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `${name}{${sorted.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",")}}`;
}

/** A series key's name and labels (the inverse of seriesKey, for keys it wrote). */
export function splitSeriesKey(key: string): { name: string; labels: Array<[string, string]> } {
  const brace = key.indexOf("{");
  if (brace < 0) return { name: key, labels: [] };
  const parsed = parseLabels(key, brace);
  return { name: key.slice(0, brace), labels: typeof parsed === "string" ? [] : parsed.labels };
}

/** Labels from `{` at `start`: the pairs and the index after `}`, or what is wrong. */
function parseLabels(
  line: string,
  start: number,
): { labels: Array<[string, string]>; end: number } | string {
  const labels: Array<[string, string]> = [];
  let i = start + 1;
  const skipSpaces = () => {
    while (line[i] === " " || line[i] === "\t") i++;
  };
  for (;;) {
    skipSpaces();
    if (line[i] === "}") return { labels, end: i + 1 };
    const nameStart = i;
    while (i < line.length && /[A-Za-z0-9_]/.test(line[i] as string)) i++;
    const name = line.slice(nameStart, i);
    if (!LABEL_NAME.test(name))
      return `a label name is letters, digits and '_' (at "${line.slice(nameStart, nameStart + 20)}")`;
    if (name.startsWith("__")) return `label names starting with "__" are reserved ("${name}")`;
    skipSpaces();
    if (line[i] !== "=") return `expected = after label ${name}`;
    i++;
    skipSpaces();
    if (line[i] !== '"') return `expected a quoted value for label ${name}`;
    i++;
    let value = "";
    for (;;) {
      const c = line[i];
      if (c === undefined) return `label ${name}: the value's closing quote is missing`;
      i++;
      if (c === '"') break;
      if (c === "\\") {
        const e = line[i++];
        if (e === "n") value += "\n";
        else if (e === "\\" || e === '"') value += e;
        else return `label ${name}: unknown escape \\${e ?? ""}`;
      } else value += c;
    }
    if (value.length > MAX_LABEL_VALUE)
      return `label ${name}: a value is ${MAX_LABEL_VALUE} characters at most`;
    if (labels.some(([n]) => n === name)) return `label ${name} is given twice`;
    labels.push([name, value]);
    skipSpaces();
    if (line[i] === ",") {
      i++;
      continue;
    }
    if (line[i] === "}") return { labels, end: i + 1 };
    return `expected , or } after label ${name}`;
  }
}

/** A sample value as Prometheus writes it; NaN for what is not one. */
function sampleValue(text: string): number {
  if (text === "+Inf" || text === "Inf") return Number.POSITIVE_INFINITY;
  if (text === "-Inf") return Number.NEGATIVE_INFINITY;
  if (text === "NaN") return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) return Number.NaN;
  return Number(text);
}

/**
 * Read `text` as above. `bareName` names a bare number's series (the
 * section's name). Non-finite values (NaN, ±Inf) are left out: they cannot
 * be stored or charted. A line that cannot be read is a problem and is
 * skipped; the rest still count.
 */
export function parseSeriesText(text: string, bareName: string): ParsedSeries {
  const values = new Map<string, number>();
  const problems: string[] = [];
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    const line = (lines[n] as string).trim();
    if (line === "" || line.startsWith("#")) continue;
    const bad = (why: string) => problems.push(`line ${n + 1}: ${why}`);
    let key: string;
    let rest: string;
    const bare = sampleValue(line);
    if (!Number.isNaN(bare) || line === "NaN") {
      key = bareName;
      rest = line;
    } else {
      const nameEnd = line.search(/[{\s]/);
      const name = nameEnd < 0 ? line : line.slice(0, nameEnd);
      if (!SERIES_NAME.test(name)) {
        bad(
          `"${line.slice(0, 40)}" is not a series: expected NAME VALUE, NAME{LABELS} VALUE or a number`,
        );
        continue;
      }
      let labels: Array<[string, string]> = [];
      let after = nameEnd < 0 ? line.length : nameEnd;
      if (line[after] === "{") {
        const parsed = parseLabels(line, after);
        if (typeof parsed === "string") {
          bad(parsed);
          continue;
        }
        labels = parsed.labels;
        after = parsed.end;
      }
      if (labels.length > MAX_SERIES_LABELS) {
        bad(`${name}: ${MAX_SERIES_LABELS} labels at most`);
        continue;
      }
      key = seriesKey(name, labels);
      rest = line.slice(after).trim();
    }
    if (key.length > MAX_SERIES_KEY) {
      bad(`series longer than ${MAX_SERIES_KEY} characters`);
      continue;
    }
    // The value, then an optional timestamp (ignored: the sample's time is the collection's).
    const words = rest.split(/\s+/);
    if (words.length < 1 || words[0] === "" || words.length > 2) {
      bad(`${key}: expected a value (and at most a timestamp) after the series`);
      continue;
    }
    const value = sampleValue(words[0] as string);
    if (Number.isNaN(value) && words[0] !== "NaN") {
      bad(`${key}: "${words[0]}" is not a number`);
      continue;
    }
    if (values.has(key)) {
      bad(`${key} is given twice; the first value counts`);
      continue;
    }
    if (Number.isFinite(value)) values.set(key, value);
  }
  return { values, problems };
}
