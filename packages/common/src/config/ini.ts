/**
 * An INI reader with the semantics of Python's configparser.ConfigParser in
 * its default setup (the tutorial's choice), so a file that worked for the
 * tutorial's scripts means the same thing here.
 *
 * Written by hand rather than taken from npm: the INI packages there follow
 * PHP/npm conventions (no `:` delimiter, no continuation lines, no `%(x)s`
 * interpolation, duplicates silently merged) and none reports line numbers,
 * which every config error must carry. Conformance is checked against
 * Python's own configparser in test/config/ini.test.ts.
 */

export const DEFAULT_SECTION = "DEFAULT";
/** Python's MAX_INTERPOLATION_DEPTH. */
const MAX_INTERPOLATION_DEPTH = 10;

export interface IniEntry {
  /** Lower-cased, as configparser's optionxform does. */
  key: string;
  /** Raw value, continuation lines joined with `\n`, before interpolation. */
  raw: string;
  /** 1-based line of the `key = value` line. */
  line: number;
}

export interface IniSection {
  name: string;
  /** Line of the first header of this section (0 for an implicit DEFAULT). */
  line: number;
  entries: Map<string, IniEntry>;
}

export interface IniDocument {
  file: string;
  defaults: IniSection;
  /** Sections in file order, DEFAULT excluded; names are case-sensitive. */
  sections: Map<string, IniSection>;
}

export type IniProblemKind =
  | "missing_section_header"
  | "duplicate_section"
  | "duplicate_option"
  | "parse"
  | "interpolation_missing"
  | "interpolation_syntax"
  | "interpolation_depth";

export interface IniProblem {
  kind: IniProblemKind;
  file: string;
  line: number;
  message: string;
}

// Python's whitespace: str.isspace(), which is also `\s` in its regexes.
// JavaScript's `\s` and trim() lack U+001C-U+001F and U+0085 and add U+FEFF.
const SPACE =
  "\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const LEADING_SPACE_RE = new RegExp(`^[${SPACE}]+`);
const TRAILING_SPACE_RE = new RegExp(`[${SPACE}]+$`);
const NON_SPACE_RE = new RegExp(`[^${SPACE}]`);
// The `s` flag because Python's `.` matches U+2028 and U+2029 (lines are
// split on \r and \n only, as Python's universal newlines do).
const SECTION_RE = /^\[(.+)\]/s;
// Non-greedy key: the first `=` or `:` on the line splits it, as in Python.
const OPTION_RE = new RegExp(`^(.*?)[${SPACE}]*([=:])[${SPACE}]*(.*)$`, "s");
const COMMENT_PREFIXES = ["#", ";"];

/** Python's str.strip(). */
function strip(s: string): string {
  return s.replace(LEADING_SPACE_RE, "").replace(TRAILING_SPACE_RE, "");
}

/**
 * Parse INI text. Never throws: every problem is returned, with its line,
 * and as much of the document as could be read.
 */
export function parseIni(text: string, file: string): { doc: IniDocument; problems: IniProblem[] } {
  const defaults: IniSection = { name: DEFAULT_SECTION, line: 0, entries: new Map() };
  const sections = new Map<string, IniSection>();
  const problems: IniProblem[] = [];
  const seenSections = new Set<string>();
  // Continuation lines are collected per entry and joined at the end.
  const pieces = new Map<IniEntry, string[]>();

  let current: IniSection | undefined;
  let entry: IniEntry | undefined;
  let indentLevel = 0;

  const lines = text.split(/\r\n|\n|\r/);
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  lines.forEach((line, index) => {
    const lineNo = index + 1;
    const stripped = strip(line);
    const isComment = COMMENT_PREFIXES.some((p) => stripped.startsWith(p));
    const value = isComment ? "" : stripped;
    if (value === "") {
      // Blank lines inside a multi-line value are kept; comment lines are not.
      if (!isComment && current !== undefined && entry !== undefined) {
        pieces.get(entry)?.push("");
      }
      return;
    }
    const curIndent = Math.max(0, line.search(NON_SPACE_RE));
    if (current !== undefined && entry !== undefined && curIndent > indentLevel) {
      pieces.get(entry)?.push(value);
      return;
    }
    indentLevel = curIndent;
    const header = SECTION_RE.exec(value);
    if (header) {
      const name = header[1] ?? "";
      if (name === DEFAULT_SECTION) {
        current = defaults;
        if (defaults.line === 0) defaults.line = lineNo;
      } else {
        const existing = sections.get(name);
        if (existing !== undefined) {
          problems.push({
            kind: "duplicate_section",
            file,
            line: lineNo,
            message: `section [${name}] already defined at line ${existing.line}`,
          });
          current = existing;
        } else {
          current = { name, line: lineNo, entries: new Map() };
          sections.set(name, current);
        }
        seenSections.add(name);
      }
      entry = undefined;
      return;
    }
    if (current === undefined) {
      problems.push({
        kind: "missing_section_header",
        file,
        line: lineNo,
        message: `expected a [section] header before ${JSON.stringify(line)}`,
      });
      // Python stops here; we keep reading into a throwaway section so that
      // the rest of the file's problems are reported too.
      current = { name: "", line: lineNo, entries: new Map() };
      entry = undefined;
      return;
    }
    const option = OPTION_RE.exec(value);
    const key = option ? strip(option[1] ?? "").toLowerCase() : "";
    if (!option || key === "") {
      problems.push({
        kind: "parse",
        file,
        line: lineNo,
        message: option
          ? `missing key name before "${option[2]}"`
          : `expected "key = value" or "key: value", got ${JSON.stringify(stripped)}`,
      });
      // Python keeps appending indented lines to the previous key after a
      // line without a delimiter, and so do we: `entry` is left as it was.
      // A line with an empty key name, though, ends the previous value in
      // Python (it becomes the current key, named ""): the indented lines
      // after it are read as keys and headers again.
      if (option) entry = undefined;
      return;
    }
    const previous = current.entries.get(key);
    if (previous !== undefined) {
      problems.push({
        kind: "duplicate_option",
        file,
        line: lineNo,
        message: `key "${key}" in [${current.name}] already set at line ${previous.line}`,
      });
    }
    entry = { key, raw: "", line: lineNo };
    current.entries.set(key, entry);
    pieces.set(entry, [strip(option[3] ?? "")]);
  });

  for (const [e, parts] of pieces) {
    // configparser joins with newlines and strips trailing whitespace.
    e.raw = parts.join("\n").replace(TRAILING_SPACE_RE, "");
  }
  return { doc: { file, defaults, sections }, problems };
}

