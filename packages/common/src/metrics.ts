/**
 * The figures kept over time for every node: one list for the store's
 * columns, the API's `metric=` names, the alert rules, the CLI's sparklines
 * and the dashboard's charts. How each is taken from a vitals sample is the
 * primary's (store/metrics.ts); a metric a node does not report is null.
 */
export const STORED_METRICS = [
  { name: "cpu", unit: "%", doc: "CPU busy, all cores" },
  { name: "load1", unit: "", doc: "1-minute load average" },
  { name: "temp", unit: "°C", doc: "hottest thermal zone" },
  { name: "mem", unit: "%", doc: "memory used" },
  { name: "swap", unit: "%", doc: "swap used" },
  { name: "disk", unit: "%", doc: "root filesystem used" },
  { name: "net_rx", unit: "B/s", doc: "received, all interfaces" },
  { name: "net_tx", unit: "B/s", doc: "sent, all interfaces" },
  { name: "disk_read", unit: "B/s", doc: "read from disks" },
  { name: "disk_write", unit: "B/s", doc: "written to disks" },
  { name: "freq", unit: "MHz", doc: "CPU frequency" },
] as const;

export type MetricName = (typeof STORED_METRICS)[number]["name"];

export const METRIC_NAMES: readonly MetricName[] = STORED_METRICS.map((m) => m.name);

export function isMetricName(name: string): name is MetricName {
  return (METRIC_NAMES as readonly string[]).includes(name);
}
