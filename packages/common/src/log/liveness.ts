/**
 * The tutorial's first step: prove the process is alive by logging on a
 * fixed interval. Each `alive` record carries uptime, pid, RSS and a counter
 * so a gap or a restart is visible in the file alone.
 */
import type { Clock } from "../clock.js";
import type { Logger } from "./logger.js";

export const DEFAULT_LIVENESS_INTERVAL_MS = 10_000;

export interface LivenessOptions {
  log: Logger;
  clock: Clock;
  intervalMs?: number;
  /** Stops the records when aborted. */
  signal: AbortSignal;
  /** Resident set size in bytes; injected for tests. */
  rss?: () => number;
  /** Process uptime in seconds; injected for tests. */
  uptime?: () => number;
}

export function startLiveness(opts: LivenessOptions): void {
  if (opts.signal.aborted) return;
  const rss = opts.rss ?? (() => process.memoryUsage.rss());
  const uptime = opts.uptime ?? (() => process.uptime());
  let count = 0;
  const stop = opts.clock.every(opts.intervalMs ?? DEFAULT_LIVENESS_INTERVAL_MS, () => {
    count += 1;
    opts.log.info("alive", {
      count,
      uptime_s: Math.round(uptime()),
      pid: process.pid,
      rss_bytes: rss(),
    });
  });
  opts.signal.addEventListener("abort", stop, { once: true });
}