/** The entry a key resolves to in a section: its own, else DEFAULT's. */
export function lookup(doc: IniDocument, section: string, key: string): IniEntry | undefined {
  const own = doc.sections.get(section)?.entries.get(key);
  return own ?? doc.defaults.entries.get(key);
}

/**
 * The value of `key` in `section` after `%(name)s` interpolation
 * (BasicInterpolation): names resolve in the same section, then DEFAULT;
 * `%%` is a literal `%`. Throws an IniInterpolationError naming the problem.
 */
export function interpolate(doc: IniDocument, section: string, key: string): string {
  const entry = lookup(doc, section, key);
  if (entry === undefined) throw new RangeError(`no key "${key}" in [${section}]`);
  return expand(doc, section, key, entry.raw, 1);
}

export class IniInterpolationError extends Error {
  constructor(
    readonly kind: "interpolation_missing" | "interpolation_syntax" | "interpolation_depth",
    message: string,
  ) {
    super(message);
  }
}

function expand(
  doc: IniDocument,
  section: string,
  key: string,
  raw: string,
  depth: number,
): string {
  if (depth > MAX_INTERPOLATION_DEPTH) {
    throw new IniInterpolationError(
      "interpolation_depth",
      `"${key}": interpolation nested deeper than ${MAX_INTERPOLATION_DEPTH} levels (a reference loop?)`,
    );
  }
  let out = "";
  let rest = raw;
  while (rest.length > 0) {
    const at = rest.indexOf("%");
    if (at < 0) {
      out += rest;
      break;
    }
    out += rest.slice(0, at);
    const next = rest[at + 1];
    if (next === "%") {
      out += "%";
      rest = rest.slice(at + 2);
      continue;
    }
    if (next === "(") {
      const m = /^%\(([^)]+)\)s/.exec(rest.slice(at));
      if (!m) {
        throw new IniInterpolationError(
          "interpolation_syntax",
          `"${key}": bad interpolation syntax in ${JSON.stringify(rest.slice(at))}; write %(name)s`,
        );
      }
      const name = (m[1] ?? "").toLowerCase();
      const target = lookup(doc, section, name);
      if (target === undefined) {
        throw new IniInterpolationError(
          "interpolation_missing",
          `"${key}": %(${name})s refers to a key that is not in [${section}] or [DEFAULT]`,
        );
      }
      out += target.raw.includes("%")
        ? expand(doc, section, name, target.raw, depth + 1)
        : target.raw;
      rest = rest.slice(at + m[0].length);
      continue;
    }
    throw new IniInterpolationError(
      "interpolation_syntax",
      `"${key}": "%" must be followed by "%" or "(", found ${JSON.stringify(rest.slice(at))}; write %% for a literal %`,
    );
  }
  return out;
}

/**
 * A section's values as its readers take them (interpolated, trimmed), each
 * with its key and line. A value that cannot be interpolated is reported to
 * `bad` with its line and skipped.
 */
export function* sectionValues(
  doc: IniDocument,
  section: IniSection,
  bad: (line: number, message: string) => void,
): Generator<{ key: string; raw: string; line: number }> {
  for (const [key, entry] of section.entries) {
    let raw: string;
    try {
      raw = interpolate(doc, section.name, key).trim();
    } catch (err) {
      bad(entry.line, (err as Error).message);
      continue;
    }
    yield { key, raw, line: entry.line };
  }
}
