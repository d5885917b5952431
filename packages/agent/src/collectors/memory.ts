/** Memory and swap from proc/meminfo (kB values, as the kernel prints them). */
import type { CollectorContext } from "./context.js";
import { CollectorError, colonPairs, fullPath } from "./read.js";

export const MEMINFO = "proc/meminfo";

export interface MemInfo {
  totalBytes: number;
  availableBytes: number;
  swapTotalBytes: number;
  swapFreeBytes: number;
}

export function parseMeminfo(ctx: CollectorContext, text: string): MemInfo {
  const kb = new Map<string, number>();
  for (const [key, value] of colonPairs(text)) {
    const n = Number(value.replace(/\s*kB$/, ""));
    if (Number.isSafeInteger(n) && n >= 0) kb.set(key, n);
  }
  const bytes = (key: string): number => {
    const n = kb.get(key);
    if (n === undefined) {
      throw new CollectorError(fullPath(ctx, MEMINFO), `no "${key}" line with a kB count`);
    }
    return n * 1024;
  };
  const totalBytes = bytes("MemTotal");
  // MemAvailable appeared in Linux 3.14; before it, free + buffers + page cache
  // is the usual estimate.
  const availableBytes = kb.has("MemAvailable")
    ? bytes("MemAvailable")
    : bytes("MemFree") + bytes("Buffers") + bytes("Cached");
  return {
    totalBytes,
    availableBytes: Math.min(availableBytes, totalBytes),
    // A kernel built without swap prints no Swap lines at all.
    swapTotalBytes: kb.has("SwapTotal") ? bytes("SwapTotal") : 0,
    swapFreeBytes: kb.has("SwapFree") ? bytes("SwapFree") : 0,
  };
}
