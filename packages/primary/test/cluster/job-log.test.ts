/**
 * The scale-out mode's job queue (cluster/job-log.ts) on a real nats-server:
 * the conformance suite every job queue backend passes, then what only the
 * shared log does (two primaries' replicas agree; a takeover applies once).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
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
  hooks: Partial<Pick<ConstructorParameters<typeof JobLog>[0], "onOwner" | "onCancelled">> = {},
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
  const id = await a.records.insert({
    task: "echo",
    selector: "all",
    items: { count: 100 },
    args: {},
    retries: 1,
    retryFailed: false,
    requestedBy: "test",
    createdAt: clock.now(),
    status: "running",
  } as Parameters<JobLog["records"]["insert"]>[0]);
  await a.queue.define(id, { retries: 1 });
  await a.queue.enqueue(
    id,
    Array.from({ length: 100 }, (_, i) => ({ index: i, value: i })),
  );
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
