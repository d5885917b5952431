/**
 * The embedded job queue: SQLite tables `job_queues` and `job_items` in the
 * store's file (migration 6), on a connection of its own.
 *
 * Every call is queued and run, in call order, in one transaction with all
 * the calls made during the same turn of the event loop; its promise
 * resolves after that transaction commits. So a busy primary writes claims
 * and results a few hundred at a time, and a result is counted or announced
 * only once it is stored. A claim takes many items in one statement; the
 * per-job counts are counters kept in the same transaction, never a scan.
 * The time a call uses is read when it is made, not when it commits: the
 * scale-out mode's replicas (cluster/job-log.ts) replay calls with the time
 * they were first made at.
 */
import {
  type Clock,
  describeError,
  type ItemState,
  type JobCounts,
  type JsonValue,
  type Logger,
  type StoredJobItem,
} from "@picluster/common";
import type Database from "better-sqlite3";
import {
  type ClaimedItem,
  type ItemQuery,
  type ItemResult,
  isFinal,
  type JobQueue,
  type Lease,
  type NodeShare,
  QueueError,
  type QueueItem,
  type Settled,
  type TakenBack,
} from "../jobs/queue.js";

export interface SqliteJobQueueOptions {
  /** A connection to the store's file (openDatabase), migrated; the caller closes it. */
  db: Database.Database;
  clock: Clock;
  log: Logger;
}

interface Op {
  run(): unknown;
  resolve(value: unknown): void;
  reject(err: Error): void;
}

interface Meta {
  retries: number;
  cancelled: boolean;
}

interface ItemRow {
  state: ItemState;
  attempt: number;
  tries: number;
  node_id: string | null;
}

interface FullItemRow extends ItemRow {
  idx: number;
  value: string;
  started_at: number | null;
  finished_at: number | null;
  exit_code: number | null;
  signal: string | null;
  duration_ms: number | null;
  output: string;
  truncated: number;
  error: string | null;
  late: number;
}

type Counter = Exclude<keyof JobCounts, "total">;

function counter(state: ItemState): Counter {
  return state === "cancelling" ? "running" : state;
}

const NO_RESULT: ItemResult = {
  exitCode: null,
  signal: null,
  durationMs: null,
  output: "",
  truncated: false,
};

