/**
 * The cluster's cores and memory, each machine counted once. A tutorial
 * node often runs on a machine that also has our agent (the tutorial's
 * script left running beside it, or tried out on the primary's own box):
 * counted twice, a 2-core, 24 GiB machine would read "4 cores, 47 GiB". So
 * a tutorial node adds nothing when its host name is an agent node's (its
 * name or reported host name), or when it connects from the same address
 * as one. Agent nodes are always counted: each is a machine of its own.
 */
import type { NodeRecord } from "./registry.js";

/** `10.0.0.7:4000`, `::ffff:10.0.0.7:4000`, `::1:4000` → the address without the port. */
function hostOf(address: string): string {
  const ip = address.slice(0, Math.max(0, address.lastIndexOf(":")));
  return ip.startsWith("::ffff:") ? ip.slice(7) : ip;
}

export interface ClusterTotals {
  totals: { cores: number; memoryBytes: number };
  /** Tutorial nodes left out of the totals as the same machine as an agent node. */
  sameMachine: number;
}

export function clusterTotals(nodes: readonly NodeRecord[]): ClusterTotals {
  const agents = nodes.filter((n) => !n.legacy);
  const names = new Set(
    agents.flatMap((n) => [n.name, n.details?.hostname ?? ""].filter((x) => x !== "")),
  );
  const hosts = new Set(agents.map((n) => hostOf(n.address)).filter((h) => h !== ""));
  let cores = 0;
  let memoryBytes = 0;
  let sameMachine = 0;
  for (const n of nodes) {
    if (n.legacy && (names.has(n.name) || hosts.has(hostOf(n.address)))) {
      sameMachine += 1;
      continue;
    }
    cores += n.details?.cpu.cores ?? 0;
    memoryBytes += n.details?.memory.totalBytes ?? 0;
  }
  return { totals: { cores, memoryBytes }, sameMachine };
}
