/**
 * Alert rules: the stock ones, on by default, and `[alert.NAME]` sections of
 * the primary's config. A section named like a stock rule changes only the
 * keys it sets (`[alert.cpu_temp]` with `when = temp > 75`); any other name
 * is a rule of your own. Every problem is reported as `file:line`.
 */

import { STORED_METRICS } from "../metrics.js";
import { isNodeState, parseSelector } from "../nodes.js";
import { CHANNEL_NAME, CHANNEL_NAME_DOC } from "./channels.js";
import type { IniDocument } from "./ini.js";
import { sectionValues } from "./ini.js";
import {
  applySectionKeys,
  type Read,
  type SectionKey,
  sectionProblems,
  text,
  typed,
} from "./sections.js";
import { durationType, formatDuration } from "./types.js";

export type AlertOp = ">" | ">=" | "<" | "<=" | "==" | "!=";
export type AlertSeverity = "critical" | "warning" | "info";

/**
 * What a rule can watch on a node. Figures come from the node's latest
 * sample and hold no value while the node is not alive; the flags are 1 or 0.
 */
export const ALERT_METRICS: ReadonlyArray<{ name: string; doc: string }> = [
  // The stored figures (metrics.ts), then what only rules watch.
  ...STORED_METRICS.map((m) => ({
    name: m.name,
    doc: m.unit === "" ? m.doc : `${m.doc}, ${m.unit === "B/s" ? "bytes/s" : m.unit}`,
  })),
  { name: "load_per_core", doc: "1-minute load average divided by the node's cores" },
  { name: "updates", doc: "packages that can be upgraded (from updates.check)" },
  {
    name: "check_down",
    doc: "how many of the node's checks (`[check.NAME]`) are down now",
  },
  {
    name: "container_down",
    doc: "how many of the node's containers have stopped with a failure (exited with a non-zero code, or dead)",
  },
  {
    name: "container_restarting",
    doc: "how many of the node's containers are restarting now or restarted twice or more in the last 10 minutes",
  },
  {
    name: "down",
    doc: "1 while the node is down (not `left`: a node that said bye is never down)",
  },
  { name: "under_voltage", doc: "1 while a Pi reports under-voltage now" },
  { name: "throttled", doc: "1 while a Pi is throttled now" },
  { name: "freq_capped", doc: "1 while a Pi's ARM frequency is capped now" },
  { name: "soft_temp_limit", doc: "1 while a Pi's soft temperature limit is active now" },
  { name: "version_mismatch", doc: "1 while the node's agent version differs from the primary's" },
  {
    name: "custom.SERIES",
    doc: 'a series of the node\'s own `[metrics.NAME]` sections, e.g. `custom.queue_depth` (a series with labels: `custom.NAME{label="v"}` as `picluster metrics` names it); no value while the node sends none',
  },
  {
    name: "store_failing",
    doc: "1 while the primary cannot write its database (a full or read-only disk); about the primary itself, not a node, so `on` does not apply",
  },
];
const METRIC_NAMES = new Set(ALERT_METRICS.map((m) => m.name));

export interface AlertRuleDef {
  name: string;
  metric: string;
  op: AlertOp;
  threshold: number;
  /** How long the condition must hold before the rule fires. */
  forMs: number;
  /** How long it must stop holding before a firing rule resolves (a flapping condition stays one alert). */
  clearMs: number;
  /** Selector: `all`, names, `label=value`; commas pick any of them. */
  on: string;
  /** Channel names to tell; empty: `[alerts] channels`, or every channel. */
  channels: string[];
  severity: AlertSeverity;
  /** While it keeps firing, tell again this often; 0: once. */
  repeatMs: number;
  enabled: boolean;
  /** One line that replaces the stock wording of the message's title (`{node}`, `{value}` filled in). */
  message: string;
  stock: boolean;
  /** Where it was set, for messages: a file and line, or "stock". */
  where: string;
  /** Where its `channels` key is, to point at a channel name that does not exist. */
  channelsWhere?: string;
}

