/**
 * What every benchmark suite shares: the shape of a report, progress on
 * stderr, and interleaved timing with warm-up and a median.
 */
import { performance } from "node:perf_hooks";

/** One timed case: `perSecond` is in `unit`s (e.g. msgs) per second. */
export interface Measurement {
  id: string;
  label: string;
  medianMs: number;
  minMs: number;
  maxMs: number;
  samplesMs: number[];
  unit: string;
  perSecond: number;
  /** Input bytes per second / 1e6, when the case consumes bytes. */
  mbPerSec?: number;
}

/** A derived figure, e.g. the cost of one case relative to another. */
export interface Ratio {
  id: string;
  label: string;
  value: number;
}

/** A target from the design, with a printed verdict (never a failed exit). */
export interface Budget {
  id: string;
  label: string;
  comparison: Comparison;
  limit: number;
  actual: number;
  unit: string;
  verdict: "PASS" | "OVER";
}

export type Comparison = "<=" | ">=" | "<" | ">";

/** Figures that are not timed cases (e.g. a cluster run), already formatted for the text output. */
export interface ReportTable {
  title: string;
  columns: string[];
  rows: string[][];
  /** Column indexes printed right-aligned (numbers). */
  numeric: number[];
}

export interface SuiteReport {
  suite: string;
  description: string;
  parameters: Record<string, number | string>;
  measurements: Measurement[];
  ratios: Ratio[];
  budgets: Budget[];
  notes: string[];
  /** Extra tables for the text output. */
  tables?: ReportTable[];
  /** Raw figures behind the tables, for --json. */
  data?: Record<string, unknown>;
}

export interface SuiteContext {
  /** Progress for long runs; goes to stderr so stdout stays clean for --json. */
  progress(message: string): void;
  /** `--quick`: a shorter run with fewer samples, for a smoke check. */
  quick: boolean;
}

export type Suite = (ctx: SuiteContext) => Promise<SuiteReport>;

export function budget(
  id: string,
  label: string,
  comparison: Comparison,
  limit: number,
  actual: number,
  unit: string,
): Budget {
  const ok =
    comparison === "<="
      ? actual <= limit
      : comparison === ">="
        ? actual >= limit
        : comparison === "<"
          ? actual < limit
          : actual > limit;
  return { id, label, comparison, limit, actual, unit, verdict: ok ? "PASS" : "OVER" };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const hi = sorted[mid] ?? Number.NaN;
  if (sorted.length % 2 === 1) return hi;
  return ((sorted[mid - 1] ?? hi) + hi) / 2;
}

/**
 * A benchmark case. `run` does the whole workload once and returns a value
 * derived from its results, so the work cannot be optimised away; `check`
 * throws when that value shows the case did the wrong thing.
 */
export interface Case {
  id: string;
  label: string;
  run(): number;
  check?(result: number): void;
}

export interface TimingOptions {
  warmup: number;
  reps: number;
  progress: (message: string) => void;
}

/**
 * Run every case `warmup` times untimed, then `reps` timed rounds. Cases are
 * interleaved (a, b, c, a, b, c, …) so drift in clock speed or heap state
 * spreads over all of them instead of biasing one.
 */
export function timeInterleaved(
  cases: readonly Case[],
  { warmup, reps, progress }: TimingOptions,
): Map<string, number[]> {
  const samples = new Map<string, number[]>(cases.map((c) => [c.id, []]));
  const rounds = warmup + reps;
  for (let round = 0; round < rounds; round++) {
    const timed = round >= warmup;
    for (const c of cases) {
      progress(
        timed
          ? `run ${round - warmup + 1}/${reps}: ${c.label}`
          : `warm-up ${round + 1}/${warmup}: ${c.label}`,
      );
      const start = performance.now();
      const result = c.run();
      const elapsed = performance.now() - start;
      c.check?.(result);
      if (timed) samples.get(c.id)?.push(elapsed);
    }
  }
  return samples;
}

/** Progress that rewrites one line on a terminal and prints plain lines otherwise. */
export function stderrProgress(): { progress: (message: string) => void; done: () => void } {
  const tty = process.stderr.isTTY === true;
  const started = performance.now();
  let shown = false;
  return {
    progress(message) {
      const line = `[${((performance.now() - started) / 1000).toFixed(1)}s] ${message}`;
      if (tty) {
        process.stderr.write(`\r\x1b[K${line}`);
        shown = true;
      } else {
        process.stderr.write(`${line}\n`);
      }
    },
    done() {
      if (tty && shown) process.stderr.write("\r\x1b[K");
    },
  };
}
