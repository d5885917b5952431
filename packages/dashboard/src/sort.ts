/** How the cluster's nodes are ordered, in the tiles and the table alike. */
import type { NodeState } from "./api.js";
import type { LiveNode } from "./live.js";

export type SortKey = "name" | "state" | "cpu" | "mem" | "disk" | "temp" | "load" | "uptime";
export interface Sort {
  key: SortKey;
  desc: boolean;
}

/** Each key's first order: names A to Z, the worst state first, the highest figure first. */
export const SORT_KEYS: ReadonlyArray<{ key: SortKey; label: string; desc: boolean }> = [
  { key: "name", label: "name", desc: false },
  { key: "state", label: "state", desc: false },
  { key: "cpu", label: "CPU", desc: true },
  { key: "mem", label: "memory", desc: true },
  { key: "disk", label: "disk", desc: true },
  { key: "temp", label: "temperature", desc: true },
  { key: "load", label: "load", desc: true },
  { key: "uptime", label: "uptime", desc: true },
];

export function firstSort(key: SortKey): Sort {
  return { key, desc: SORT_KEYS.find((k) => k.key === key)?.desc ?? false };
}

const STATE_ORDER: Record<NodeState, number> = { down: 0, suspect: 1, left: 2, alive: 3 };

function value(n: LiveNode, key: SortKey): number | null {
  switch (key) {
    case "state":
      return STATE_ORDER[n.view.state];
    case "cpu":
      return n.figures.cpu;
    case "mem":
      return n.figures.mem;
    case "disk":
      return n.figures.disk;
    case "temp":
      return n.figures.temp;
    case "load":
      return n.figures.load1;
    case "uptime":
      return n.uptimeS;
    case "name":
      return null;
  }
}

const byName = (a: LiveNode, b: LiveNode) =>
  a.view.name.localeCompare(b.view.name, "en", { numeric: true });

/** A comparator for `sort`: a node without the figure goes last either way; ties by name. */
export function sorter({ key, desc }: Sort): (a: LiveNode, b: LiveNode) => number {
  const sign = desc ? -1 : 1;
  if (key === "name") return (a, b) => sign * byName(a, b);
  return (a, b) => {
    const x = value(a, key);
    const y = value(b, key);
    if (x === null || y === null) return x === y ? byName(a, b) : x === null ? 1 : -1;
    return x === y ? byName(a, b) : sign * (x - y);
  };
}