const DEFAULT_REPEAT_MS = 0;
export const DEFAULT_CLEAR_MS = 60_000;

function stock(
  name: string,
  when: string,
  forMs: number,
  severity: AlertSeverity,
  clearMs = DEFAULT_CLEAR_MS,
): AlertRuleDef {
  const parsed = parseWhen(when);
  if (typeof parsed === "string") throw new Error(`stock rule ${name}: ${parsed}`);
  return {
    name,
    ...parsed,
    forMs,
    clearMs,
    on: "all",
    channels: [],
    severity,
    repeatMs: DEFAULT_REPEAT_MS,
    enabled: true,
    message: "",
    stock: true,
    where: "stock",
  };
}

/** The rules every primary has unless its config switches them off. */
export const STOCK_ALERTS: readonly AlertRuleDef[] = [
  // A node back is a plain fact: it resolves at once.
  stock("node_down", "down == 1", 60_000, "critical", 0),
  stock("under_voltage", "under_voltage == 1", 0, "warning"),
  stock("throttled", "throttled == 1", 60_000, "warning"),
  stock("freq_capped", "freq_capped == 1", 60_000, "warning"),
  stock("cpu_temp", "temp > 80", 120_000, "warning"),
  stock("disk_full", "disk > 90", 300_000, "warning"),
  stock("memory_full", "mem > 90", 300_000, "warning"),
  stock("overloaded", "load_per_core > 2", 300_000, "warning"),
  stock("agent_version", "version_mismatch == 1", 3_600_000, "info"),
  // A check is its own debounce (its interval); one more sample confirms it.
  stock("check_down", "check_down > 0", 0, "warning", 0),
  stock("container_down", "container_down > 0", 60_000, "warning"),
  // Its value already means a crash loop (two restarts in 10 minutes), not one restart.
  stock("container_restarting", "container_restarting > 0", 0, "warning"),
  // Not a node's: the primary's own disk. A lock held a few seconds by the CLI is no news.
  stock("primary_store", "store_failing == 1", 60_000, "critical", 0),
];

