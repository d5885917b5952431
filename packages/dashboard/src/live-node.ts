/** A node as the page holds it (live.ts keeps them; tiles, rows and totals read them). */
import type { Figures, NodeView, Throttling } from "./api.js";

export interface LiveNode {
  view: NodeView;
  figures: Figures;
  uptimeS: number | null;
  uptimeAt: number;
  /** When the primary last heard from it, as far as the page knows. */
  seenAt: number;
  throttling: Throttling | null;
  cores: number | null;
  memoryBytes: number | null;
  /** Last CPU figures, oldest first, at most HISTORY. */
  cpuHistory: number[];
  /** Bumped whenever this node changes: its tile re-renders only then (and on the clock). */
  rev: number;
}
