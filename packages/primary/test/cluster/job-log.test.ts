/**
 * The scale-out mode's job queue (cluster/job-log.ts) on a real nats-server:
 * the conformance suite every job queue backend passes, then what only the
 * shared log does (two primaries' replicas agree; a takeover applies once;
 * snapshots and the purge keep the log short).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import { type Clock, loadConfig, silentLogger } from "@picluster/common";
import { ManualClock, NO_NATS, startNatsCluster, waitFor } from "@picluster/common/testing";
import { JobLog } from "../../src/cluster/job-log.js";
import { connectNats } from "../../src/cluster/nats.js";
import type { Lease } from "../../src/jobs/queue.js";
import {
  type QueueHarness,
  queueConformance,
  type TestContext,
} from "../jobs/queue-conformance.js";

type NatsCluster = Awaited<ReturnType<typeof startNatsCluster>>;
let server: NatsCluster | undefined;
let streams = 0;

// One nats-server for the whole file, each test on a stream of its own; ended after the last test.
if (NO_NATS === undefined) {
  const stops: Array<() => void | Promise<void>> = [];
  before(async () => {
    server = await startNatsCluster({ after: (fn) => stops.push(fn) }, 1);
  });
  after(async () => {
    for (const stop of stops) await stop();
  });
}

function nats(): NatsCluster {
  if (server === undefined) throw new Error("the nats-server did not start");
  return server;
}

async function connect(t: TestContext, name: string): Promise<NatsConnection> {
  const { urls } = nats();
  const config = loadConfig({
    env: {},
    flags: { "cluster.nats": urls.join(",") },
    paths: { cwd: "/nonexistent", home: "/nonexistent", uid: 1000 },
  }).config.cluster;
  const nc = await connectNats(config, name);
  t.after(() => nc.close());
  return nc;
}

/** A job log on its own stream, replayed into a replica in a temp dir. */
async function openLog(
  t: TestContext,
  clock: Clock,
  stream: string,
  self: string,
  hooks: Partial<
    Pick<
      ConstructorParameters<typeof JobLog>[0],
      "onOwner" | "onCancelled" | "compactEvery" | "beforeFollow"
    >
  > = {},
): Promise<JobLog> {
  const dir = mkdtempSync(join(tmpdir(), "picluster-joblog-"));
  const log = new JobLog({
    replicaFile: join(dir, "replica.db"),
    clock,
    log: silentLogger(),
    stream,
    ...hooks,
  });
  t.after(async () => {
    await log.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  await log.attach(await connect(t, self), self, 1);
  return log;
}

/** A job of `count` items (0..count-1) in the log: its record, its queue, its items. */
async function newJob(log: JobLog, clock: Clock, count: number, retries: number): Promise<number> {
  const id = await log.records.insert({
    task: "echo",
    selector: "all",
    items: { count },
    args: {},
    retries,
    retryFailed: false,
    requestedBy: "test",
    createdAt: clock.now(),
    status: "running",
  } as Parameters<JobLog["records"]["insert"]>[0]);
  await log.queue.define(id, { retries });
  await log.queue.enqueue(
    id,
    Array.from({ length: count }, (_, i) => ({ index: i, value: i })),
  );
  return id;
}

if (NO_NATS === undefined) {
  queueConformance("jetstream", async (t, clock): Promise<QueueHarness> => {
    const stream = `picluster-jobs-test-${++streams}`;
    const first = await openLog(t, clock, stream, "p1");
    return {
      queue: first.queue,
      reopen: async () => (await openLog(t, clock, stream, "p1")).queue,
    };
  });
} else {
  test("job queue (jetstream) - conformance", { skip: NO_NATS }, () => {});
}

test("job log - two primaries' replicas agree item by item; each sees the other's claims, and a result is taken once", {
  skip: NO_NATS,
}, async (t) => {
  const clock = new ManualClock(1_000_000);
  const stream = `picluster-jobs-test-${++streams}`;
  const a = await openLog(t, clock, stream, "pa");
  const b = await openLog(t, clock, stream, "pb");
  const id = await newJob(a, clock, 100, 1);
  // Both primaries claim at once: the log orders them, every item goes to one node.
  const [fromA, fromB] = await Promise.all([
    a.queue.claim(id, "node-a", 60, 60_000),
    b.queue.claim(id, "node-b", 60, 60_000),
  ]);
  assert.equal(fromA.length + fromB.length, 100);
  const indexes = new Set([...fromA, ...fromB].map((i) => i.index));
  assert.equal(indexes.size, 100, "no item handed out twice");
  const ok = { exitCode: 0, signal: null, durationMs: 1, output: "x", truncated: false };
  // A answers b's first item too (a result relayed twice): applied once.
  const [first] = fromB;
  assert.ok(first);
  const [once, twice] = await Promise.all([
    a.queue.complete(first, ok),
    b.queue.complete(first, ok),
  ]);
  assert.equal([once, twice].filter((s) => s.applied).length, 1);
  await Promise.all([...fromA, ...fromB.slice(1)].map((item) => b.queue.complete(item, ok)));
  await waitFor(
    async () => (await a.queue.counts(id)).ok === 100,
    "a's replica has b's results",
    5_000,
  );
  assert.deepEqual(
    await a.queue.items(id, { limit: 200 }),
    await b.queue.items(id, { limit: 200 }),
  );
  assert.equal(a.records.get(id)?.task, "echo", "the record is in both replicas");
  assert.equal(b.records.get(id)?.task, "echo");
  assert.equal(a.owner(id), "pa");
  assert.equal(b.owns(id), false);
});

test("job log - the leader takes over a gone primary's job once; the owner hears a cancel made elsewhere", {
  skip: NO_NATS,
}, async (t) => {
  const clock = new ManualClock(1_000_000);
  const stream = `picluster-jobs-test-${++streams}`;
  const owners: Array<[string, number, string]> = [];
  const cancels: Array<[number, string, Lease[]]> = [];
  const a = await openLog(t, clock, stream, "pa", {
    onCancelled: (id, from, running) => cancels.push([id, from, running]),
  });
  const job = {
    task: "echo",
    selector: "all",
    items: { count: 2 },
    args: {},
    retries: 0,
    retryFailed: false,
    requestedBy: "test",
    createdAt: clock.now(),
    status: "running",
  } as Parameters<JobLog["records"]["insert"]>[0];
  const first = await a.records.insert(job);
  const second = await a.records.insert(job);
  assert.equal(second, first + 1, "ids are given in log order");
  for (const id of [first, second]) {
    await a.queue.define(id, { retries: 0 });
    await a.queue.enqueue(id, [
      { index: 0, value: 0 },
      { index: 1, value: 1 },
    ]);
  }
  const [out] = await a.queue.claim(first, "node-a", 1, 60_000);
  assert.ok(out);
  const b = await openLog(t, clock, stream, "pb", {
    onOwner: (id, owner) => owners.push(["pb", id, owner]),
  });
  const c = await openLog(t, clock, stream, "pc", {
    onOwner: (id, owner) => owners.push(["pc", id, owner]),
  });
  // Another primary cancels the first job: its owner is told which leases to stop.
  await b.queue.cancel(first);
  await waitFor(() => cancels.length === 1, "the owner heard the cancel", 5_000);
  assert.deepEqual(cancels[0], [
    first,
    "pb",
    [{ jobId: first, index: 0, attempt: 1, nodeId: "node-a" }],
  ]);
  // pa is gone: b and c both think they lead (a moment of overlap); one takeover applies.
  b.records.setStatus(first, "cancelled", clock.now());
  await waitFor(
    () =>
      b.records.get(first)?.status === "cancelled" && c.records.get(first)?.status === "cancelled",
    "the cancelled job's end is in both replicas",
    5_000,
  );
  b.adoptOrphans(new Set(["pb", "pc"]));
  c.adoptOrphans(new Set(["pb", "pc"]));
  await waitFor(
    () =>
      owners.filter(([at]) => at === "pb").length === 1 &&
      owners.filter(([at]) => at === "pc").length === 1,
    "both replicas applied the one takeover",
    5_000,
  );
  const newOwner = b.owner(second);
  assert.ok(newOwner === "pb" || newOwner === "pc");
  assert.equal(c.owner(second), newOwner, "the replicas agree who owns it");
  assert.deepEqual(
    owners.map(([, id, owner]) => [id, owner]),
    [
      [second, newOwner],
      [second, newOwner],
    ],
    "only the unfinished job is taken over, once",
  );
});

test("job log - compaction: the leader snapshots its replica and purges the log below the snapshot before; a primary started later loads the newest and replays only the rest; one that finds a hole reloads", {
  skip: NO_NATS,
}, async (t) => {
  const clock = new ManualClock(1_000_000);
  const stream = `picluster-jobs-test-${++streams}`;
  const a = await openLog(t, clock, stream, "pa", { compactEvery: 10 });
  const id = await newJob(a, clock, 40, 0);
  const ok = { exitCode: 0, signal: null, durationMs: 1, output: "x", truncated: false };
  /** One claim and one answer per message: `turns` messages each. */
  const work = async (turns: number) => {
    for (let i = 0; i < turns; i++) {
      const [item] = await a.queue.claim(id, "node-a", 1, 60_000);
      assert.ok(item, "an item is left to claim");
      await a.queue.complete(item, ok);
    }
  };
  const observer = await connect(t, "observer");
  const jsm = await jetstreamManager(observer);
  const state = async () => (await jsm.streams.info(stream)).state;

  assert.equal(await a.compact(), undefined, "not due before 10 messages");
  await work(5);
  const first = await a.compact();
  assert.equal(first, a.position().seq, "a snapshot at the last message applied");
  assert.equal((await state()).first_seq, 1, "the first snapshot purges nothing");
  await work(5);
  const second = await a.compact();
  assert.ok(second !== undefined && first !== undefined && second > first);
  const s = await state();
  assert.equal(s.first_seq, first + 1, "purged below the snapshot before the newest");
  assert.equal(s.last_seq, second);

  // A primary started now loads the newest snapshot and has nothing to replay.
  const b = await openLog(t, clock, stream, "pb");
  assert.deepEqual(b.position(), {
    seq: second,
    snapshotSeq: second,
    loadedAt: second,
    reloads: 0,
  });
  assert.equal(b.applied, 0, "no operation replayed");
  assert.deepEqual(
    await b.queue.items(id, { limit: 100 }),
    await a.queue.items(id, { limit: 100 }),
  );
  assert.deepEqual(await b.queue.counts(id), {
    total: 40,
    queued: 30,
    running: 0,
    ok: 10,
    failed: 0,
    cancelled: 0,
  });
  assert.equal(b.records.get(id)?.task, "echo");
  assert.equal(b.owner(id), "pa", "owners come with the snapshot");

  // One that loaded the second snapshot and reads the log only after two more and a purge past it.
  let c: JobLog | undefined;
  let fourth: number | undefined;
  const cStarted = openLog(t, clock, stream, "pc", {
    beforeFollow: async () => {
      if (fourth !== undefined) return; // the reload's own load
      await work(10);
      assert.ok((await a.compact()) !== undefined, "a third snapshot");
      await work(10);
      fourth = await a.compact();
      assert.ok(fourth !== undefined, "a fourth snapshot");
      await work(1);
    },
  });
  c = await cStarted;
  await work(2);
  await waitFor(
    async () => (await c?.queue.counts(id))?.ok === 33,
    "c follows after reloading",
    5_000,
  );
  const at = c.position();
  assert.equal(at.reloads, 1, "c found the hole and reloaded");
  assert.equal(at.loadedAt, fourth, "from the newest snapshot");
  assert.deepEqual(
    await c.queue.items(id, { limit: 100 }),
    await a.queue.items(id, { limit: 100 }),
  );
  await waitFor(async () => (await b.queue.counts(id)).ok === 33, "b followed all along", 5_000);
  assert.equal(b.position().reloads, 0);
  assert.deepEqual(
    await b.queue.items(id, { limit: 100 }),
    await a.queue.items(id, { limit: 100 }),
  );

  // The snapshot gone (picluster never does this): a primary starts from what the stream has,
  // says so, and does not reload for ever.
  await (await new Objm(observer).open(`${stream}-snap`)).delete("replica");
  const d = await openLog(t, clock, stream, "pd");
  const end = await state();
  assert.deepEqual(d.position(), { seq: end.last_seq, snapshotSeq: 0, loadedAt: 0, reloads: 0 });
  assert.ok(d.applied > 0, "what the stream had was applied");
});
