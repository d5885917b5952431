/**
 * The node's own numbers: each `[metrics.NAME]` section runs its program
 * (or reads its file) at its own interval, and the series its text gives
 * are kept with the time they were read. Each vitals sample carries the
 * current ones: read within the last two intervals of their section, at
 * most `[agent] max_custom_series` of them.
 *
 * A program runs with no shell, in its own process group (killed whole on
 * timeout), with the tasks' minimal environment; its output is read up to
 * 64 KiB. A collection that fails (exit status, timeout, unreadable file, no
 * series) logs a warning when a section starts failing and an info line when
 * it works again, not at every interval.
 */
import { readFile } from "node:fs";
import {
  type Clock,
  type CustomMetricDef,
  describeError,
  type Logger,
  parseSeriesText,
} from "@picluster/common";
import { TASK_PATH } from "./tasks/executor.js";
import type { RunSpec } from "./tasks/runner.js";

/** Output read from a program or a file; the rest is ignored (a problem is logged). */
export const MAX_CUSTOM_OUTPUT = 64 * 1024;

export interface CustomSeriesValue {
  series: string;
  value: number;
}

interface SectionState {
  def: CustomMetricDef;
  values: Map<string, number>;
  /** When `values` were read (clock ms); 0 before the first success. */
  at: number;
  failing: boolean;
  running: boolean;
}

/** Run a program: its stdout (bounded), or why it failed. Loaded when first needed (RSS). */
async function runForOutput(spec: RunSpec): Promise<string> {
  const { collectOutput } = await import("./tasks/runner.js");
  const { result, out, err } = await collectOutput(spec);
  if (result.stopped === "timeout") throw new Error(`timed out after ${spec.timeoutMs} ms`);
  if (result.exitCode !== 0) {
    const why =
      result.signal === null ? `exit status ${result.exitCode}` : `signal ${result.signal}`;
    const said = err.trim().split("\n").slice(-1)[0]?.slice(0, 200) ?? "";
    throw new Error(said === "" ? why : `${why}: ${said}`);
  }
  return out;
}

function readBounded(path: string): Promise<string> {
  return new Promise((resolve, reject) =>
    readFile(path, "utf8", (err, text) => {
      if (err) reject(err);
      else resolve(text.length > MAX_CUSTOM_OUTPUT ? text.slice(0, MAX_CUSTOM_OUTPUT) : text);
    }),
  );
}

export interface CustomMetricsOptions {
  defs: readonly CustomMetricDef[];
  maxSeries: number;
  clock: Clock;
  log: Logger;
  /** The programs' working directory (the agent's data directory). */
  cwd: string;
  /** Tests: read instead of running (name → output). */
  run?: (def: CustomMetricDef) => Promise<string>;
}

export class CustomMetrics {
  private readonly sections: SectionState[];
  private readonly stops: Array<() => void> = [];
  private warnedOverLimit = false;

  constructor(private readonly opts: CustomMetricsOptions) {
    this.sections = opts.defs.map((def) => ({
      def,
      values: new Map(),
      at: 0,
      failing: false,
      running: false,
    }));
  }

  get size(): number {
    return this.sections.length;
  }

  /** Collect each section now, then at its interval. */
  start(): void {
    for (const s of this.sections) {
      void this.collect(s);
      this.stops.push(this.opts.clock.every(s.def.intervalMs, () => void this.collect(s)));
    }
  }

  stop(): void {
    for (const stop of this.stops.splice(0)) stop();
  }

  /** Collect every section once, now (tests; `start` does it at each interval). */
  async collectAll(): Promise<void> {
    await Promise.all(this.sections.map((s) => this.collect(s)));
  }

  /** One collection of one section (skipped while the previous one still runs). */
  private async collect(s: SectionState): Promise<void> {
    if (s.running) return;
    s.running = true;
    const { def } = s;
    try {
      const text = await (this.opts.run?.(def) ?? this.read(def));
      const parsed = parseSeriesText(text, def.name);
      if (parsed.values.size === 0)
        throw new Error(
          parsed.problems.length > 0
            ? `no series read (${parsed.problems.slice(0, 3).join("; ")})`
            : "no series in the output",
        );
      s.values = parsed.values;
      s.at = this.opts.clock.now();
      if (s.failing) {
        s.failing = false;
        this.opts.log.info("custom metric collected again", { metric: def.name });
      }
      if (parsed.problems.length > 0)
        this.opts.log.debug("custom metric lines skipped", {
          metric: def.name,
          problems: parsed.problems.slice(0, 5),
        });
    } catch (err) {
      if (!s.failing) {
        s.failing = true;
        this.opts.log.warn("custom metric failed", {
          metric: def.name,
          where: def.where,
          err: describeError(err),
        });
      }
    } finally {
      s.running = false;
    }
  }

  private read(def: CustomMetricDef): Promise<string> {
    if (def.file !== "") return readBounded(def.file);
    return runForOutput({
      argv: def.command,
      cwd: this.opts.cwd,
      env: { PATH: TASK_PATH, HOME: process.env.HOME ?? "/", LANG: "C.UTF-8" },
      timeoutMs: def.timeoutMs,
      outputLimit: MAX_CUSTOM_OUTPUT,
    });
  }

  /** The current series (read within two intervals), in section order, at most maxSeries. */
  current(): CustomSeriesValue[] {
    const now = this.opts.clock.now();
    const out: CustomSeriesValue[] = [];
    const seen = new Set<string>();
    let dropped = 0;
    for (const s of this.sections) {
      if (s.at === 0 || now - s.at > 2 * s.def.intervalMs + s.def.timeoutMs) continue;
      for (const [series, value] of s.values) {
        if (seen.has(series)) continue;
        if (out.length >= this.opts.maxSeries) {
          dropped++;
          continue;
        }
        seen.add(series);
        out.push({ series, value });
      }
    }
    if (dropped > 0 && !this.warnedOverLimit) {
      this.warnedOverLimit = true;
      this.opts.log.warn(
        "more custom series than [agent] max_custom_series; the rest are not sent",
        {
          max: this.opts.maxSeries,
          dropped,
        },
      );
    }
    return out;
  }
}
