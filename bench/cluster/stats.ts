/** Small figures the cluster suite needs: spreads of latencies, /proc readings, waiting. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import type { Spread } from "./ipc.js";

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

export function spread(values: readonly number[]): Spread {
  const sorted = Float64Array.from(values).sort();
  const arr = Array.from(sorted);
  return {
    count: arr.length,
    p50: percentile(arr, 0.5),
    p99: percentile(arr, 0.99),
    max: arr[arr.length - 1] ?? Number.NaN,
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** CPU time from /proc/<pid>/stat (or /proc/<pid>/task/<tid>/stat), in clock ticks. */
export interface ProcTicks {
  user: number;
  system: number;
  /** cutime + cstime: children it waited for (a collector spawning commands shows here). */
  children: number;
}

/** The process's ticks, or one thread's when `tid` is given (the main thread's tid is the pid). */
export function readProcTicks(pid: number, tid?: number): ProcTicks {
  const path = tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`;
  const stat = readFileSync(path, "utf8");
  // comm (field 2) may hold spaces and parentheses: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state); utime, stime, cutime, cstime are fields 14–17.
  const at = (field: number) => Number(fields[field - 3]);
  return { user: at(14), system: at(15), children: at(16) + at(17) };
}

/** VmRSS and VmHWM from /proc/<pid>/status, in bytes. */
export function readProcRss(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status);
    if (m === null) throw new Error(`/proc/${pid}/status has no ${name}`);
    return Number(m[1]) * 1024;
  };
  return { rss: kib("VmRSS"), hwm: kib("VmHWM") };
}

/** Clock ticks per second (USER_HZ), for /proc/<pid>/stat times. */
export function clockTicksPerSecond(): number {
  const text = execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8", timeout: 5_000 });
  const hz = Number(text.trim());
  if (!Number.isInteger(hz) || hz <= 0) throw new Error(`getconf CLK_TCK said "${text.trim()}"`);
  return hz;
}

export const MIB = 1024 * 1024;
