/**
 * What every job queue backend must do (src/jobs/queue.ts), as one suite:
 * `queueConformance("sqlite", factory)` registers its tests. A JetStream
 * backend passes the same suite with its own factory.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Clock, JsonValue } from "@picluster/common";
import { ManualClock } from "@picluster/common/testing";
import type { ClaimedItem, ItemResult, JobQueue, QueueItem } from "../../src/jobs/queue.js";

export interface TestContext {
  after(fn: () => void | Promise<void>): void;
}

export interface QueueHarness {
  queue: JobQueue;
  /** The same backend as a new process would open it: only what was committed is there. */
  reopen(): Promise<JobQueue>;
}

/** Makes an empty backend on `clock`; registers its own teardown on `t`. */
export type QueueFactory = (t: TestContext, clock: Clock) => Promise<QueueHarness>;

const LEASE_MS = 60_000;

function items(n: number, from = 0): QueueItem[] {
  return Array.from({ length: n }, (_, i) => ({ index: from + i, value: { n: from + i } }));
}

function ok(output = "done"): ItemResult {
  return { exitCode: 0, signal: null, durationMs: 5, output, truncated: false };
}

function exit(code: number): ItemResult {
  return { exitCode: code, signal: null, durationMs: 5, output: "broken", truncated: false };
}

/** The counts agree with the items themselves, state by state. */
async function assertConsistent(queue: JobQueue, jobId: number): Promise<void> {
  const all = await queue.items(jobId, { limit: 1_000_000 });
  const tally = { total: all.length, queued: 0, running: 0, ok: 0, failed: 0, cancelled: 0 };
  for (const item of all) tally[item.state === "cancelling" ? "running" : item.state]++;
  assert.deepEqual(await queue.counts(jobId), tally, "counts match the items");
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => (err as { code?: string }).code === code, code);
}

