/**
 * Named sections (`[channel.NAME]`, `[alert.NAME]`) described by data: each
 * key is a row with its documentation, how a value is read, and where the
 * value goes. One reader applies the rows to a section's values, so a new
 * key is a new row (docs/configuration.md is rendered from the same rows).
 */

import { type IniDocument, type IniSection, sectionValues } from "./ini.js";
import { formatDuration } from "./types.js";

/** What reading one value gave: the value (absent: leave the default) and what was wrong with it. */
export interface Read {
  value?: unknown;
  /** Each without the key, e.g. `expected a duration, got "x"`. */
  problems?: string[];
}

/** One key of a named section. */
export interface SectionKey<Def> {
  key: string;
  doc: string;
  /** Never echoed in a problem, redacted by `config show`. */
  secret?: boolean;
  read(raw: string): Read;
  /** Put what was read into the definition. */
  apply(def: Def, value: unknown, at: { file: string; line: number }): void;
}

/** A value read by a ValueType (`expected …, got "…"`). */
export function typed<T>(type: {
  parse(raw: string): { ok: true; value: T } | { ok: false; expected: string };
}): (raw: string) => Read {
  return (raw) => {
    const parsed = type.parse(raw);
    return parsed.ok
      ? { value: parsed.value }
      : { problems: [`expected ${parsed.expected}, got "${raw}"`] };
  };
}

/** A string that must not be empty. */
export const nonEmpty = (raw: string): Read =>
  raw === "" ? { value: raw, problems: ["must not be empty"] } : { value: raw };

/** Any string, as written. */
export const text = (raw: string): Read => ({ value: raw });

/**
 * Apply `keys` to a section's values: each value is read by its row and put
 * into `def`; a problem is reported as `key: problem` on the value's line.
 * Values whose key has no row are left to the caller (`unknown`).
 */
export function applySectionKeys<Def>(
  keys: ReadonlyArray<SectionKey<Def>>,
  values: Iterable<{ key: string; raw: string; line: number }>,
  def: Def,
  file: string,
  bad: (line: number, message: string) => void,
  unknown: (key: string, line: number, raw: string) => void,
): void {
  const byKey = new Map(keys.map((k) => [k.key, k]));
  for (const { key, raw, line } of values) {
    const row = byKey.get(key);
    if (row === undefined) {
      unknown(key, line, raw);
      continue;
    }
    const result = row.read(raw);
    for (const problem of result.problems ?? []) bad(line, `${key}: ${problem}`);
    if (result.value !== undefined) row.apply(def, result.value, { file, line });
  }
}

/**
 * Problems of one named section: `bad(line, message)` records one at the
 * file's line, prefixed with the section (`[alert.x] when: …`), and clears
 * `ok`, which says whether the section can be used.
 */
export function sectionProblems(
  file: string,
  sectionName: string,
  problems: Array<{ where: string; message: string }>,
): { ok: boolean; bad: (line: number, message: string) => void } {
  const r = {
    ok: true,
    bad: (line: number, message: string) => {
      problems.push({ where: `${file}:${line}`, message: `[${sectionName}] ${message}` });
      r.ok = false;
    },
  };
  return r;
}

export interface NamedSectionsSpec<Draft, Def> {
  /** `metrics` for `[metrics.NAME]`. */
  prefix: string;
  name: RegExp;
  /** What a name must be, e.g. "a check name is lowercase letters, …". */
  nameRule: string;
  /** "a check", for `unknown key "x" (a check has …)`. */
  what: string;
  keys: ReadonlyArray<SectionKey<Draft>>;
  start(name: string, where: string): Draft;
  /** Rules across keys (report with `bad`); the definition to keep if no problem was found. */
  finish(draft: Draft, section: IniSection, bad: (line: number, message: string) => void): Def;
}

/**
 * Every `[PREFIX.NAME]` section read by its key rows: a bad name is one
 * problem, each bad value another, all with file and line; a section with
 * any problem is left out of `defs`.
 */
export function readNamedSections<Draft, Def>(
  doc: IniDocument,
  spec: NamedSectionsSpec<Draft, Def>,
): { defs: Record<string, Def>; problems: Array<{ where: string; message: string }> } {
  const defs: Record<string, Def> = {};
  const problems: Array<{ where: string; message: string }> = [];
  const known = spec.keys.map((k) => k.key).join(", ");
  for (const [sectionName, section] of doc.sections) {
    if (!sectionName.startsWith(`${spec.prefix}.`)) continue;
    const name = sectionName.slice(spec.prefix.length + 1);
    const where = `${doc.file}:${section.line}`;
    if (!spec.name.test(name)) {
      problems.push({ where, message: `[${sectionName}]: ${spec.nameRule}` });
      continue;
    }
    const draft = spec.start(name, where);
    const report = sectionProblems(doc.file, sectionName, problems);
    const { bad } = report;
    applySectionKeys(
      spec.keys,
      sectionValues(doc, section, bad),
      draft,
      doc.file,
      bad,
      (key, line) => bad(line, `unknown key "${key}" (${spec.what} has ${known})`),
    );
    const def = spec.finish(draft, section, bad);
    if (report.ok) defs[name] = def;
  }
  return { defs, problems };
}

/**
 * A timeout within its interval: unset, the default or the interval,
 * whichever is shorter; set longer than the interval, a problem.
 */
export function boundTimeout(
  def: { intervalMs: number; timeoutMs: number },
  section: IniSection,
  bad: (line: number, message: string) => void,
): void {
  const set = section.entries.get("timeout");
  if (set === undefined) def.timeoutMs = Math.min(def.timeoutMs, def.intervalMs);
  else if (def.timeoutMs > def.intervalMs)
    bad(
      set.line,
      `timeout: ${formatDuration(def.timeoutMs)} is longer than the interval (${formatDuration(def.intervalMs)})`,
    );
}
