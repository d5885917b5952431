import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { type Clock, silentLogger } from "@picluster/common";
import { ManualClock } from "@picluster/common/testing";
import { SqliteJobQueue } from "../../src/store/job-queue.js";
import { openDatabase } from "../../src/store/store.js";
import { type QueueHarness, queueConformance, type TestContext } from "./queue-conformance.js";

/** A queue on a real SQLite file in a temp dir, migrated as the primary would. */
function sqliteQueue(
  t: TestContext,
  clock: Clock,
): QueueHarness & { queue: SqliteJobQueue; file: string } {
  const dir = mkdtempSync(join(tmpdir(), "picluster-jobs-"));
  const file = join(dir, "picluster.db");
  const dbs: Array<{ close(): void }> = [];
  t.after(() => {
    for (const db of dbs) db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const open = () => {
    const db = openDatabase(file, silentLogger());
    dbs.push(db);
    return new SqliteJobQueue({ db, clock, log: silentLogger() });
  };
  return { queue: open(), reopen: async () => open(), file };
}

queueConformance("sqlite", async (t, clock) => sqliteQueue(t, clock));

test("job queue (sqlite) - calls made in one turn of the event loop share one commit", async (t) => {
  const { queue } = sqliteQueue(t, new ManualClock());
  await queue.define(1, { retries: 2 });
  const before = queue.commits;
  await queue.enqueue(
    1,
    Array.from({ length: 1_000 }, (_, i) => ({ index: i, value: i })),
  );
  const claims = await Promise.all(
    Array.from({ length: 50 }, (_, n) => queue.claim(1, `pi-${n}`, 4, 60_000)),
  );
  assert.equal(queue.commits - before, 2, "one commit for the items, one for all 50 claims");
  const results = await Promise.all(
    claims.flat().map((item) =>
      queue.complete(item, {
        exitCode: 0,
        signal: null,
        durationMs: 1,
        output: "",
        truncated: false,
      }),
    ),
  );
  assert.equal(results.length, 200);
  assert.equal(queue.commits - before, 3, "and one for all 200 results");
  assert.equal((await queue.counts(1)).ok, 200);
});

test("job queue (sqlite) - a refused call fails alone; the calls it shared a commit with stand", async (t) => {
  const { queue, reopen } = sqliteQueue(t, new ManualClock());
  await queue.define(1, { retries: 2 });
  await queue.define(2, { retries: 2 });
  await queue.cancel(2);
  const [kept, refused, unknown] = await Promise.allSettled([
    queue.enqueue(1, [{ index: 0, value: "kept" }]),
    queue.enqueue(2, [{ index: 0, value: "refused" }]),
    queue.enqueue(1, [{ index: -1, value: "bad index" }]),
  ]);
  assert.equal(kept.status, "fulfilled");
  assert.equal(refused.status, "rejected");
  assert.equal(unknown.status, "rejected");
  await queue.close();
  const again = await reopen();
  assert.deepEqual(
    (await again.items(1, { limit: 5 })).map((i) => i.value),
    ["kept"],
  );
  assert.equal((await again.counts(2)).total, 0);
});

test("job queue (sqlite) - throughput: 100 000 items enqueued, claimed 64 at a time by 16 nodes and completed, each result stored", async (t) => {
  const { queue } = sqliteQueue(t, new ManualClock());
  const total = 100_000;
  await queue.define(1, { retries: 2 });
  const started = performance.now();
  for (let from = 0; from < total; from += 10_000)
    await queue.enqueue(
      1,
      Array.from({ length: 10_000 }, (_, i) => ({ index: from + i, value: from + i })),
    );
  const queued = performance.now();
  const commitsBefore = queue.commits;
  const node = async (nodeId: string) => {
    for (;;) {
      const batch = await queue.claim(1, nodeId, 64, 60_000);
      if (batch.length === 0) return;
      await Promise.all(
        batch.map((item) =>
          queue.complete(item, {
            exitCode: 0,
            signal: null,
            durationMs: 1,
            output: `result ${item.index}\n`,
            truncated: false,
          }),
        ),
      );
    }
  };
  await Promise.all(Array.from({ length: 16 }, (_, n) => node(`pi-${n}`)));
  const finished = performance.now();
  const counts = await queue.counts(1);
  assert.equal(counts.ok, total);
  const perSecond = Math.round(total / ((finished - queued) / 1_000));
  t.diagnostic(
    `enqueue ${Math.round(total / ((queued - started) / 1_000))} items/s; claim + complete ${perSecond} items/s in ${queue.commits - commitsBefore} commits`,
  );
});
