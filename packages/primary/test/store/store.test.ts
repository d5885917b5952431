import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { type MessageMap, silentLogger } from "@picluster/common";
import { ManualClock, scratchDir } from "@picluster/common/testing";
import Database from "better-sqlite3";
import type { NodeRecord } from "../../src/registry.js";
import { MIGRATIONS, SCHEMA_VERSION } from "../../src/store/schema.js";
import { Store, StoreError } from "../../src/store/store.js";

const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);
const DAY = 86_400_000;

function node(id: string, lastSeq = 0): NodeRecord {
  return {
    id,
    name: id,
    labels: { rack: "a" },
    address: "10.0.0.1:5000",
    state: "alive",
    stateSince: T0,
    stateReason: "connected",
    firstSeen: T0,
    lastSeen: T0,
    agentVersion: "0.1.0",
    legacy: false,
    lastSeq,
    dropped: 0,
  };
}

function vitals(cpu: number, temp?: number): MessageMap["vitals"] {
  return {
    cpu: { total: cpu, perCore: [cpu] },
    load: [cpu / 100, 0, 0],
    temps: temp === undefined ? [] : [{ zone: "z0", type: "cpu-thermal", celsius: temp }],
    memory: { totalBytes: 1000, usedBytes: 250, availableBytes: 750 },
    swap: { totalBytes: 0, usedBytes: 0 },
    disks: [{ mount: "/", usedBytes: 30, sizeBytes: 100 }],
    net: [
      { iface: "eth0", rxBps: 10, txBps: 1 },
      { iface: "wlan0", rxBps: 5, txBps: 2 },
    ],
    diskIo: { readBps: 0, writeBps: 512 },
  };
}

function open(t: { after(fn: () => void): void }, clock = new ManualClock(T0)) {
  const dir = scratchDir(t, "picluster-store-");
  const file = join(dir, "picluster.db");
  const make = () =>
    new Store({
      file,
      clock,
      log: silentLogger(),
      retention: { rawMs: 2 * DAY, minuteMs: 30 * DAY, hourMs: 365 * DAY },
    }).open();
  const store = make();
  t.after(() => store.close());
  return { store, file, clock, make };
}

