/**
 * Value types for configuration keys. Each parses the text a user wrote
 * (in a file, an environment variable or a flag) into a typed value, or says
 * what was expected; each formats a value back into text that parses again.
 */

/** Where a configured value came from (shown by `config show`, named in errors). */
export type ValueSource =
  | { kind: "default" }
  | { kind: "file"; file: string; line: number }
  | { kind: "env"; name: string }
  | { kind: "flag"; name: string };

export type Parsed<T> = { ok: true; value: T } | { ok: false; expected: string };

export interface ValueType<T> {
  /** Short name for docs: `integer`, `duration`, … */
  name: string;
  parse(raw: string): Parsed<T>;
  format(value: T): string;
}

const fail = <T>(expected: string): Parsed<T> => ({ ok: false, expected });

/** `type`, or nothing when the value is empty (a feature that is off until set). */
export function optionalType<T>(type: ValueType<T>): ValueType<T | undefined> {
  return {
    name: `${type.name} or empty`,
    parse(raw) {
      return raw === "" ? { ok: true, value: undefined } : type.parse(raw);
    },
    format: (v) => (v === undefined ? "" : type.format(v)),
  };
}

export function stringType(
  opts: { pattern?: RegExp; patternDoc?: string } = {},
): ValueType<string> {
  return {
    name: "string",
    parse(raw) {
      if (opts.pattern && !opts.pattern.test(raw))
        return fail(opts.patternDoc ?? `text matching ${opts.pattern}`);
      return { ok: true, value: raw };
    },
    format: (v) => v,
  };
}

/**
 * An `http://` or `https://` URL with a host, or empty (a feature that is
 * off until set). Kept as written, so `config show` gives it back unchanged.
 */
export const httpUrlType: ValueType<string> = {
  name: "URL",
  parse(raw) {
    if (raw === "") return { ok: true, value: "" };
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return fail("an http:// or https:// URL (or empty)");
    }
    if ((url.protocol !== "http:" && url.protocol !== "https:") || url.hostname === "")
      return fail("an http:// or https:// URL (or empty)");
    return { ok: true, value: raw };
  },
  format: (v) => v,
};

export function integerType(min: number, max: number): ValueType<number> {
  return {
    name: `integer ${min}–${max}`,
    parse(raw) {
      if (!/^[+-]?\d+$/.test(raw)) return fail(`an integer from ${min} to ${max}`);
      const n = Number(raw);
      if (n < min || n > max) return fail(`an integer from ${min} to ${max}`);
      return { ok: true, value: n };
    },
    format: (v) => String(v),
  };
}

// The words Python's ConfigParser.getboolean accepts.
const TRUE_WORDS = new Set(["1", "yes", "true", "on"]);
const FALSE_WORDS = new Set(["0", "no", "false", "off"]);

export const booleanType: ValueType<boolean> = {
  name: "boolean",
  parse(raw) {
    const word = raw.toLowerCase();
    if (TRUE_WORDS.has(word)) return { ok: true, value: true };
    if (FALSE_WORDS.has(word)) return { ok: true, value: false };
    return fail("a boolean: on/off, true/false, yes/no or 1/0");
  },
  format: (v) => (v ? "on" : "off"),
};

export function enumType<const T extends string>(values: readonly T[]): ValueType<T> {
  return {
    name: values.join(" | "),
    parse(raw) {
      const word = raw.toLowerCase();
      const found = values.find((v) => v === word);
      return found === undefined ? fail(`one of ${values.join(", ")}`) : { ok: true, value: found };
    },
    format: (v) => v,
  };
}

const DURATION_UNITS_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** A duration in milliseconds, written `500ms`, `10s`, `1.5m`, `2h`, `7d`. */
export function durationType(minMs: number, maxMs: number): ValueType<number> {
  const range = `from ${formatDuration(minMs)} to ${formatDuration(maxMs)}`;
  return {
    name: "duration",
    parse(raw) {
      const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/i.exec(raw);
      if (!m) return fail(`a duration with a unit, like 500ms, 10s, 5m or 1h, ${range}`);
      const ms = Math.round(Number(m[1]) * (DURATION_UNITS_MS[(m[2] ?? "").toLowerCase()] ?? 0));
      if (ms < minMs || ms > maxMs) return fail(`a duration ${range}`);
      return { ok: true, value: ms };
    },
    format: formatDuration,
  };
}

export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1_000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

// Binary multiples, as in nginx and logrotate: 1MB is 1 048 576 bytes.
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1024,
  kib: 1024,
  k: 1024,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  m: 1024 ** 2,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  g: 1024 ** 3,
};

/** A size in bytes, written `512`, `64KB`, `10MB`, `1GiB` (KB = KiB = 1024 bytes). */
export function sizeType(minBytes: number, maxBytes: number): ValueType<number> {
  const range = `from ${formatSize(minBytes)} to ${formatSize(maxBytes)}`;
  return {
    name: "size",
    parse(raw) {
      const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(raw);
      const unit = SIZE_UNITS[(m?.[2] || "b").toLowerCase()];
      if (!m || unit === undefined) return fail(`a size like 512KB, 10MB or 1GB, ${range}`);
      const bytes = Math.round(Number(m[1]) * unit);
      if (bytes < minBytes || bytes > maxBytes) return fail(`a size ${range}`);
      return { ok: true, value: bytes };
    },
    format: formatSize,
  };
}

export function formatSize(bytes: number): string {
  for (const [unit, size] of [
    ["GB", 1024 ** 3],
    ["MB", 1024 ** 2],
    ["KB", 1024],
  ] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}

export type Labels = Readonly<Record<string, string>>;

const LABEL_KEY = /^[A-Za-z_][A-Za-z0-9_.-]{0,62}$/;

/** `key=value` pairs separated by commas; a bare `key` means `key=true`. */
export const labelsType: ValueType<Labels> = {
  name: "labels",
  parse(raw) {
    const labels: Record<string, string> = {};
    for (const part of raw.split(/[,\n]/)) {
      const item = part.trim();
      if (item === "") continue;
      const eq = item.indexOf("=");
      const key = (eq < 0 ? item : item.slice(0, eq)).trim();
      const value = eq < 0 ? "true" : item.slice(eq + 1).trim();
      if (!LABEL_KEY.test(key)) {
        return fail(
          `labels as key=value pairs separated by commas; "${key}" is not a valid label name`,
        );
      }
      if (key in labels) return fail(`labels with distinct names; "${key}" appears twice`);
      labels[key] = value;
    }
    return { ok: true, value: labels };
  },
  format: (v) =>
    Object.entries(v)
      .map(([k, val]) => `${k}=${val}`)
      .join(","),
};

/** Items separated by commas (or lines), each checked by `item`; empty means none. */
export function listType(item: ValueType<string>): ValueType<readonly string[]> {
  return {
    name: `list of ${item.name}`,
    parse(raw) {
      const out: string[] = [];
      for (const part of raw.split(/[,\n]/)) {
        const text = part.trim();
        if (text === "") continue;
        const parsed = item.parse(text);
        if (!parsed.ok)
          return fail(`items separated by commas, each ${parsed.expected}; "${text}" is not`);
        out.push(parsed.value);
      }
      return { ok: true, value: out };
    },
    format: (v) => v.map((x) => item.format(x)).join(", "),
  };
}