/** Keys of an `[alert.NAME]` section, for docs and for unknown-key errors. */
export const ALERT_KEYS: ReadonlyArray<SectionKey<AlertRuleDef>> = [
  {
    key: "when",
    doc: "The condition: a metric, a comparison (`>`, `>=`, `<`, `<=`, `==`, `!=`) and a number, e.g. `temp > 75` or `disk >= 95`. The metrics are listed below.",
    read: (raw) => {
      const parsed = parseWhen(raw);
      return typeof parsed === "string" ? { problems: [parsed] } : { value: parsed };
    },
    apply: (rule, v) => Object.assign(rule, v),
  },
  {
    key: "for",
    doc: "How long the condition must hold before the rule fires, e.g. `2m` (default 0: at once).",
    read: readSpan,
    apply: (rule, v) => {
      rule.forMs = v as number;
    },
  },
  {
    key: "clear",
    doc: `How long the condition must stop holding before a firing rule resolves, so a value that flaps around the threshold stays one alert (default ${DEFAULT_CLEAR_MS / 1000}s; \`node_down\` 0).`,
    read: readSpan,
    apply: (rule, v) => {
      rule.clearMs = v as number;
    },
  },
  {
    key: "on",
    doc: "The nodes it watches: `all` (default), names, `label=value`; commas pick any of them. (Not a state: a rule watches a node whatever its state.)",
    read: readOn,
    apply: (rule, v) => {
      rule.on = v as string;
    },
  },
  {
    key: "channels",
    doc: "The channels to tell, by name as the section spells it (`ops.pager` for `[channel.ops.pager]`), comma-separated; `none` for none. Default: `[alerts] channels`.",
    read: (raw) => {
      const names = raw
        .split(/[\s,]+/)
        .map((t) => t.trim())
        .filter((t) => t !== "");
      const wrong = names.find((n) => !CHANNEL_NAME.test(n));
      return wrong === undefined
        ? { value: names }
        : { problems: [`"${wrong}" is not a channel name (${CHANNEL_NAME_DOC})`] };
    },
    apply: (rule, v, { line, file }) => {
      rule.channels = v as string[];
      rule.channelsWhere = `${file}:${line}`;
    },
  },
  {
    key: "severity",
    doc: "`critical`, `warning` (default) or `info`. Quiet hours hold all but critical.",
    read: (raw) =>
      raw === "critical" || raw === "warning" || raw === "info"
        ? { value: raw }
        : { problems: [`expected critical, warning or info, got "${raw}"`] },
    apply: (rule, v) => {
      rule.severity = v as AlertSeverity;
    },
  },
  {
    key: "repeat",
    doc: "While it keeps firing, tell again this often, e.g. `4h`; `0` (default) tells once.",
    read: readSpan,
    apply: (rule, v) => {
      rule.repeatMs = v as number;
    },
  },
  {
    key: "enabled",
    doc: "`off` switches the rule off (stock rules too).",
    read: (raw) => {
      const word = raw.toLowerCase();
      if (["on", "yes", "true", "1"].includes(word)) return { value: true };
      if (["off", "no", "false", "0"].includes(word)) return { value: false };
      return { problems: [`expected on or off, got "${raw}"`] };
    },
    apply: (rule, v) => {
      rule.enabled = v as boolean;
    },
  },
  {
    key: "message",
    doc: "Your own one-line title for the notification; `{node}` and `{value}` are filled in.",
    read: text,
    apply: (rule, v) => {
      rule.message = v as string;
    },
  },
];

/** `for`, `clear`, `repeat`: a duration; a bare 0 means "none" for each. */
function readSpan(raw: string): Read {
  return typed(forType)(raw === "0" ? "0s" : raw);
}

/**
 * The selector parser the engine uses says what it can read; a rule is
 * stricter: no empty terms, no spaces in names, and no states.
 */
function readOn(raw: string): Read {
  const terms = raw.split(",").map((t) => t.trim());
  const state = terms.find(isNodeState);
  const wrong = terms.find((t) => t === "" || /\s/.test(t)) ?? state;
  if (raw === "" || wrong !== undefined || !readsAsSelector(raw))
    return {
      problems: [
        `expected all, names or label=value joined by commas${state !== undefined ? ` (not a state: with "${state}" the rule would stop and start watching a node as its state changes)` : ""}, got "${raw}"`,
      ],
    };
  return { value: terms.join(",") };
}

/** Whether the selector parser reads `raw`. */
function readsAsSelector(raw: string): boolean {
  try {
    parseSelector(raw);
    return true;
  } catch {
    return false;
  }
}
const OPS: readonly AlertOp[] = [">=", "<=", "==", "!=", ">", "<"];
const forType = durationType(0, 30 * 86_400_000);
const RULE_NAME = /^[a-z][a-z0-9_-]{0,63}$/;

/** `metric op number` into its parts, or why not. */
export function parseWhen(raw: string): Pick<AlertRuleDef, "metric" | "op" | "threshold"> | string {
  const m =
    /^\s*([a-z_0-9]+|custom\.[A-Za-z_:][A-Za-z0-9_:]*(?:\{[^}]*\})?)\s*(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*(?:%|\u00b0C|C)?\s*$/.exec(
      raw,
    );
  if (m === null)
    return `expected METRIC OP NUMBER, e.g. "temp > 80" (OP is one of ${OPS.join(" ")}); got "${raw}"`;
  const [, metric = "", op = "", number = ""] = m;
  if (!METRIC_NAMES.has(metric) && !metric.startsWith("custom."))
    return `unknown metric "${metric}" (one of ${[...METRIC_NAMES].join(", ")})`;
  return { metric, op: op as AlertOp, threshold: Number(number) };
}

