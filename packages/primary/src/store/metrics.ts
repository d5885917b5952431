/**
 * The figures kept over time for every node, each derived from a vitals
 * sample. One table of them drives the store's columns, the API's `metric=`
 * names and the charts; a metric a node does not report is NULL, not 0.
 */
import {
  isMetricName,
  METRIC_NAMES,
  type MessageMap,
  type MetricName,
  STORED_METRICS,
} from "@picluster/common";

type Vitals = MessageMap["vitals"];

export interface MetricDef {
  /** API name and SQL column stem. */
  name: MetricName;
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

/** How each metric is taken from a sample; the compiler wants one for every name. */
const FROM: Record<MetricName, (v: Vitals) => number | undefined> = {
  cpu: (v) => v.cpu.total,
  load1: (v) => v.load?.[0],
  temp: hottest,
  mem: (v) => pct(v.memory.usedBytes, v.memory.totalBytes),
  swap: (v) => pct(v.swap.usedBytes, v.swap.totalBytes),
  disk: rootDisk,
  net_rx: (v) => sum(v.net, (n) => n.rxBps),
  net_tx: (v) => sum(v.net, (n) => n.txBps),
  disk_read: (v) => v.diskIo?.readBps,
  disk_write: (v) => v.diskIo?.writeBps,
  freq: (v) => v.freqMhz,
};

export const METRICS: readonly MetricDef[] = STORED_METRICS.map((m) => ({
  ...m,
  from: FROM[m.name],
}));

export { METRIC_NAMES };

export function isMetric(name: string): name is MetricName {
  return isMetricName(name);
}

/** The sample's figures in METRICS order (undefined → SQL NULL). */
export function metricValues(v: Vitals): Array<number | null> {
  return METRICS.map((m) => {
    const x = m.from(v);
    return x === undefined || !Number.isFinite(x) ? null : x;
  });
}