function prepare(db: Database.Database) {
  return {
    define: db.prepare(
      "INSERT INTO job_queues (job_id, retries) VALUES (?, ?) ON CONFLICT (job_id) DO UPDATE SET retries = excluded.retries",
    ),
    meta: db.prepare("SELECT retries, cancelled FROM job_queues WHERE job_id = ?"),
    counts: db.prepare(
      "SELECT n_total, n_queued, n_running, n_ok, n_failed, n_cancelled FROM job_queues WHERE job_id = ?",
    ),
    addCounts: db.prepare(
      `UPDATE job_queues SET n_total = n_total + ?, n_queued = n_queued + ?, n_running = n_running + ?,
         n_ok = n_ok + ?, n_failed = n_failed + ?, n_cancelled = n_cancelled + ? WHERE job_id = ?`,
    ),
    insert: db.prepare(
      "INSERT INTO job_items (job_id, idx, value, state) VALUES (?, ?, ?, 'queued') ON CONFLICT DO NOTHING",
    ),
    // Queued indexes are read ahead in pages (see QueuedIndexes) and each claimed row updated
    // by its key, guarded by its state.
    queuedAfter: db
      .prepare(
        "SELECT idx FROM job_items WHERE job_id = ? AND state = 'queued' AND idx > ? ORDER BY idx LIMIT ?",
      )
      .pluck(),
    claimOne: db.prepare(
      `UPDATE job_items SET state = 'running', attempt = attempt + 1, node_id = @nodeId,
         lease_until = @until, started_at = @now, error = NULL
       WHERE job_id = @jobId AND idx = @idx AND state = 'queued' RETURNING value, attempt`,
    ),
    item: db.prepare(
      "SELECT state, attempt, tries, node_id FROM job_items WHERE job_id = ? AND idx = ?",
    ),
    // The common case, one statement: the answer of the lease that holds the item.
    completeCurrent: db.prepare(
      `UPDATE job_items SET state = 'ok', finished_at = @now, exit_code = @exitCode, signal = @signal,
         duration_ms = @durationMs, output = @output, truncated = @truncated, error = NULL, lease_until = NULL
       WHERE job_id = @jobId AND idx = @index AND attempt = @attempt AND state IN ('running', 'cancelling')`,
    ),
    done: db.prepare(
      `UPDATE job_items SET state = @state, finished_at = @now, exit_code = @exitCode, signal = @signal,
         duration_ms = @durationMs, output = @output, truncated = @truncated, error = @error,
         late = @late, tries = @tries, node_id = @nodeId, lease_until = NULL
       WHERE job_id = @jobId AND idx = @index`,
    ),
    requeue: db.prepare(
      "UPDATE job_items SET state = 'queued', tries = ?, error = ?, lease_until = NULL WHERE job_id = ? AND idx = ?",
    ),
    expired: db.prepare(
      `SELECT idx, state, attempt, tries, node_id FROM job_items
       WHERE job_id = ? AND state IN ('running', 'cancelling') AND lease_until <= ? ORDER BY idx`,
    ),
    recoverRunning: db.prepare(
      "UPDATE job_items SET state = 'queued', lease_until = NULL, error = ? WHERE job_id = ? AND state = 'running'",
    ),
    recoverCancelling: db.prepare(
      "UPDATE job_items SET state = 'cancelled', finished_at = ?, lease_until = NULL WHERE job_id = ? AND state = 'cancelling'",
    ),
    cancelQueued: db.prepare(
      "UPDATE job_items SET state = 'cancelled', finished_at = ? WHERE job_id = ? AND state = 'queued'",
    ),
    cancelRunning: db.prepare(
      "UPDATE job_items SET state = 'cancelling' WHERE job_id = ? AND state = 'running' RETURNING idx, attempt, node_id",
    ),
    markCancelled: db.prepare("UPDATE job_queues SET cancelled = 1 WHERE job_id = ?"),
    shares: db.prepare(
      `SELECT node_id AS nodeId, sum(state = 'ok') AS ok, sum(state = 'failed') AS failed
       FROM job_items WHERE job_id = ? AND state IN ('ok', 'failed') AND node_id IS NOT NULL
       GROUP BY node_id ORDER BY node_id`,
    ),
    items: db.prepare(
      `SELECT * FROM job_items WHERE job_id = @jobId AND idx > @after AND (@state IS NULL OR state = @state)
       ORDER BY idx LIMIT @limit`,
    ),
    removeItems: db.prepare("DELETE FROM job_items WHERE job_id = ?"),
    removeQueue: db.prepare("DELETE FROM job_queues WHERE job_id = ?"),
  };
}

/**
 * A job's queued indexes, lowest first, read from the partial index a page
 * at a time; indexes queued again below the page's end (requeues, late
 * enqueues) are kept aside in order. Written by hand because a claim's
 * `SELECT … ORDER BY idx LIMIT n` on the partial index cost 6 µs an item,
 * a third of the queue's time per item (bench suite `jobs`). A hint, not a
 * truth: the claim's update checks the row is still queued.
 */
class QueuedIndexes {
  private static readonly PAGE = 1_024;
  private page: number[] = [];
  private at = 0;
  /** The highest index read so far; -1 before the first page. */
  private scanned = -1;
  private exhausted = false;
  /** Queued again at or below `scanned`, ascending. */
  private readonly back: number[] = [];

  constructor(private readonly read: (after: number, limit: number) => number[]) {}

  next(): number | undefined {
    if (this.at >= this.page.length && !this.exhausted) {
      this.page = this.read(this.scanned, QueuedIndexes.PAGE);
      this.at = 0;
      this.exhausted = this.page.length < QueuedIndexes.PAGE;
      this.scanned = this.page.at(-1) ?? this.scanned;
    }
    const fresh = this.page[this.at];
    const back = this.back[0];
    if (back !== undefined && (fresh === undefined || back < fresh)) return this.back.shift();
    if (fresh !== undefined) this.at++;
    return fresh;
  }