test("store - an empty file is migrated to the current schema; reopening changes nothing; a newer file is refused", (t) => {
  const { store, file, make } = open(t);
  store.close();
  const db = new Database(file, { readonly: true });
  assert.deepEqual(db.prepare("SELECT version FROM schema_version").all(), [
    { version: SCHEMA_VERSION },
  ]);
  assert.equal(
    (db.prepare("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode,
    "wal",
  );
  db.close();
  make().close();
  const rw = new Database(file);
  rw.prepare("UPDATE schema_version SET version = ?").run(SCHEMA_VERSION + 1);
  rw.close();
  assert.throws(
    () => make(),
    (err: unknown) => err instanceof StoreError && err.code === "E_STORE_VERSION",
  );
});

test("store - a sample's promise resolves only after its batch has committed, and the node row carries its seq", async (t) => {
  const { store, file, clock } = open(t);
  const n = node("n1");
  let committed = false;
  // As in the primary: the node's row comes with its join event.
  store.addEvent({ kind: "node.joined", at: T0, nodeId: "n1", name: "n1" }, n);
  const done = store.addVitals(n, T0 + 1_000, 7, vitals(40, 50)).then(() => {
    committed = true;
  });
  await Promise.resolve();
  assert.equal(committed, false, "nothing is acknowledged before the flush");
  const reader = new Database(file, { readonly: true });
  t.after(() => reader.close());
  assert.equal(
    (reader.prepare("SELECT count(*) AS c FROM vitals_raw").get() as { c: number }).c,
    0,
  );
  clock.advance(100);
  await done;
  assert.equal(committed, true);
  assert.deepEqual(
    reader
      .prepare(
        "SELECT node_id, seq, cpu, temp, mem, disk, net_rx, net_tx, swap, freq FROM vitals_raw",
      )
      .all(),
    [
      {
        node_id: "n1",
        seq: 7,
        cpu: 40,
        temp: 50,
        mem: 25,
        disk: 30,
        net_rx: 15,
        net_tx: 3,
        swap: null,
        freq: null,
      },
    ],
  );
  assert.equal(
    (reader.prepare("SELECT last_seq FROM nodes WHERE id = 'n1'").get() as { last_seq: number })
      .last_seq,
    7,
  );
});

test("store - 1 000 queued rows flush at once without waiting for the timer", async (t) => {
  const { store } = open(t);
  const n = node("n1");
  const all = Array.from({ length: 1_000 }, (_, i) =>
    store.addVitals(n, T0 + i * 10, i + 1, vitals(1)),
  );
  await Promise.all(all);
  assert.equal(store.series("n1", "cpu", T0, T0 + 20_000, 1_000).points.length, 10);
});

test("store - rollups keep min, average and max per minute and hour, skip what a node does not report, and absorb late samples", async (t) => {
  const { store, clock } = open(t);
  const n = node("n1");
  const writes = [
    store.addVitals(n, T0 + 1_000, 1, vitals(10, 40)),
    store.addVitals(n, T0 + 21_000, 2, vitals(30)),
    store.addVitals(n, T0 + 41_000, 3, vitals(50, 60)),
    store.addVitals(n, T0 + 61_000, 4, vitals(90, 70)),
  ];
  clock.advance(100);
  await Promise.all(writes);
  clock.advance(120_000);
  store.rollUp();
  const minute = store.series("n1", "cpu", T0, T0 + 120_000, 60_000);
  assert.equal(minute.resolution, "1m");
  assert.deepEqual(minute.points, [
    { ts: T0, avg: 30, min: 10, max: 50 },
    { ts: T0 + 60_000, avg: 90, min: 90, max: 90 },
  ]);
  const temp = store.series("n1", "temp", T0, T0 + 60_000, 60_000);
  assert.deepEqual(
    temp.points,
    [{ ts: T0, avg: 50, min: 40, max: 60 }],
    "a sample without a temperature is not a 0",
  );
  const hour = store.series("n1", "cpu", T0, T0 + 3_600_000, 3_600_000);
  assert.equal(hour.resolution, "1h");
  assert.deepEqual(hour.points, [{ ts: T0, avg: 45, min: 10, max: 90 }]);

  // A replayed sample for the first minute arrives late: the rollup follows.
  const late = store.addVitals(n, T0 + 59_000, 5, vitals(0));
  clock.advance(100);
  await late;
  store.rollUp();
  assert.deepEqual(store.series("n1", "cpu", T0, T0 + 60_000, 60_000).points, [
    { ts: T0, avg: 22.5, min: 0, max: 50 },
  ]);
});

test("store - series choose raw, 1-minute or 1-hour data by step and never return more than 1 000 points", async (t) => {
  const { store, clock } = open(t);
  const n = node("n1");
  const writes: Array<Promise<void>> = [];
  for (let i = 0; i < 3_000; i++)
    writes.push(store.addVitals(n, T0 + i * 1_000, i + 1, vitals(i % 100)));
  clock.advance(100);
  await Promise.all(writes);
  const raw = store.series("n1", "cpu", T0, T0 + 3_000_000, 1_000);
  assert.equal(raw.resolution, "raw");
  assert.ok(raw.points.length <= 1_000);
  assert.equal(raw.stepMs, 3_000, "a step too fine for 1 000 points is coarsened");
  assert.throws(
    () => store.series("n1", "cpu; DROP TABLE nodes", T0, T0 + 1, 1_000),
    (e: unknown) => e instanceof StoreError && e.code === "E_BAD_METRIC",
  );
  clock.advance(3 * DAY);
  assert.equal(
    store.series("n1", "cpu", T0, T0 + 3_000_000, 1_000).resolution,
    "1m",
    "raw data past its retention is not asked for",
  );
});

test("store - retention deletes old rows in small steps", async (t) => {
  const { store, clock, file } = open(t);
  const n = node("n1");
  const writes: Array<Promise<void>> = [];
  for (let i = 0; i < 5_000; i++) writes.push(store.addVitals(n, T0 + i * 10, i + 1, vitals(1)));
  writes.push(store.addVitals(n, T0 + 3 * DAY, 5_001, vitals(2)));
  clock.advance(100);
  await Promise.all(writes);
  clock.advance(3 * DAY + 60_000);
  store.prune();
  const reader = new Database(file, { readonly: true });
  t.after(() => reader.close());
  const count = () =>
    (reader.prepare("SELECT count(*) AS c FROM vitals_raw").get() as { c: number }).c;
  assert.equal(count(), 5_001 - 2_000, "one step deletes at most 2 000 rows");
  for (let i = 0; i < 10 && count() > 1; i++) await new Promise((r) => setImmediate(r));
  assert.equal(count(), 1, "only the recent sample is left");
});

test("store - events and nodes are kept and read back", async (t) => {
  const { store, clock, make } = open(t);
  const n = node("n1", 9);
  n.details = {
    hostname: "n1",
    os: { name: "Debian", version: "12" },
    kernel: "6.6",
    arch: "arm64",
    cpu: { model: "A72", cores: 4 },
    memory: { totalBytes: 1, swapBytes: 0 },
    disks: [],
    interfaces: [],
    agentVersion: "0.1.0",
    nodeVersion: "v20",
  };
  store.addEvent(
    {
      kind: "node.state",
      at: T0,
      nodeId: "n1",
      name: "n1",
      from: "alive",
      to: "down",
      reason: "connection lost",
    },
    n,
  );
  store.addEvent(
    {
      kind: "node.throttling",
      at: T0 + 5,
      nodeId: "n1",
      name: "n1",
      flag: "underVoltage",
      on: true,
    },
    n,
  );
  clock.advance(100);
  const events = store.events({ limit: 10 });
  assert.deepEqual(
    events.map((e) => [e.kind, e.nodeId, e.ts]),
    [
      ["node.throttling", "n1", T0 + 5],
      ["node.state", "n1", T0],
    ],
  );
  assert.equal(events[1]?.data.reason, "connection lost");
  assert.equal(store.events({ kind: "node.state", limit: 10 }).length, 1);
  assert.equal(store.events({ node: "other", limit: 10 }).length, 0);
  assert.equal(store.events({ afterId: events[1]?.id, limit: 10 }).length, 1);
  store.close();
  const again = make();
  t.after(() => again.close());
  const [loaded] = again.loadNodes();
  assert.equal(loaded?.lastSeq, 9);
  assert.deepEqual(loaded?.labels, { rack: "a" });
  assert.equal(loaded?.details?.cpu.model, "A72");
});

test("store - every earlier schema version migrates to the current one, keeping its rows", (t) => {
  for (let from = 1; from < SCHEMA_VERSION; from++) {
    const dir = scratchDir(t, "picluster-migrate-");
    const file = join(dir, "picluster.db");
    // The file as version `from` left it, with a node and a sample in it.
    const old = new Database(file);
    old.exec("CREATE TABLE schema_version (version INTEGER NOT NULL)");
    for (const sql of MIGRATIONS.slice(0, from)) old.exec(sql);
    old.prepare("INSERT INTO schema_version (version) VALUES (?)").run(from);
    old
      .prepare(
        "INSERT INTO nodes VALUES ('n1', 'pi-01', '{}', '10.0.0.1', 'alive', 1, '', 1, 1, '0.1.0', 0, NULL, NULL, NULL, 7, 0)",
      )
      .run();
    old.prepare("INSERT INTO vitals_raw (node_id, seq, ts) VALUES ('n1', 7, 1000)").run();
    old.close();

    const store = new Store({
      file,
      clock: new ManualClock(T0),
      log: silentLogger(),
      retention: { rawMs: 2 * DAY, minuteMs: 30 * DAY, hourMs: 365 * DAY },
    }).open();
    const loaded = store.loadNodes();
    store.close();
    assert.equal(loaded.length, 1, `v${from}: the node survives`);
    assert.equal(loaded[0]?.lastSeq, 7, `v${from}: and its last seq`);
    const db = new Database(file, { readonly: true });
    assert.deepEqual(db.prepare("SELECT version FROM schema_version").all(), [
      { version: SCHEMA_VERSION },
    ]);
    assert.equal(
      (db.prepare("SELECT count(*) AS n FROM vitals_raw").get() as { n: number }).n,
      1,
      `v${from}: the sample survives`,
    );
    db.close();
  }
});

test("store - a closed store refuses every read and write with E_STORE_CLOSED instead of answering nothing", async (t) => {
  const { store } = open(t);
  store.close();
  const closed = (err: unknown) => err instanceof StoreError && err.code === "E_STORE_CLOSED";
  assert.throws(() => store.events({ limit: 10 }), closed, "events");
  assert.throws(() => store.loadNodes(), closed, "loadNodes");
  assert.throws(() => store.eventsAfter(0, 10), closed, "eventsAfter");
  assert.throws(() => store.series("n1", "cpu", T0 - 60_000, T0, 1_000), closed, "series");
  assert.throws(() => store.taskRuns(5), closed, "taskRuns");
  assert.throws(() => store.lastStoredSeq("n1"), closed, "lastStoredSeq");
  assert.throws(() => store.removeNode("n1", { keepHistory: false }), closed, "removeNode");
  await assert.rejects(store.addVitals(node("n1"), T0, 1, vitals(10)), closed, "addVitals");
});

test("store - a node's own series: stored once per sample, rolled up like the vitals, listed, pruned and forgotten with the node", async (t) => {
  const { store, clock, file } = open(t);
  const n = node("n1");
  const withCustom = (cpu: number, depth: number, wear?: number) => ({
    ...vitals(cpu),
    custom: [
      { series: "queue_depth", value: depth },
      ...(wear === undefined ? [] : [{ series: 'disk_wear{disk="sda"}', value: wear }]),
    ],
  });
  const writes = [
    store.addVitals(n, T0 + 1_000, 1, withCustom(10, 4, 7)),
    store.addVitals(n, T0 + 21_000, 2, withCustom(10, 8)),
    store.addVitals(n, T0 + 61_000, 3, withCustom(10, 30, 8)),
    // A replay of seq 2 (its ack was lost): no second copy of its series.
    store.addVitals(n, T0 + 21_000, 2, withCustom(10, 999)),
  ];
  clock.advance(100);
  await Promise.all(writes);
  assert.deepEqual(
    store.series("n1", "custom.queue_depth", T0, T0 + 120_000, 1_000).points.map((p) => p.max),
    [4, 8, 30],
  );
  clock.advance(120_000);
  store.rollUp();
  const minute = store.series("n1", "custom.queue_depth", T0, T0 + 120_000, 60_000);
  assert.equal(minute.resolution, "1m");
  assert.deepEqual(minute.points, [
    { ts: T0, avg: 6, min: 4, max: 8 },
    { ts: T0 + 60_000, avg: 30, min: 30, max: 30 },
  ]);
  const hour = store.series("n1", 'custom.disk_wear{disk="sda"}', T0, T0 + 3_600_000, 3_600_000);
  assert.deepEqual(hour.points, [{ ts: T0, avg: 7.5, min: 7, max: 8 }]);
  assert.deepEqual(store.customSeries("n1", T0), ['disk_wear{disk="sda"}', "queue_depth"]);
  assert.deepEqual(store.series("n1", "custom.nothing_here", T0, T0 + 60_000, 1_000).points, []);

  const reader = new Database(file, { readonly: true });
  t.after(() => reader.close());
  const rows = (table: string) =>
    (reader.prepare(`SELECT count(*) AS c FROM ${table}`).get() as { c: number }).c;
  assert.equal(rows("custom_raw"), 5);
  // Past raw retention (2 days here): the raw rows go, the rollups stay.
  clock.advance(3 * DAY);
  store.prune();
  for (let i = 0; i < 10 && rows("custom_raw") > 0; i++) await new Promise((r) => setImmediate(r));
  assert.equal(rows("custom_raw"), 0);
  assert.equal(rows("custom_1m"), 4, "two series, two minutes");
  store.removeNode("n1", { keepHistory: false });
  assert.equal(rows("custom_1m") + rows("custom_1h"), 0);
});

test("store - imported rows of a node's own series are stored once, next to what the store has, and a malformed row is skipped, not fatal", (t) => {
  const { store } = open(t);
  assert.equal(
    store.importCustom("custom_raw", "n1", [
      ["queue_depth", T0, 4],
      ["queue_depth", T0 + 10_000, 6],
      [42, T0, 1],
      ["queue_depth", T0 + 20_000, null],
      ["queue_depth", "yesterday", 1],
    ]),
    2,
  );
  // Again: nothing new.
  assert.equal(store.importCustom("custom_raw", "n1", [["queue_depth", T0, 99]]), 0);
  assert.deepEqual(
    store.series("n1", "custom.queue_depth", T0, T0 + 60_000, 1_000).points.map((p) => p.max),
    [4, 6],
  );
  const monthAgo = T0 - 30 * DAY;
  assert.equal(
    store.importCustom("custom_1h", "n1", [
      ["queue_depth", monthAgo, 1, 9, 50, 10],
      ["queue_depth", monthAgo + 3_600_000, 1, 9, 50],
    ]),
    1,
  );
  const hour = store.series("n1", "custom.queue_depth", monthAgo, monthAgo + 3_600_000, 3_600_000);
  assert.deepEqual(hour.points, [{ ts: monthAgo, avg: 5, min: 1, max: 9 }]);
});
