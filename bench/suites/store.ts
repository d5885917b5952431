/**
 * `npm run bench -- store`: the SQLite store under load, in-process.
 *
 * 1. Ingest: N simulated agents (1 000 and 10 000), each with one sample in
 *    flight at a time (a sample is sent again as soon as the previous one is
 *    acknowledged, i.e. committed) — the most the store can take with
 *    ack-after-commit. Reports rows/s and the send-to-ack latency.
 * 2. A 24-hour chart of one node when the store holds 24 hours of 1-minute
 *    rollups for 10 000 nodes (14.4 M rows, written directly).
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { type MessageMap, silentLogger, systemClock } from "@picluster/common";
import { METRICS, type NodeRecord, Store } from "@picluster/primary";
import Database from "better-sqlite3";
import { budget, type SuiteContext, type SuiteReport } from "../harness.js";

const DAY = 86_400_000;

function node(id: string): NodeRecord {
  const now = Date.now();
  return {
    id,
    name: id,
    labels: {},
    address: "127.0.0.1:1",
    state: "alive",
    stateSince: now,
    stateReason: "bench",
    firstSeen: now,
    lastSeen: now,
    agentVersion: "bench",
    legacy: false,
    lastSeq: 0,
    dropped: 0,
  };
}

function sample(i: number): MessageMap["vitals"] {
  const busy = (i * 37) % 100;
  return {
    cpu: { total: busy, perCore: [busy, busy, busy, busy] },
    load: [busy / 50, 0.5, 0.4],
    freqMhz: 1500,
    temps: [{ zone: "thermal_zone0", type: "cpu-thermal", celsius: 40 + (busy % 20) }],
    rebootRequired: false,
    memory: { totalBytes: 4e9, usedBytes: 1e9 + busy * 1e6, availableBytes: 3e9 - busy * 1e6 },
    swap: { totalBytes: 1e8, usedBytes: 0 },
    disks: [{ mount: "/", usedBytes: 5e9, sizeBytes: 3e10 }],
    diskIo: { readBps: 0, writeBps: 4096 },
    net: [{ iface: "eth0", rxBps: 1000 + busy, txBps: 2000 }],
    uptimeS: 1000 + i,
    procs: 120,
  };
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

async function ingest(agents: number, seconds: number, ctx: SuiteContext) {
  const dir = mkdtempSync(join(tmpdir(), "picluster-bench-store-"));
  const store = new Store({
    file: join(dir, "bench.db"),
    clock: systemClock,
    log: silentLogger(),
    retention: { rawMs: 2 * DAY, minuteMs: 30 * DAY, hourMs: 365 * DAY },
  }).open();
  const nodes = Array.from({ length: agents }, (_, i) => node(`n${i}`));
  const latencies: number[] = [];
  let rows = 0;
  let running = true;
  const start = performance.now();
  const loop = async (n: NodeRecord) => {
    let seq = 0;
    while (running) {
      seq += 1;
      const sent = performance.now();
      await store.addVitals(n, Date.now(), seq, sample(seq));
      latencies.push(performance.now() - sent);
      rows += 1;
    }
  };
  ctx.progress(`store: ingest with ${agents} agents for ${seconds} s`);
  const loops = nodes.map((n) => loop(n));
  await new Promise((r) => setTimeout(r, seconds * 1000));
  running = false;
  const elapsed = (performance.now() - start) / 1000;
  store.flush();
  await Promise.all(loops);
  store.close();
  const size = statSync(join(dir, "bench.db")).size;
  rmSync(dir, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  return {
    agents,
    rowsPerSec: rows / elapsed,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    max: latencies.at(-1) ?? 0,
    rows,
    bytesPerRow: size / Math.max(1, rows),
  };
}

async function chart(nodes: number, ctx: SuiteContext) {
  const dir = mkdtempSync(join(tmpdir(), "picluster-bench-chart-"));
  const file = join(dir, "bench.db");
  const clockNow = Math.floor(Date.now() / 60_000) * 60_000;
  // Create the schema through the store, then fill rollups directly: 14.4 M rows through
  // the ingest path would take the whole bench budget, and the chart reads rollups only.
  new Store({
    file,
    clock: systemClock,
    log: silentLogger(),
    retention: { rawMs: 2 * DAY, minuteMs: 30 * DAY, hourMs: 365 * DAY },
  })
    .open()
    .close();
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = OFF");
  const cols = METRICS.map((m) => `${m.name}_min, ${m.name}_max, ${m.name}_sum, ${m.name}_n`).join(
    ", ",
  );
  const params = METRICS.map(() => "?, ?, ?, ?").join(", ");
  const insert = db.prepare(
    `INSERT INTO vitals_1m (node_id, bucket, samples, ${cols}) VALUES (?, ?, 6, ${params})`,
  );
  const values = METRICS.flatMap(() => [10, 30, 120, 6]);
  const minutes = 1440;
  const started = performance.now();
  for (let b = 0; b < minutes; b++) {
    db.transaction(() => {
      const bucket = clockNow - (minutes - b) * 60_000;
      for (let n = 0; n < nodes; n++) insert.run(`n${n}`, bucket, ...values);
    })();
    if (b % 240 === 0)
      ctx.progress(
        `store: filling 24 h of 1-minute rollups for ${nodes} nodes… ${Math.round((b / minutes) * 100)}%`,
      );
  }
  const fillSeconds = (performance.now() - started) / 1000;
  db.close();
  const store = new Store({
    file,
    clock: systemClock,
    log: silentLogger(),
    retention: { rawMs: 2 * DAY, minuteMs: 30 * DAY, hourMs: 365 * DAY },
  }).open();
  const times: number[] = [];
  let points = 0;
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    const s = store.series(`n${(i * 7919) % nodes}`, "cpu", clockNow - DAY, clockNow, 86_400);
    times.push(performance.now() - t0);
    points = s.points.length;
  }
  store.close();
  rmSync(dir, { recursive: true, force: true });
  times.sort((a, b) => a - b);
  return {
    nodes,
    rows: nodes * minutes,
    fillSeconds,
    p50: quantile(times, 0.5),
    max: times.at(-1) ?? 0,
    points,
  };
}

export async function runStore(ctx: SuiteContext): Promise<SuiteReport> {
  const seconds = ctx.quick ? 5 : 20;
  const runs = [];
  for (const agents of [1_000, 10_000]) runs.push(await ingest(agents, seconds, ctx));
  const q = await chart(ctx.quick ? 1_000 : 10_000, ctx);
  const best = Math.max(...runs.map((r) => r.rowsPerSec));
  return {
    suite: "store",
    description:
      "SQLite ingest with ack-after-commit, and a 24 h chart query over 10 000 nodes' rollups",
    parameters: { seconds, flushMs: 100, batchRows: 1_000, synchronous: "FULL" },
    measurements: [],
    ratios: [],
    budgets: [
      budget(
        "rows",
        "stored rows/s with ack-after-commit",
        ">=",
        50_000,
        Math.round(best),
        "rows/s",
      ),
    ],
    notes: [
      "each simulated agent keeps one sample in flight: the next is sent when the previous is acknowledged (committed)",
      `chart: ${q.rows.toLocaleString("en")} 1-minute rollup rows for ${q.nodes} nodes, written directly in ${q.fillSeconds.toFixed(0)} s`,
    ],
    tables: [
      {
        title: "ingest",
        columns: ["agents", "rows/s", "ack p50 ms", "ack p99 ms", "ack max ms", "bytes/row"],
        rows: runs.map((r) => [
          String(r.agents),
          Math.round(r.rowsPerSec).toLocaleString("en"),
          r.p50.toFixed(1),
          r.p99.toFixed(1),
          r.max.toFixed(1),
          r.bytesPerRow.toFixed(0),
        ]),
        numeric: [0, 1, 2, 3, 4, 5],
      },
      {
        title: "24 h chart of one node",
        columns: ["nodes in store", "points", "p50 ms", "max ms"],
        rows: [[String(q.nodes), String(q.points), q.p50.toFixed(2), q.max.toFixed(2)]],
        numeric: [0, 1, 2, 3],
      },
    ],
    data: { ingest: runs, chart: q },
  };
}