  /** `idx` is queued (again). */
  add(idx: number): void {
    if (idx > this.scanned) {
      // The next page read finds it.
      this.exhausted = false;
      return;
    }
    let lo = 0;
    let hi = this.back.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.back[mid] as number) < idx) lo = mid + 1;
      else hi = mid;
    }
    if (this.back[lo] !== idx) this.back.splice(lo, 0, idx);
  }
}

export class SqliteJobQueue implements JobQueue {
  private readonly st: ReturnType<typeof prepare>;
  private ops: Op[] = [];
  private scheduled = false;
  private closed = false;
  /** Counter changes of the transaction being built, written at its end. */
  private readonly deltas = new Map<number, JobCounts>();
  private readonly metas = new Map<number, Meta>();
  private readonly cursors = new Map<number, QueuedIndexes>();
  /** Transactions committed (for tests and benchmarks: how well calls are batched). */
  commits = 0;

  constructor(private readonly opts: SqliteJobQueueOptions) {
    this.st = prepare(opts.db);
  }

  define(jobId: number, opts: { retries: number }): Promise<void> {
    return this.schedule(() => {
      this.st.define.run(jobId, opts.retries);
      const meta = this.meta(jobId);
      if (meta !== undefined) meta.retries = opts.retries;
    });
  }

  enqueue(jobId: number, items: readonly QueueItem[]): Promise<void> {
    return this.schedule(() => {
      const meta = this.requireMeta(jobId);
      if (meta.cancelled)
        throw new QueueError("E_JOB_CANCELLED", `job ${jobId} was cancelled: no more items`);
      for (const item of items)
        if (!Number.isSafeInteger(item.index) || item.index < 0)
          throw new QueueError("E_BAD_ITEM", `item index ${item.index} is not a whole number ≥ 0`);
      // Checked before any write: a refused call leaves the batch it shares intact.
      let added = 0;
      const queued = this.cursors.get(jobId);
      for (const item of items) {
        if (this.st.insert.run(jobId, item.index, JSON.stringify(item.value)).changes === 0)
          continue;
        added++;
        queued?.add(item.index);
      }
      const d = this.delta(jobId);
      d.total += added;
      d.queued += added;
    });
  }

  claim(jobId: number, nodeId: string, max: number, leaseMs: number): Promise<ClaimedItem[]> {
    const now = this.opts.clock.now();
    return this.schedule(() => {
      const meta = this.requireMeta(jobId);
      if (meta.cancelled || max <= 0) return [];
      const until = now + leaseMs;
      const queued = this.queued(jobId);
      const claimed: ClaimedItem[] = [];
      while (claimed.length < max) {
        const idx = queued.next();
        if (idx === undefined) break;
        const row = this.st.claimOne.get({ nodeId, until, now, jobId, idx }) as
          | { value: string; attempt: number }
          | undefined;
        // Not queued any more (a late success ended it): the next one.
        if (row === undefined) continue;
        claimed.push({
          jobId,
          index: idx,
          attempt: row.attempt,
          nodeId,
          value: JSON.parse(row.value) as JsonValue,
          leaseUntil: until,
        });
      }
      const d = this.delta(jobId);
      d.queued -= claimed.length;
      d.running += claimed.length;
      return claimed;
    });
  }

  complete(lease: Lease, result: ItemResult): Promise<Settled> {
    const now = this.opts.clock.now();
    return this.schedule((): Settled => {
      const { changes } = this.st.completeCurrent.run({
        now,
        ...this.resultParams(result),
        jobId: lease.jobId,
        index: lease.index,
        attempt: lease.attempt,
      });
      if (changes === 1) {
        this.move(lease.jobId, "running", "ok");
        return { applied: true, state: "ok", late: false };
      }
      const row = this.row(lease);
      if (row === undefined || isFinal(row.state)) return { applied: false, state: row?.state };
      // A stale lease, but the work is done and the item is not: keep this result.
      this.setDone(lease, "ok", result, { late: true, tries: row.tries, now });
      this.move(lease.jobId, row.state, "ok");
      if (row.state === "queued") return { applied: true, state: "ok", late: true };
      return {
        applied: true,
        state: "ok",
        late: true,
        superseded: {
          jobId: lease.jobId,
          index: lease.index,
          attempt: row.attempt,
          nodeId: row.node_id ?? "",
        },
      };
    });
  }