export function queueConformance(backend: string, make: QueueFactory): void {
  const area = `job queue (${backend})`;
  const setUp = async (t: TestContext, retries = 2) => {
    const clock = new ManualClock();
    const harness = await make(t, clock);
    await harness.queue.define(1, { retries });
    return { clock, ...harness, queue: harness.queue };
  };

  test(`${area} - items are counted and listed in index order; an index given twice is kept once`, async (t) => {
    const { queue } = await setUp(t);
    await queue.enqueue(1, [
      { index: 2, value: "c" },
      { index: 0, value: { a: 1, b: [true, null] } },
    ]);
    await queue.enqueue(1, [
      { index: 1, value: 7 },
      { index: 2, value: "not this" },
    ]);
    const listed = await queue.items(1, { limit: 10 });
    assert.deepEqual(
      listed.map((i) => [i.index, i.value, i.state, i.attempts]),
      [
        [0, { a: 1, b: [true, null] }, "queued", 0],
        [1, 7, "queued", 0],
        [2, "c", "queued", 0],
      ],
    );
    assert.deepEqual(await queue.counts(1), {
      total: 3,
      queued: 3,
      running: 0,
      ok: 0,
      failed: 0,
      cancelled: 0,
    });
    assert.deepEqual(
      (await queue.items(1, { after: 0, limit: 1 })).map((i) => i.index),
      [1],
      "paged with after/limit",
    );
  });

  test(`${area} - a claim hands out the lowest queued indexes, no more than asked, each item to one node only`, async (t) => {
    const { queue, clock } = await setUp(t);
    await queue.enqueue(1, items(5));
    // Asked in the same turn: the backend must still hand each item out once.
    const [a, b, c] = await Promise.all([
      queue.claim(1, "pi-a", 3, LEASE_MS),
      queue.claim(1, "pi-b", 3, LEASE_MS),
      queue.claim(1, "pi-c", 3, LEASE_MS),
    ]);
    assert.deepEqual(
      a.map((i) => i.index),
      [0, 1, 2],
    );
    assert.deepEqual(
      b.map((i) => i.index),
      [3, 4],
    );
    assert.deepEqual(c, []);
    const first = a[0] as ClaimedItem;
    assert.equal(first.nodeId, "pi-a");
    assert.equal(first.attempt, 1);
    assert.deepEqual(first.value, { n: 0 });
    assert.equal(first.leaseUntil, clock.now() + LEASE_MS);
    assert.deepEqual(await queue.claim(1, "pi-a", 0, LEASE_MS), []);
    const counts = await queue.counts(1);
    assert.equal(counts.running, 5);
    assert.equal(counts.queued, 0);
    const listed = await queue.items(1, { state: "running", limit: 10 });
    assert.deepEqual(
      listed.map((i) => i.nodeId),
      ["pi-a", "pi-a", "pi-a", "pi-b", "pi-b"],
    );
    await assertConsistent(queue, 1);
  });

  test(`${area} - items queued again or added late are claimed lowest index first among the fresh ones`, async (t) => {
    const { queue } = await setUp(t);
    // More items than one read-ahead page of the SQLite backend (1 024).
    await queue.enqueue(1, items(1_500, 100));
    const first = await queue.claim(1, "pi-a", 1_200, LEASE_MS);
    assert.equal(first.length, 1_200);
    assert.equal(first.at(-1)?.index, 1_299);
    // 150 fails and is retried, 900 is lost, 50 and 1 700 come late (below and above the rest).
    await queue.fail(first[50] as ClaimedItem, exit(1), { retry: true });
    await queue.requeue(first[800] as ClaimedItem, "pi-a went down", { counts: true });
    await queue.enqueue(1, [
      { index: 50, value: "late-low" },
      { index: 1_700, value: "late-high" },
    ]);
    const next = await queue.claim(1, "pi-b", 5, LEASE_MS);
    assert.deepEqual(
      next.map((i) => i.index),
      [50, 150, 900, 1_300, 1_301],
    );
    assert.equal(next[2]?.attempt, 2, "a requeued item is claimed as a new lease");
    const rest = await queue.claim(1, "pi-c", 1_000, LEASE_MS);
    assert.equal(rest.length, 299);
    assert.equal(rest.at(-1)?.index, 1_700);
    assert.deepEqual(await queue.claim(1, "pi-c", 10, LEASE_MS), []);
    await assertConsistent(queue, 1);
  });

  test(`${area} - a result is recorded once: another answer for the same lease changes nothing`, async (t) => {
    const { queue } = await setUp(t);
    await queue.enqueue(1, items(1));
    const [item] = await queue.claim(1, "pi-a", 1, LEASE_MS);
    assert.ok(item);
    assert.deepEqual(await queue.complete(item, ok("first")), {
      applied: true,
      state: "ok",
      late: false,
    });
    assert.deepEqual(await queue.complete(item, ok("second")), { applied: false, state: "ok" });
    assert.deepEqual(await queue.fail(item, exit(1), { retry: true }), {
      applied: false,
      state: "ok",
    });
    assert.deepEqual(await queue.requeue(item, "lost", { counts: true }), {
      applied: false,
      state: "ok",
    });
    const [stored] = await queue.items(1, { limit: 1 });
    assert.equal(stored?.output, "first");
    assert.equal(stored?.exitCode, 0);
    assert.equal(stored?.nodeId, "pi-a");
    assert.equal(stored?.late, false);
    assert.deepEqual(
      await queue.claim(1, "pi-b", 1, LEASE_MS),
      [],
      "a done item is not handed out",
    );
    await assertConsistent(queue, 1);
  });

  test(`${area} - a failure fails the item, or queues it again while retries are left when asked`, async (t) => {
    const { queue } = await setUp(t, 1);
    await queue.enqueue(1, items(2));
    const [once, retried] = await queue.claim(1, "pi-a", 2, LEASE_MS);
    assert.ok(once && retried);
    assert.equal((await queue.fail(once, exit(3), { retry: false })).state, "failed");
    assert.equal((await queue.fail(retried, exit(3), { retry: true })).state, "queued");
    const [again] = await queue.claim(1, "pi-b", 5, LEASE_MS);
    assert.equal(again?.index, 1);
    assert.equal(again?.attempt, 2);
    assert.ok(again);
    // retries = 1: the second failure is the last.
    assert.equal((await queue.fail(again, exit(4), { retry: true })).state, "failed");
    const stored = await queue.items(1, { limit: 5 });
    assert.deepEqual(
      stored.map((i) => [i.state, i.exitCode, i.tries, i.attempts, i.nodeId]),
      [
        ["failed", 3, 1, 1, "pi-a"],
        ["failed", 4, 2, 2, "pi-b"],
      ],
    );
    assert.match(stored[0]?.error ?? "", /exit code 3/);
    await assertConsistent(queue, 1);
  });

  test(`${area} - a lost item is tried retries + 1 times, then fails with the reason; a refusal that does not count never gives up`, async (t) => {
    const { queue } = await setUp(t, 2);
    await queue.enqueue(1, items(2));
    for (let attempt = 1; attempt <= 3; attempt++) {
      const [lost] = await queue.claim(1, `pi-${attempt}`, 1, LEASE_MS);
      assert.equal(lost?.index, 0);
      assert.ok(lost);
      const settled = await queue.requeue(lost, `pi-${attempt} disconnected`, { counts: true });
      assert.equal(settled.state, attempt < 3 ? "queued" : "failed");
    }
    const [gaveUp] = await queue.items(1, { limit: 1 });
    assert.equal(gaveUp?.state, "failed");
    assert.equal(gaveUp?.tries, 3);
    assert.match(gaveUp?.error ?? "", /pi-3 disconnected.*3 times/);
    for (let attempt = 1; attempt <= 10; attempt++) {
      const [busy] = await queue.claim(1, "pi-busy", 1, LEASE_MS);
      assert.equal(busy?.index, 1);
      assert.ok(busy);
      assert.equal((await queue.requeue(busy, "busy", { counts: false })).state, "queued");
    }
    const [kept] = await queue.items(1, { after: 0, limit: 1 });
    assert.equal(kept?.tries, 0);
    assert.equal(kept?.attempts, 10);
    await assertConsistent(queue, 1);
  });

  test(`${area} - an expired lease is taken back as a try; its late failure changes nothing, its late success is kept and supersedes the newer lease`, async (t) => {
    const { queue, clock } = await setUp(t);
    await queue.enqueue(1, items(3));
    const first = await queue.claim(1, "pi-slow", 3, LEASE_MS);
    clock.advance(LEASE_MS - 1);
    assert.deepEqual(await queue.expire(1), [], "not before the deadline");
    clock.advance(1);
    const taken = await queue.expire(1);
    assert.deepEqual(
      taken.map((x) => [x.lease.index, x.lease.nodeId, x.lease.attempt, x.state]),
      [
        [0, "pi-slow", 1, "queued"],
        [1, "pi-slow", 1, "queued"],
        [2, "pi-slow", 1, "queued"],
      ],
    );
    const [s0, s1, s2] = first;
    assert.ok(s0 && s1 && s2);
    const [n0, n1] = await queue.claim(1, "pi-fast", 2, LEASE_MS);
    assert.ok(n0 && n1);
    assert.equal(n0.attempt, 2);
    // Item 0: the slow node's late failure says nothing the new attempt will not.
    assert.deepEqual(await queue.fail(s0, exit(1), { retry: true }), {
      applied: false,
      state: "running",
    });
    assert.deepEqual(await queue.requeue(s0, "late loss", { counts: true }), {
      applied: false,
      state: "running",
    });
    // Item 1: the slow node's late success is kept; the fast node's lease is superseded.
    assert.deepEqual(await queue.complete(s1, ok("slow but done")), {
      applied: true,
      state: "ok",
      late: true,
      superseded: { jobId: 1, index: 1, attempt: 2, nodeId: "pi-fast" },
    });
    assert.deepEqual(await queue.complete(n1, ok("too late")), { applied: false, state: "ok" });
    // Item 2: queued again, not yet claimed; the late success is kept.
    assert.deepEqual(await queue.complete(s2, ok("slow")), {
      applied: true,
      state: "ok",
      late: true,
    });
    assert.deepEqual(await queue.complete(n0, ok("fast")), {
      applied: true,
      state: "ok",
      late: false,
    });
    const stored = await queue.items(1, { limit: 5 });
    assert.deepEqual(
      stored.map((i) => [i.index, i.state, i.output, i.nodeId, i.late, i.tries]),
      [
        [0, "ok", "fast", "pi-fast", false, 1],
        [1, "ok", "slow but done", "pi-slow", true, 1],
        [2, "ok", "slow", "pi-slow", true, 1],
      ],
    );
    assert.deepEqual(await queue.claim(1, "pi-fast", 5, LEASE_MS), []);
    await assertConsistent(queue, 1);
  });

  test(`${area} - an expired lease past the retries fails the item`, async (t) => {
    const { queue, clock } = await setUp(t, 0);
    await queue.enqueue(1, items(1));
    await queue.claim(1, "pi-a", 1, LEASE_MS);
    clock.advance(LEASE_MS);
    const [taken] = await queue.expire(1);
    assert.equal(taken?.state, "failed");
    const [item] = await queue.items(1, { limit: 1 });
    assert.match(item?.error ?? "", /no answer from pi-a/);
    await assertConsistent(queue, 1);
  });

  test(`${area} - cancel: queued items end cancelled, running ones end cancelled unless they succeed, and nothing more is claimed or added`, async (t) => {
    const { queue } = await setUp(t);
    await queue.enqueue(1, items(6));
    const [a, b, c] = await queue.claim(1, "pi-a", 3, LEASE_MS);
    assert.ok(a && b && c);
    const { cancelled, running } = await queue.cancel(1);
    assert.equal(cancelled, 3);
    assert.deepEqual(
      running.map((l) => [l.index, l.attempt, l.nodeId]),
      [
        [0, 1, "pi-a"],
        [1, 1, "pi-a"],
        [2, 1, "pi-a"],
      ],
    );
    assert.deepEqual(await queue.claim(1, "pi-b", 5, LEASE_MS), []);
    await rejectsWith(queue.enqueue(1, items(1, 10)), "E_JOB_CANCELLED");
    assert.equal((await queue.counts(1)).running, 3, "cancelling items are still out");
    assert.equal((await queue.complete(a, ok())).state, "ok");
    assert.equal(
      (
        await queue.fail(
          b,
          { ...exit(143), exitCode: null, signal: "SIGTERM" },
          {
            retry: true,
          },
        )
      ).state,
      "cancelled",
    );
    assert.equal((await queue.requeue(c, "disconnected", { counts: true })).state, "cancelled");
    assert.deepEqual(await queue.counts(1), {
      total: 6,
      queued: 0,
      running: 0,
      ok: 1,
      failed: 0,
      cancelled: 5,
    });
    const again = await queue.cancel(1);
    assert.deepEqual(again, { cancelled: 0, running: [] }, "cancel twice is harmless");
    await assertConsistent(queue, 1);
  });

  test(`${area} - each node's share of finished items, by the node that ran the last try, survives a reopen`, async (t) => {
    const { queue, reopen } = await setUp(t);
    await queue.enqueue(1, items(6));
    const [a1, a2] = await queue.claim(1, "pi-a", 2, LEASE_MS);
    const [b1, b2, b3] = await queue.claim(1, "pi-b", 3, LEASE_MS);
    assert.ok(a1 && a2 && b1 && b2 && b3);
    await queue.complete(a1, ok());
    await queue.fail(a2, exit(1), { retry: false });
    await queue.complete(b1, ok());
    // pi-b loses b2; pi-c runs it again and succeeds. b3 is still running.
    await queue.requeue(b2, "pi-b went down", { counts: true });
    const [c1] = await queue.claim(1, "pi-c", 1, LEASE_MS);
    assert.equal(c1?.index, b2.index);
    await queue.complete(c1 as ClaimedItem, ok());
    const expected = [
      { nodeId: "pi-a", ok: 1, failed: 1 },
      { nodeId: "pi-b", ok: 1, failed: 0 },
      { nodeId: "pi-c", ok: 1, failed: 0 },
    ];
    assert.deepEqual(await queue.shares(1), expected);
    await queue.close();
    assert.deepEqual(await (await reopen()).shares(1), expected);
  });

  test(`${area} - what was committed survives a reopen; recover queues every running item again without counting a try`, async (t) => {
    const { queue, reopen } = await setUp(t);
    await queue.define(2, { retries: 0 });
    await queue.enqueue(1, items(4));
    await queue.enqueue(2, items(2));
    const [done, out1, out2] = await queue.claim(1, "pi-a", 3, LEASE_MS);
    assert.ok(done && out1 && out2);
    await queue.complete(done, ok("kept"));
    const [other] = await queue.claim(2, "pi-b", 1, LEASE_MS);
    assert.ok(other);
    await queue.cancel(2);
    await queue.close();
    await rejectsWith(queue.counts(1), "E_QUEUE_CLOSED");

    const next = await reopen();
    assert.deepEqual(await next.counts(1), {
      total: 4,
      queued: 1,
      running: 2,
      ok: 1,
      failed: 0,
      cancelled: 0,
    });
    assert.equal(await next.recover(1), 2);
    assert.equal(await next.recover(2), 0, "a cancelling item ends cancelled");
    assert.deepEqual(await next.counts(2), {
      total: 2,
      queued: 0,
      running: 0,
      ok: 0,
      failed: 0,
      cancelled: 2,
    });
    const after = await next.items(1, { limit: 10 });
    assert.deepEqual(
      after.map((i) => [i.index, i.state, i.tries, i.output]),
      [
        [0, "ok", 0, "kept"],
        [1, "queued", 0, ""],
        [2, "queued", 0, ""],
        [3, "queued", 0, ""],
      ],
    );
    // The old leases are stale now: their answers, should they come, change nothing.
    assert.equal((await next.fail(out1, exit(1), { retry: false })).applied, false);
    const claimed = await next.claim(1, "pi-c", 10, LEASE_MS);
    assert.deepEqual(
      claimed.map((i) => [i.index, i.attempt]),
      [
        [1, 2],
        [2, 2],
        [3, 1],
      ],
    );
    await assertConsistent(next, 1);
    await assertConsistent(next, 2);
  });

  test(`${area} - 10 000 items claimed by three nodes and answered out of order are each recorded exactly once`, async (t) => {
    const { queue } = await setUp(t);
    const total = 10_000;
    for (let from = 0; from < total; from += 2_500) await queue.enqueue(1, items(2_500, from));
    const seen = new Map<number, string>();
    let lost = 0;
    const node = async (nodeId: string, slots: number) => {
      for (;;) {
        const batch = await queue.claim(1, nodeId, slots, LEASE_MS);
        if (batch.length === 0) return;
        // Answers come back in any order; every tenth is lost once (its node dropped).
        const settled = await Promise.all(
          [...batch].reverse().map((item) => {
            if (item.attempt === 1 && item.index % 10 === 7) {
              lost++;
              return queue.requeue(item, "dropped", { counts: true });
            }
            assert.equal(seen.has(item.index), false, `item ${item.index} recorded once`);
            seen.set(item.index, nodeId);
            return queue.complete(item, ok(String((item.value as { n: JsonValue }).n)));
          }),
        );
        for (const s of settled) assert.equal(s.applied, true);
      }
    };
    await Promise.all([node("pi-a", 4), node("pi-b", 16), node("pi-c", 64)]);
    // A node can see an empty queue while another still holds lost items: sweep up.
    await node("pi-a", 64);
    assert.equal(seen.size, total);
    assert.equal(lost, total / 10);
    const counts = await queue.counts(1);
    assert.deepEqual(counts, { total, queued: 0, running: 0, ok: total, failed: 0, cancelled: 0 });
    const stored = await queue.items(1, { limit: total });
    assert.equal(stored.length, total);
    for (const item of stored) {
      assert.equal(item.output, String(item.index));
      assert.equal(item.nodeId, seen.get(item.index));
      assert.equal(item.attempts, item.index % 10 === 7 ? 2 : 1);
    }
    await assertConsistent(queue, 1);
  });

  test(`${area} - jobs are separate; remove forgets one; an unknown job is refused with E_NO_QUEUE`, async (t) => {
    const { queue } = await setUp(t);
    await queue.define(2, { retries: 0 });
    await queue.enqueue(1, items(3));
    await queue.enqueue(2, items(5));
    const claimed = await queue.claim(2, "pi-a", 10, LEASE_MS);
    assert.equal(claimed.length, 5);
    assert.equal((await queue.counts(1)).queued, 3);
    await queue.remove(2);
    await rejectsWith(queue.counts(2), "E_NO_QUEUE");
    await rejectsWith(queue.enqueue(9, items(1)), "E_NO_QUEUE");
    await rejectsWith(queue.claim(9, "pi-a", 1, LEASE_MS), "E_NO_QUEUE");
    assert.deepEqual(await queue.items(2, { limit: 10 }), []);
    assert.equal((await queue.counts(1)).total, 3, "the other job is untouched");
    await assertConsistent(queue, 1);
  });
}
