/**
 * `[metrics.NAME]` sections of a node's config: numbers of the user's own,
 * from a program's output or a file's text, collected by the agent at an
 * interval of their own and sent with the vitals (see docs/custom-metrics.md).
 *
 * ```ini
 * [metrics.queue]
 * command = /usr/local/bin/queue-depth --json=false
 * interval = 30s
 * timeout = 5s
 * ```
 */
import { split as shellSplit } from "shlex";
import type { IniDocument } from "./ini.js";
import { boundTimeout, readNamedSections, type SectionKey, typed } from "./sections.js";
import { durationType, formatDuration } from "./types.js";

export interface CustomMetricDef {
  name: string;
  /** Program and arguments (no shell); empty when `file` is set. */
  command: readonly string[];
  /** A file to read; "" when `command` is set. */
  file: string;
  intervalMs: number;
  timeoutMs: number;
  /** Where the section starts, for messages. */
  where: string;
}

export const CUSTOM_METRIC_NAME = /^[a-z][a-z0-9_]{0,63}$/;
export const DEFAULT_CUSTOM_INTERVAL_MS = 30_000;
export const DEFAULT_CUSTOM_TIMEOUT_MS = 10_000;
const intervalType = durationType(1_000, 86_400_000);
const timeoutType = durationType(100, 600_000);

interface Draft {
  def: CustomMetricDef;
}

export const CUSTOM_METRIC_KEYS: ReadonlyArray<SectionKey<Draft>> = [
  {
    key: "command",
    doc: 'A program and its arguments, split into words as a shell would split them (quotes group words; nothing is expanded, no shell runs). Its standard output is read as Prometheus text (`name{label="v"} value`, `#` lines ignored), `name value` lines, or one bare number (the series is then named after the section). Set this or `file`.',
    read: (raw) => {
      try {
        const words = shellSplit(raw);
        return { value: words, problems: words.length === 0 ? ["must not be empty"] : [] };
      } catch (err) {
        return { problems: [(err as Error).message] };
      }
    },
    apply: (draft, v) => {
      draft.def.command = v as string[];
    },
  },
  {
    key: "file",
    doc: "An absolute path to read instead of running a program (a node_exporter textfile, a sysfs value), in the same formats as `command`'s output. Set this or `command`.",
    read: (raw) => ({
      value: raw,
      problems: raw.startsWith("/") ? [] : ["must be an absolute path"],
    }),
    apply: (draft, v) => {
      draft.def.file = v as string;
    },
  },
  {
    key: "interval",
    doc: `How often to collect (default ${formatDuration(DEFAULT_CUSTOM_INTERVAL_MS)}). The values travel with the next vitals sample; a value older than two intervals is no longer sent.`,
    read: typed(intervalType),
    apply: (draft, v) => {
      draft.def.intervalMs = v as number;
    },
  },
  {
    key: "timeout",
    doc: `How long the program may run before its process group is killed and this collection counts as failed (default ${formatDuration(DEFAULT_CUSTOM_TIMEOUT_MS)} or the interval, whichever is shorter; at most the interval).`,
    read: typed(timeoutType),
    apply: (draft, v) => {
      draft.def.timeoutMs = v as number;
    },
  },
];

export function readCustomMetricSections(doc: IniDocument): {
  metrics: Record<string, CustomMetricDef>;
  problems: Array<{ where: string; message: string }>;
} {
  const { defs, problems } = readNamedSections<Draft, CustomMetricDef>(doc, {
    prefix: "metrics",
    name: CUSTOM_METRIC_NAME,
    nameRule:
      "a metric name is lowercase letters, digits or '_', starting with a letter (64 at most)",
    what: "a metric",
    keys: CUSTOM_METRIC_KEYS,
    start: (name, where) => ({
      def: {
        name,
        command: [],
        file: "",
        intervalMs: DEFAULT_CUSTOM_INTERVAL_MS,
        timeoutMs: DEFAULT_CUSTOM_TIMEOUT_MS,
        where,
      },
    }),
    finish: ({ def }, section, bad) => {
      const hasCommand = section.entries.has("command");
      if (hasCommand === section.entries.has("file"))
        bad(
          section.line,
          hasCommand
            ? "sets both command and file: one or the other"
            : "has neither command nor file",
        );
      boundTimeout(def, section, bad);
      return def;
    },
  });
  return { metrics: defs, problems };
}