  fail(lease: Lease, result: ItemResult, opts: { retry: boolean }): Promise<Settled> {
    const now = this.opts.clock.now();
    return this.schedule((): Settled => {
      const row = this.currentRow(lease);
      if (row === undefined) return { applied: false, state: this.row(lease)?.state };
      const tries = row.tries + 1;
      const error = result.error ?? describeExit(result);
      if (row.state === "cancelling") {
        this.setDone(lease, "cancelled", { ...result, error }, { late: false, tries, now });
        this.move(lease.jobId, row.state, "cancelled");
        return { applied: true, state: "cancelled", late: false };
      }
      if (opts.retry && tries <= this.requireMeta(lease.jobId).retries) {
        this.st.requeue.run(
          tries,
          `try ${tries} on ${lease.nodeId}: ${error}`,
          lease.jobId,
          lease.index,
        );
        this.cursors.get(lease.jobId)?.add(lease.index);
        this.move(lease.jobId, row.state, "queued");
        return { applied: true, state: "queued", late: false };
      }
      this.setDone(lease, "failed", { ...result, error }, { late: false, tries, now });
      this.move(lease.jobId, row.state, "failed");
      return { applied: true, state: "failed", late: false };
    });
  }

  requeue(lease: Lease, reason: string, opts: { counts: boolean }): Promise<Settled> {
    const now = this.opts.clock.now();
    return this.schedule((): Settled => {
      const row = this.currentRow(lease);
      if (row === undefined) return { applied: false, state: this.row(lease)?.state };
      return this.takeBack(lease, row, reason, opts.counts, now);
    });
  }

  expire(jobId: number): Promise<TakenBack[]> {
    const now = this.opts.clock.now();
    return this.schedule(() => {
      this.requireMeta(jobId);
      const rows = this.st.expired.all(jobId, now) as Array<ItemRow & { idx: number }>;
      return rows.map((r): TakenBack => {
        const lease: Lease = {
          jobId,
          index: r.idx,
          attempt: r.attempt,
          nodeId: r.node_id ?? "",
        };
        const settled = this.takeBack(
          lease,
          r,
          `no answer from ${lease.nodeId} before its lease ran out`,
          true,
          now,
        );
        return { lease, state: settled.state ?? r.state };
      });
    });
  }

  recover(jobId: number): Promise<number> {
    const now = this.opts.clock.now();
    return this.schedule(() => {
      this.requireMeta(jobId);
      const requeued = this.st.recoverRunning.run(
        "the primary restarted while it ran: its outcome is unknown",
        jobId,
      ).changes;
      const cancelled = this.st.recoverCancelling.run(now, jobId).changes;
      this.cursors.delete(jobId);
      const d = this.delta(jobId);
      d.running -= requeued + cancelled;
      d.queued += requeued;
      d.cancelled += cancelled;
      return requeued;
    });
  }

  cancel(jobId: number): Promise<{ cancelled: number; running: Lease[] }> {
    const now = this.opts.clock.now();
    return this.schedule(() => {
      const meta = this.requireMeta(jobId);
      const cancelled = this.st.cancelQueued.run(now, jobId).changes;
      this.cursors.delete(jobId);
      const d = this.delta(jobId);
      d.queued -= cancelled;
      d.cancelled += cancelled;
      const running = (
        this.st.cancelRunning.all(jobId) as Array<{
          idx: number;
          attempt: number;
          node_id: string | null;
        }>
      ).map((r) => ({ jobId, index: r.idx, attempt: r.attempt, nodeId: r.node_id ?? "" }));
      this.st.markCancelled.run(jobId);
      meta.cancelled = true;
      return { cancelled, running };
    });
  }

