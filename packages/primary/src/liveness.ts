/**
 * Turns silence into state: a watched node that has sent nothing for
 * suspect_after is `suspect`, for dead_after `down`. One sweep over the
 * watched nodes every SWEEP interval (a tenth of suspect_after, at most
 * 100 ms) keeps detection within that margin of the thresholds without a
 * timer per node; 10 000 nodes cost 10 000 comparisons per sweep.
 */
import type { Clock } from "@picluster/common";
import type { Registry } from "./registry.js";

export const MAX_SWEEP_MS = 100;

export interface LivenessOptions {
  registry: Registry;
  clock: Clock;
  suspectAfterMs: number;
  deadAfterMs: number;
}

export class LivenessDetector {
  /** Watched node ids and their threshold scale (legacy nodes beat slower). */
  private readonly watched = new Map<string, number>();
  readonly sweepMs: number;

  constructor(private readonly opts: LivenessOptions) {
    this.sweepMs = Math.max(1, Math.min(MAX_SWEEP_MS, Math.floor(opts.suspectAfterMs / 10)));
  }

  start(signal: AbortSignal): void {
    if (signal.aborted) return;
    const stop = this.opts.clock.every(this.sweepMs, () => this.sweep());
    signal.addEventListener("abort", stop, { once: true });
  }

  /** Watch a connected node; `scale` multiplies both thresholds. */
  watch(id: string, scale = 1): void {
    this.watched.set(id, scale);
  }

  unwatch(id: string): void {
    this.watched.delete(id);
  }

  sweep(): void {
    const now = this.opts.clock.now();
    const { registry, suspectAfterMs, deadAfterMs } = this.opts;
    for (const [id, scale] of this.watched) {
      const node = registry.get(id);
      if (node === undefined) continue;
      const silentMs = now - node.lastSeen;
      if (silentMs >= deadAfterMs * scale) {
        if (node.state === "alive" || node.state === "suspect") {
          registry.setState(id, "down", `silent for ${(silentMs / 1000).toFixed(1)} s`, now);
        }
      } else if (silentMs >= suspectAfterMs * scale && node.state === "alive") {
        registry.setState(id, "suspect", `silent for ${(silentMs / 1000).toFixed(1)} s`, now);
      }
    }
  }
}
