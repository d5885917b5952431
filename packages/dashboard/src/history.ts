/**
 * The cluster as a whole: totals of the live picture, and those totals over
 * time as this page saw them on the stream since it opened (the primary
 * keeps no cluster-wide series; each node's own history is on its page).
 */
import type { NodeState } from "./api.js";
import type { LiveNode } from "./live-node.js";

export interface ClusterTotals {
  nodes: number;
  byState: Record<NodeState, number>;
  /** Of the alive nodes that sent their details. */
  cores: number;
  /** Of the alive nodes that sent a memory figure and their details. */
  memUsedBytes: number;
  memTotalBytes: number;
  /** Average CPU of the alive nodes that sent a figure. */
  cpu: number | null;
}

export function clusterTotals(nodes: Iterable<LiveNode>): ClusterTotals {
  const byState: Record<NodeState, number> = { alive: 0, suspect: 0, down: 0, left: 0 };
  let count = 0;
  let cores = 0;
  let memUsedBytes = 0;
  let memTotalBytes = 0;
  let cpuSum = 0;
  let cpuCount = 0;
  for (const n of nodes) {
    count++;
    byState[n.view.state]++;
    if (n.view.state !== "alive") continue;
    cores += n.cores ?? 0;
    const { cpu, mem } = n.figures;
    if (cpu !== null) {
      cpuSum += cpu;
      cpuCount++;
    }
    if (mem !== null && n.memoryBytes !== null) {
      memUsedBytes += (mem / 100) * n.memoryBytes;
      memTotalBytes += n.memoryBytes;
    }
  }
  return {
    nodes: count,
    byState,
    cores,
    memUsedBytes,
    memTotalBytes,
    cpu: cpuCount === 0 ? null : cpuSum / cpuCount,
  };
}

/** An hour at one point a second: the stream's vitals batch comes once a second. */
const MAX_POINTS = 3_600;
/** A point closer than this to the last replaces it (a state change just after a batch). */
const MIN_GAP_MS = 500;

/** Columns as uPlot draws them: time in seconds, CPU %, memory %, nodes alive. */
export class ClusterHistory {
  readonly ts: number[] = [];
  readonly cpu: Array<number | null> = [];
  readonly mem: Array<number | null> = [];
  readonly alive: number[] = [];
  private lastMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly maxPoints = MAX_POINTS) {}

  get length(): number {
    return this.ts.length;
  }

  add(atMs: number, t: ClusterTotals): void {
    const mem = t.memTotalBytes > 0 ? (t.memUsedBytes / t.memTotalBytes) * 100 : null;
    if (atMs - this.lastMs < MIN_GAP_MS && this.ts.length > 0) {
      const i = this.ts.length - 1;
      this.cpu[i] = t.cpu;
      this.mem[i] = mem;
      this.alive[i] = t.byState.alive;
      return;
    }
    this.lastMs = atMs;
    this.ts.push(atMs / 1000);
    this.cpu.push(t.cpu);
    this.mem.push(mem);
    this.alive.push(t.byState.alive);
    if (this.ts.length > this.maxPoints) {
      this.ts.shift();
      this.cpu.shift();
      this.mem.shift();
      this.alive.shift();
    }
  }
}