  counts(jobId: number): Promise<JobCounts> {
    return this.schedule(() => {
      const row = this.st.counts.get(jobId) as
        | {
            n_total: number;
            n_queued: number;
            n_running: number;
            n_ok: number;
            n_failed: number;
            n_cancelled: number;
          }
        | undefined;
      if (row === undefined) throw new QueueError("E_NO_QUEUE", `job ${jobId} has no queue`);
      const d = this.deltas.get(jobId);
      return {
        total: row.n_total + (d?.total ?? 0),
        queued: row.n_queued + (d?.queued ?? 0),
        running: row.n_running + (d?.running ?? 0),
        ok: row.n_ok + (d?.ok ?? 0),
        failed: row.n_failed + (d?.failed ?? 0),
        cancelled: row.n_cancelled + (d?.cancelled ?? 0),
      };
    });
  }

  shares(jobId: number): Promise<NodeShare[]> {
    return this.schedule(() => this.st.shares.all(jobId) as NodeShare[]);
  }

  items(jobId: number, query: ItemQuery): Promise<StoredJobItem[]> {
    return this.schedule(() => {
      const rows = this.st.items.all({
        jobId,
        after: query.after ?? -1,
        state: query.state ?? null,
        limit: query.limit,
      }) as FullItemRow[];
      return rows.map(itemFromRow);
    });
  }

  remove(jobId: number): Promise<void> {
    return this.schedule(() => {
      this.st.removeItems.run(jobId);
      this.st.removeQueue.run(jobId);
      this.metas.delete(jobId);
      this.deltas.delete(jobId);
      this.cursors.delete(jobId);
    });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    const done = this.schedule(() => undefined);
    this.flush();
    this.closed = true;
    return done;
  }