export function compareAlert(value: number, op: AlertOp, threshold: number): boolean {
  switch (op) {
    case ">":
      return value > threshold;
    case ">=":
      return value >= threshold;
    case "<":
      return value < threshold;
    case "<=":
      return value <= threshold;
    case "==":
      return value === threshold;
    case "!=":
      return value !== threshold;
  }
}

export interface AlertProblem {
  where: string;
  message: string;
}

/**
 * The rules in force: the stock ones with what `[alert.NAME]` sections of
 * `doc` change, then the sections' own rules. Without a file: the stock rules.
 */
export function readAlertSections(doc: IniDocument | undefined): {
  rules: Record<string, AlertRuleDef>;
  problems: AlertProblem[];
} {
  const rules: Record<string, AlertRuleDef> = {};
  for (const r of STOCK_ALERTS) rules[r.name] = { ...r, channels: [...r.channels] };
  const problems: AlertProblem[] = [];
  if (doc === undefined) return { rules, problems };
  for (const [sectionName, section] of doc.sections) {
    if (!sectionName.startsWith("alert.")) continue;
    const name = sectionName.slice("alert.".length);
    const at = (line: number) => `${doc.file}:${line}`;
    if (!RULE_NAME.test(name)) {
      problems.push({
        where: at(section.line),
        message: `[${sectionName}]: a rule name is lowercase letters, digits, '_' or '-', starting with a letter`,
      });
      continue;
    }
    const base = rules[name];
    const rule: AlertRuleDef = base
      ? { ...base, where: at(section.line) }
      : {
          name,
          metric: "",
          op: ">",
          threshold: 0,
          forMs: 0,
          clearMs: DEFAULT_CLEAR_MS,
          on: "all",
          channels: [],
          severity: "warning",
          repeatMs: DEFAULT_REPEAT_MS,
          enabled: true,
          message: "",
          stock: false,
          where: at(section.line),
        };
    const report = sectionProblems(doc.file, sectionName, problems);
    const { bad } = report;
    applySectionKeys(
      ALERT_KEYS,
      sectionValues(doc, section, bad),
      rule,
      doc.file,
      bad,
      (keyName, line) =>
        bad(
          line,
          `unknown key "${keyName}" (an alert has ${ALERT_KEYS.map((k) => k.key).join(", ")})`,
        ),
    );
    if (rule.metric === "" && report.ok) bad(section.line, 'has no "when" (e.g. when = temp > 80)');
    if (report.ok) rules[name] = rule;
  }
  return { rules, problems };
}

/** A rule as one line: `temp > 80 for 2m on all`. */
export function describeRule(r: AlertRuleDef): string {
  const when = `${r.metric} ${r.op} ${r.threshold}`;
  return `${when}${r.forMs > 0 ? ` for ${formatDuration(r.forMs)}` : ""}${r.on === "all" ? "" : ` on ${r.on}`}`;
}

/**
 * Channel names rules and `[alerts] channels` use that no `[channel.NAME]`
 * defines (`none` is always fine).
 */
export function unknownAlertChannels(
  rules: Readonly<Record<string, AlertRuleDef>>,
  defaults: readonly string[],
  channels: ReadonlySet<string>,
): Array<{ where: string | undefined; message: string }> {
  const known = [...channels].join(", ") || "none is configured";
  const out: Array<{ where: string | undefined; message: string }> = [];
  for (const r of Object.values(rules))
    for (const name of r.channels)
      if (name !== "none" && !channels.has(name))
        out.push({
          where: r.channelsWhere ?? r.where,
          message: `[alert.${r.name}] channels: no [channel.${name}] (${known})`,
        });
  for (const name of defaults)
    if (name !== "none" && !channels.has(name))
      out.push({ where: undefined, message: `[alerts] channels: no [channel.${name}] (${known})` });
  return out;
}
