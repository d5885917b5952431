/** The primary's HTTP API as the page uses it: JSON reads and the live event stream. */

export type NodeState = "alive" | "suspect" | "down" | "left";

export interface Vitals {
  cpu: { total: number; perCore: number[] };
  load?: [number, number, number];
  temps: Array<{ zone: string; type: string; celsius: number }>;
  memory: { totalBytes: number; usedBytes: number; availableBytes: number };
  swap: { totalBytes: number; usedBytes: number };
  disks: Array<{ mount: string; usedBytes: number; sizeBytes: number }>;
  net: Array<{ iface: string; rxBps: number; txBps: number }>;
  throttling?: {
    underVoltage: boolean;
    throttled: boolean;
    freqCapped: boolean;
    softTempLimit: boolean;
  };
  uptimeS?: number;
  freqMhz?: number;
}

export interface Details {
  hostname: string;
  os: { name: string; version: string };
  kernel: string;
  arch: string;
  cpu: { model: string; cores: number; minMhz?: number; maxMhz?: number };
  memory: { totalBytes: number; swapBytes: number };
  disks: Array<{ mount: string; fs: string; sizeBytes: number }>;
  interfaces: Array<{ name: string; mac: string; addresses: string[] }>;
  bootTime?: number;
  agentVersion: string;
  nodeVersion: string;
  board?: { model: string; serial: string; revision: string };
  tasks?: Array<{ name: string; description: string; disruptive: boolean }>;
  updates?: { available: number; checkedAt: number };
}

export interface NodeView {
  id: string;
  name: string;
  state: NodeState;
  stateSince: number;
  stateReason: string;
  labels: Record<string, string>;
  address: string;
  legacy: boolean;
  agentVersion: string;
  vitalsAt: number | null;
  vitals: Vitals | null;
  details?: Details | null;
}

export interface StoredEvent {
  id: number;
  ts: number;
  kind: string;
  nodeId: string | null;
  data: Record<string, unknown>;
}

export interface SeriesPoint {
  ts: number;
  avg: number | null;
  min: number | null;
  max: number | null;
}

export async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: { accept: "application/json" } });
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { error?: { message?: string } };
    throw new Error(body.error?.message ?? `${res.status} from ${path}`);
  }
  return (await res.json()) as T;
}

/** The figures a tile shows, from a node's raw vitals or from a stream batch. */
export interface Figures {
  cpu: number | null;
  temp: number | null;
  mem: number | null;
  disk: number | null;
}
