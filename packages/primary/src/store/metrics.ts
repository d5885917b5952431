/**
 * The figures kept over time for every node, each derived from a vitals
 * sample. One table of them drives the store's columns, the API's `metric=`
 * names and the charts; a metric a node does not report is NULL, not 0.
 */
import type { MessageMap } from "@picluster/common";

type Vitals = MessageMap["vitals"];

export interface MetricDef {
  /** API name and SQL column stem. */
  name: string;
  unit: string;
  doc: string;
  from(v: Vitals): number | undefined;
}

function pct(used: number, total: number): number | undefined {
  return total > 0 ? (used / total) * 100 : undefined;
}

function rootDisk(v: Vitals): number | undefined {
  const root = v.disks.find((d) => d.mount === "/") ?? v.disks[0];
  return root === undefined ? undefined : pct(root.usedBytes, root.sizeBytes);
}

function hottest(v: Vitals): number | undefined {
  if (v.temps.length === 0) return undefined;
  return Math.max(...v.temps.map((t) => t.celsius));
}

function sum<T>(items: readonly T[], f: (t: T) => number): number | undefined {
  return items.length === 0 ? undefined : items.reduce((acc, t) => acc + f(t), 0);
}

export const METRICS: readonly MetricDef[] = [
  { name: "cpu", unit: "%", doc: "CPU busy, all cores", from: (v) => v.cpu.total },
  { name: "load1", unit: "", doc: "1-minute load average", from: (v) => v.load?.[0] },
  { name: "temp", unit: "°C", doc: "hottest thermal zone", from: hottest },
  {
    name: "mem",
    unit: "%",
    doc: "memory used",
    from: (v) => pct(v.memory.usedBytes, v.memory.totalBytes),
  },
  {
    name: "swap",
    unit: "%",
    doc: "swap used",
    from: (v) => pct(v.swap.usedBytes, v.swap.totalBytes),
  },
  { name: "disk", unit: "%", doc: "root filesystem used", from: rootDisk },
  {
    name: "net_rx",
    unit: "B/s",
    doc: "received, all interfaces",
    from: (v) => sum(v.net, (n) => n.rxBps),
  },
  {
    name: "net_tx",
    unit: "B/s",
    doc: "sent, all interfaces",
    from: (v) => sum(v.net, (n) => n.txBps),
  },
  { name: "disk_read", unit: "B/s", doc: "read from disks", from: (v) => v.diskIo?.readBps },
  { name: "disk_write", unit: "B/s", doc: "written to disks", from: (v) => v.diskIo?.writeBps },
  { name: "freq", unit: "MHz", doc: "CPU frequency", from: (v) => v.freqMhz },
];

export const METRIC_NAMES = METRICS.map((m) => m.name);

export function isMetric(name: string): boolean {
  return METRIC_NAMES.includes(name);
}

/** The sample's figures in METRICS order (undefined → SQL NULL). */
export function metricValues(v: Vitals): Array<number | null> {
  return METRICS.map((m) => {
    const x = m.from(v);
    return x === undefined || !Number.isFinite(x) ? null : x;
  });
}