  private schedule<T>(run: () => T): Promise<T> {
    if (this.closed)
      return Promise.reject(new QueueError("E_QUEUE_CLOSED", "the job queue is closed"));
    return new Promise<T>((resolve, reject) => {
      this.ops.push({ run, resolve: resolve as (value: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // Everything asked for during this turn of the event loop shares one commit.
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const ops = this.ops;
    this.ops = [];
    if (ops.length === 0) return;
    const outcomes: Array<{ value: unknown } | { error: QueueError }> = [];
    const { db } = this.opts;
    try {
      db.transaction(() => {
        for (const op of ops) {
          try {
            outcomes.push({ value: op.run() });
          } catch (err) {
            // Refusals are raised before their op writes anything; anything else undoes the batch.
            if (!(err instanceof QueueError)) throw err;
            outcomes.push({ error: err });
          }
        }
        for (const [jobId, d] of this.deltas)
          this.st.addCounts.run(d.total, d.queued, d.running, d.ok, d.failed, d.cancelled, jobId);
      }).immediate();
    } catch (err) {
      // Rolled back: what is kept in memory is read again from the file.
      this.deltas.clear();
      this.metas.clear();
      this.cursors.clear();
      const error = new QueueError(
        "E_QUEUE_WRITE",
        `commit of ${ops.length} job queue operations failed: ${describeError(err)}`,
        { cause: err },
      );
      this.opts.log.error("job queue commit failed", { ops: ops.length, err: describeError(err) });
      for (const op of ops) op.reject(error);
      return;
    }
    this.deltas.clear();
    this.commits++;
    // Ack after commit: only now may a caller count or announce what it asked for.
    ops.forEach((op, i) => {
      const outcome = outcomes[i];
      if (outcome === undefined || "error" in outcome)
        op.reject(outcome?.error ?? new Error("lost"));
      else op.resolve(outcome.value);
    });
  }

  private meta(jobId: number): Meta | undefined {
    let meta = this.metas.get(jobId);
    if (meta === undefined) {
      const row = this.st.meta.get(jobId) as { retries: number; cancelled: number } | undefined;
      if (row === undefined) return undefined;
      meta = { retries: row.retries, cancelled: row.cancelled === 1 };
      this.metas.set(jobId, meta);
    }
    return meta;
  }

  private requireMeta(jobId: number): Meta {
    const meta = this.meta(jobId);
    if (meta === undefined) throw new QueueError("E_NO_QUEUE", `job ${jobId} has no queue`);
    return meta;
  }

  private queued(jobId: number): QueuedIndexes {
    let cursor = this.cursors.get(jobId);
    if (cursor === undefined) {
      cursor = new QueuedIndexes(
        (after, limit) => this.st.queuedAfter.all(jobId, after, limit) as number[],
      );
      this.cursors.set(jobId, cursor);
    }
    return cursor;
  }

  private delta(jobId: number): JobCounts {
    let d = this.deltas.get(jobId);
    if (d === undefined) {
      d = { total: 0, queued: 0, running: 0, ok: 0, failed: 0, cancelled: 0 };
      this.deltas.set(jobId, d);
    }
    return d;
  }

  private move(jobId: number, from: ItemState, to: ItemState): void {
    const d = this.delta(jobId);
    d[counter(from)] -= 1;
    d[counter(to)] += 1;
  }

  private row(lease: Lease): ItemRow | undefined {
    return this.st.item.get(lease.jobId, lease.index) as ItemRow | undefined;
  }

  /** The item's row when `lease` is the one holding it now. */
  private currentRow(lease: Lease): ItemRow | undefined {
    const row = this.row(lease);
    if (row === undefined || row.attempt !== lease.attempt) return undefined;
    return row.state === "running" || row.state === "cancelling" ? row : undefined;
  }

  /** A current lease ends without an answer: queue the item again, or fail it past its retries. */
  private takeBack(
    lease: Lease,
    row: ItemRow,
    reason: string,
    counts: boolean,
    now: number,
  ): Settled {
    if (row.state === "cancelling") {
      this.setDone(
        lease,
        "cancelled",
        { ...NO_RESULT, error: reason },
        {
          late: false,
          tries: row.tries,
          now,
        },
      );
      this.move(lease.jobId, row.state, "cancelled");
      return { applied: true, state: "cancelled", late: false };
    }
    const tries = row.tries + (counts ? 1 : 0);
    if (tries > this.requireMeta(lease.jobId).retries) {
      this.setDone(
        lease,
        "failed",
        { ...NO_RESULT, error: `${reason} (tried ${tries} times)` },
        {
          late: false,
          tries,
          now,
        },
      );
      this.move(lease.jobId, row.state, "failed");
      return { applied: true, state: "failed", late: false };
    }
    this.st.requeue.run(tries, reason, lease.jobId, lease.index);
    this.cursors.get(lease.jobId)?.add(lease.index);
    this.move(lease.jobId, row.state, "queued");
    return { applied: true, state: "queued", late: false };
  }

  private setDone(
    lease: Lease,
    state: ItemState,
    result: ItemResult,
    extra: { late: boolean; tries: number; now: number },
  ): void {
    this.st.done.run({
      state,
      now: extra.now,
      ...this.resultParams(result),
      error: result.error ?? null,
      late: extra.late ? 1 : 0,
      tries: extra.tries,
      nodeId: lease.nodeId,
      jobId: lease.jobId,
      index: lease.index,
    });
  }

  private resultParams(result: ItemResult) {
    return {
      exitCode: result.exitCode,
      signal: result.signal,
      durationMs: result.durationMs,
      output: result.output,
      truncated: result.truncated ? 1 : 0,
    };
  }
}

function describeExit(result: ItemResult): string {
  if (result.signal !== null) return `killed by ${result.signal}`;
  return result.exitCode === null ? "no exit code" : `exit code ${result.exitCode}`;
}

function itemFromRow(r: FullItemRow): StoredJobItem {
  return {
    index: r.idx,
    value: JSON.parse(r.value) as JsonValue,
    state: r.state,
    attempts: r.attempt,
    tries: r.tries,
    nodeId: r.node_id,
    ...(r.started_at === null ? {} : { startedAt: r.started_at }),
    ...(r.finished_at === null ? {} : { finishedAt: r.finished_at }),
    exitCode: r.exit_code,
    signal: r.signal,
    durationMs: r.duration_ms,
    output: r.output,
    truncated: r.truncated === 1,
    ...(r.error === null ? {} : { error: r.error }),
    late: r.late === 1,
  };
}
