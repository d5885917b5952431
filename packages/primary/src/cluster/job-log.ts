/**
 * Jobs in the scale-out mode: one log of every job operation, a JetStream
 * stream every primary replays into a replica of its own.
 *
 * Each call of the job queue (queue.ts) and each change of a job's record
 * is an operation; the operations a primary makes in one turn of the event
 * loop are one message on the stream (`picluster-jobs`, subject
 * `picluster.jobs.log`). Every primary reads the stream from its start, in
 * stream order, into a replica: the SQLite job queue and job table
 * (store/job-queue.ts, store/jobs.ts) in a file of its own that is made
 * anew at each start. Applying the same operations in the same order, with
 * the time each was made at, gives every replica the same items, leases and
 * results; so a call resolves with what applying it to this primary's
 * replica gave, once the stream has it (on `replicas` servers) and the
 * replica committed it (ack after commit, as embedded).
 *
 * Why a log and not a JetStream work-queue stream of items: the queue's
 * rules (lowest index first among items queued again, at most retries + 1
 * tries, a late success superseding a newer lease, cancel, counts and
 * shares) are a state machine over the items, which a work-queue stream's
 * redelivery order and delete-on-ack cannot express; a replicated log of
 * the calls keeps the one implementation the conformance suite checks.
 *
 * Each job is driven by one primary, its owner: the one that accepted it.
 * When the owner vanishes (its presence gone two leases), the leader takes
 * the job over with a compare-and-set `owner` operation (applied only if the
 * owner is still the one it saw) and resumes it as after a restart: items
 * that were out are queued again (at least once). A cancel made on another
 * primary is an operation too; the owner stops what runs.
 *
 * The log does not grow forever: once `compactEvery` messages have been
 * applied since the newest snapshot, the leader takes one (its replica's
 * SQLite image at a stream sequence, with the owners) into the object store
 * `<stream>-snap`, and purges the stream below the snapshot before it, so a
 * primary that is a snapshot's worth of messages behind goes on unharmed.
 * A primary starts from the newest snapshot and replays only what follows
 * it; one that finds a hole in the sequence (purged while it lagged further
 * behind) reloads from the newest snapshot.
 *
 * Written by hand: what is picluster's own here is the operations and
 * their replay; JetStream gives the ordering and the copies.
 */

import { randomUUID } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import {
  DeliverPolicy,
  DiscardPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { type ObjectStore, Objm } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  type Clock,
  describeError,
  type JobCounts,
  type JobStatus,
  type Logger,
  type StoredJobItem,
} from "@picluster/common";
import type Database from "better-sqlite3";
import {
  type ClaimedItem,
  type ItemQuery,
  type ItemResult,
  type JobQueue,
  type Lease,
  type NodeShare,
  QueueError,
  type QueueItem,
  type Settled,
  type TakenBack,
} from "../jobs/queue.js";
import { SqliteJobQueue } from "../store/job-queue.js";
import { type JobRecord, type JobRecords, JobStore, type NewJob } from "../store/jobs.js";
import { openDatabase } from "../store/store.js";

export const JOBS_STREAM = "picluster-jobs";
/** A message's operations are cut below this (the server refuses more than 1 MiB by default). */
const MAX_MESSAGE_BYTES = 256 * 1024;
/** Items of one enqueue are sent in pieces of at most this many bytes. */
const ENQUEUE_PIECE_BYTES = 192 * 1024;
/** A call in the stream but not read back (and applied) within this fails. */
const SEEN_BACK_MS = 30_000;
/** Messages applied since the newest snapshot before the leader takes another. */
const COMPACT_EVERY = 10_000;
/** The snapshot's name in the object store. */
const SNAPSHOT = "replica";

/** What a snapshot holds beside the replica's SQLite image. */
interface SnapshotHeader {
  /** The last stream sequence applied to the image. */
  seq: number;
  owners: Array<[number, string]>;
}

/** Where this primary's replica stands in the log (for tests, logs and status). */
export interface JobLogPosition {
  /** The last stream sequence applied. */
  seq: number;
  /** The sequence of the newest snapshot this primary took or started from (0: none). */
  snapshotSeq: number;
  /** The sequence this primary's replica was last loaded at (0: replayed from the start). */
  loadedAt: number;
  /** Times it reloaded from a snapshot after finding a hole in the log. */
  reloads: number;
}

type Op =
  | { k: "insert"; job: NewJob }
  | { k: "status"; id: number; status: JobStatus; finishedAt?: number; reason?: string }
  | { k: "owner"; id: number; owner: string; expected: string | null }
  | { k: "define"; jobId: number; retries: number }
  | { k: "enqueue"; jobId: number; items: readonly QueueItem[] }
  | { k: "claim"; jobId: number; nodeId: string; max: number; leaseMs: number }
  | { k: "complete"; lease: Lease; result: ItemResult }
  | { k: "fail"; lease: Lease; result: ItemResult; retry: boolean }
  | { k: "requeue"; lease: Lease; reason: string; counts: boolean }
  | { k: "expire"; jobId: number }
  | { k: "recover"; jobId: number }
  | { k: "cancel"; jobId: number }
  | { k: "remove"; jobId: number };

/** An operation with the time it was made at (the replicas' clock while it is applied). */
type Timed = Op & { at: number };

interface LogMessage {
  /** The primary that made the operations. */
  from: string;
  /** The log instance that sent it, and its number for the message: to hand it the results. */
  inst: string;
  ref: number;
  ops: Timed[];
}

interface Call {
  op: Timed;
  bytes: number;
  resolve(value: unknown): void;
  reject(err: Error): void;
}

/** The replicas' clock: the time of the operation being applied. */
class OpClock implements Clock {
  at = 0;
  now(): number {
    return this.at;
  }
  every(): () => void {
    throw new Error("the job log's replica clock does not schedule");
  }
  after(): () => void {
    throw new Error("the job log's replica clock does not schedule");
  }
}

export interface JobLogOptions {
  /** The replica's SQLite file: removed and made anew when the log is attached. */
  replicaFile: string;
  clock: Clock;
  log: Logger;
  /** The stream's name (tests use one each); its subject follows from it. */
  stream?: string;
  /** A job's owner changed (this primary took it over, or another took it from this one). */
  onOwner?: (jobId: number, owner: string) => void;
  /** Another primary cancelled a job: these leases were out (the owner stops them). */
  onCancelled?: (jobId: number, from: string, running: Lease[]) => void;
  /** Messages applied since the newest snapshot before the leader takes another (10 000). */
  compactEvery?: number;
  /** Tests only: called once the replica is loaded, before the log after it is read. */
  beforeFollow?: () => Promise<void>;
}

export class JobLog {
  private js: JetStreamClient | undefined;
  private db: Database.Database | undefined;
  private replicaQueue: SqliteJobQueue | undefined;
  private replicaJobs: JobStore | undefined;
  private readonly opClock = new OpClock();
  private readonly owners = new Map<number, string>();
  private batch: Call[] = [];
  private scheduled = false;
  private refs = 0;
  private readonly inst = randomUUID();
  /** Messages sent and not yet seen back: what to do with their results (or why they have none). */
  private readonly waiting = new Map<
    number,
    (results: PromiseSettledResult<unknown>[] | QueueError) => void
  >();
  /** The last call made here: a read waits for it (a primary reads its own writes). */
  private last: Promise<unknown> = Promise.resolve();
  private stopConsumer: (() => void) | undefined;
  private stopped = false;
  private self = "";
  private subject = "";
  private streamName = "";
  private jsm: JetStreamManager | undefined;
  private snapshots: ObjectStore | undefined;
  private readonly pos: JobLogPosition = { seq: 0, snapshotSeq: 0, loadedAt: 0, reloads: 0 };
  /** While set, messages wait before they are applied (a snapshot is being taken). */
  private gate: Promise<void> | undefined;
  private compacting = false;
  private reloading: Promise<void> | undefined;
  /** Takeovers asked for and not yet applied. */
  private readonly adopting = new Set<number>();
  /** Operations applied to the replica (for tests and logs). */
  applied = 0;

  readonly queue: JobQueue;
  readonly records: JobRecords;

  constructor(private readonly opts: JobLogOptions) {
    this.queue = new LoggedQueue(this);
    this.records = new LoggedRecords(this);
  }

  get attached(): boolean {
    return this.js !== undefined && !this.stopped;
  }

  /**
   * Open (or make) the stream and its snapshots' store, load the newest
   * snapshot (if any) into a fresh replica and replay what follows it, then
   * follow the log. Resolves once the replica has every operation the stream had.
   */
  async attach(nc: NatsConnection, self: string, replicas: number): Promise<void> {
    const stream = this.opts.stream ?? JOBS_STREAM;
    this.self = self;
    this.streamName = stream;
    this.subject = `${stream.replace(/-/g, ".")}.log`;
    const jsm = await jetstreamManager(nc);
    this.jsm = jsm;
    try {
      await jsm.streams.info(stream);
    } catch {
      await jsm.streams.add({
        name: stream,
        subjects: [this.subject],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        discard: DiscardPolicy.Old,
        num_replicas: replicas,
      });
    }
    const js = jetstream(nc);
    this.snapshots = await new Objm(js).create(`${stream}-snap`, {
      storage: StorageType.File,
      replicas,
    });
    await this.load(js);
    this.js = js;
    this.opts.log.info("job log replayed", {
      stream,
      snapshot: this.pos.loadedAt,
      seq: this.pos.seq,
      operations: this.applied,
    });
  }

  /** Where this primary's replica stands in the log. */
  position(): JobLogPosition {
    return { ...this.pos };
  }

  /**
   * A fresh replica from the newest snapshot (or empty), then the log after
   * it; resolves once the replica has what the stream had when it started.
   */
  private async load(js: JetStreamClient): Promise<void> {
    const jsm = this.jsm as JetStreamManager;
    const stream = (await jsm.streams.info(this.streamName)).state;
    const last = stream.last_seq;
    const snapshot = this.usableSnapshot(await this.snapshots?.getBlob(SNAPSHOT), last);
    for (const suffix of ["", "-wal", "-shm"])
      rmSync(`${this.opts.replicaFile}${suffix}`, { force: true });
    if (snapshot !== undefined) writeFileSync(this.opts.replicaFile, snapshot.image);
    const db = openDatabase(this.opts.replicaFile, this.opts.log);
    this.db = db;
    const queue = new SqliteJobQueue({ db, clock: this.opClock, log: this.opts.log });
    this.replicaQueue = queue;
    this.replicaJobs = new JobStore(db);
    this.owners.clear();
    for (const [id, owner] of snapshot?.header.owners ?? []) this.owners.set(id, owner);
    let from = snapshot?.header.seq ?? 0;
    this.pos.loadedAt = from;
    this.pos.snapshotSeq = Math.max(this.pos.snapshotSeq, from);
    if (stream.messages > 0 && stream.first_seq > from + 1) {
      // Not one this log makes (it purges only what a newer snapshot holds): said, and gone on
      // with, rather than reloading for ever.
      this.opts.log.error("the job log lacks operations: jobs of that time may be missing", {
        snapshot: from,
        firstInStream: stream.first_seq,
      });
      from = stream.first_seq - 1;
    }
    this.pos.seq = from;
    await this.opts.beforeFollow?.();
    const consumer = await js.consumers.get(
      this.streamName,
      from === 0
        ? { deliver_policy: DeliverPolicy.All }
        : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from + 1 },
    );
    const messages = await consumer.consume({ max_messages: 1_000 }).catch((err: unknown) => {
      db.close();
      throw err;
    });
    if (this.stopped) {
      // Stopped while this load was under way: stop() closes the replica.
      void messages.close();
      return;
    }
    let following = true;
    this.stopConsumer = () => {
      following = false;
      void messages.close();
    };
    let caughtUp: () => void = () => {};
    const replayed = new Promise<void>((resolve) => {
      caughtUp = resolve;
    });
    if (from >= last) caughtUp();
    let hole = false;
    void (async () => {
      for await (const m of messages) {
        if (this.gate !== undefined) await this.gate;
        if (!following) break;
        if (m.seq !== this.pos.seq + 1) {
          // Purged below a newer snapshot while this replica was further behind.
          this.opts.log.warn(
            "a hole in the job log: reloading the replica from the newest snapshot",
            {
              expected: this.pos.seq + 1,
              got: m.seq,
            },
          );
          hole = true;
          // The reload tells this load's caller once it has caught up.
          void this.reload(js, caughtUp);
          break;
        }
        try {
          this.apply(m.json<LogMessage>());
        } catch (err) {
          this.opts.log.error("unreadable message in the job log", {
            seq: m.seq,
            err: describeError(err),
          });
        }
        this.pos.seq = m.seq;
        if (m.seq >= last) caughtUp();
      }
    })()
      .catch((err: unknown) => {
        if (!this.stopped)
          this.opts.log.error("the job log stopped being followed", { err: describeError(err) });
      })
      .finally(() => {
        if (!hole) caughtUp();
      });
    await replayed;
    // Stopped, or reloaded meanwhile (that load waited for its own replica).
    if (this.stopped || this.replicaQueue !== queue) return;
    // Reads go after the replayed writes (the replica commits them in order).
    await queue.shares(-1);
  }

  /** The snapshot to start from, if there is one that fits the stream (said when one does not). */
  private usableSnapshot(
    blob: Uint8Array | null | undefined,
    last: number,
  ): ReturnType<typeof readSnapshot> | undefined {
    if (blob === null || blob === undefined) return undefined;
    try {
      const snapshot = readSnapshot(blob);
      if (snapshot.header.seq <= last) return snapshot;
      this.opts.log.warn(
        "the job log's snapshot is ahead of its stream (was the stream made anew?): replaying the stream alone",
        { snapshot: snapshot.header.seq, lastInStream: last },
      );
    } catch (err) {
      this.opts.log.error("unreadable job log snapshot: replaying the stream alone", {
        err: describeError(err),
      });
    }
    return undefined;
  }

  /** Drop the replica and load it again from the newest snapshot (a hole was found). */
  private reload(js: JetStreamClient, caughtUp: () => void): Promise<void> {
    if (this.reloading !== undefined) return this.reloading;
    this.reloading = (async () => {
      this.stopConsumer?.();
      this.pos.reloads++;
      for (const ref of [...this.waiting.keys()])
        this.giveUp(
          ref,
          "the job log was compacted past this primary's replica, which is reloaded: call again",
        );
      const queue = this.replicaQueue;
      this.replicaQueue = undefined;
      this.replicaJobs = undefined;
      await queue?.close();
      this.db?.close();
      if (this.stopped) return;
      await this.load(js);
      this.opts.log.info("job log replica reloaded", {
        snapshot: this.pos.loadedAt,
        seq: this.pos.seq,
      });
    })()
      .catch((err: unknown) => {
        if (!this.stopped)
          this.opts.log.error("cannot reload the job log's replica", { err: describeError(err) });
      })
      .finally(() => {
        this.reloading = undefined;
        caughtUp();
      });
    return this.reloading;
  }

  /**
   * The leader's part: once `compactEvery` messages were applied since the
   * newest snapshot, store a snapshot of the replica and purge the log below
   * the one before it. Resolves with the snapshot's sequence, or undefined
   * when none was due or it could not be taken (said in the log).
   */
  async compact(): Promise<number | undefined> {
    const every = this.opts.compactEvery ?? COMPACT_EVERY;
    const queue = this.replicaQueue;
    const db = this.db;
    const store = this.snapshots;
    const jsm = this.jsm;
    if (
      !this.attached ||
      this.compacting ||
      this.reloading !== undefined ||
      queue === undefined ||
      db === undefined ||
      store === undefined ||
      jsm === undefined ||
      this.pos.seq - this.pos.snapshotSeq < every
    )
      return undefined;
    this.compacting = true;
    let release: () => void = () => {};
    this.gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    try {
      // Nothing more is applied until the image is taken; what was applied is committed first.
      await queue.shares(-1);
      const header: SnapshotHeader = { seq: this.pos.seq, owners: [...this.owners] };
      const image = db.serialize();
      this.gate = undefined;
      release();
      const theirs = Number((await store.info(SNAPSHOT))?.metadata?.seq ?? 0);
      if (theirs >= header.seq) {
        // Another primary (a leader a moment ago) stored a newer one.
        this.pos.snapshotSeq = Math.max(this.pos.snapshotSeq, theirs);
        return undefined;
      }
      await store.put(
        { name: SNAPSHOT, metadata: { seq: String(header.seq) } },
        snapshotStream(header, image),
      );
      const before = Math.max(this.pos.snapshotSeq, theirs);
      this.pos.snapshotSeq = header.seq;
      const purged =
        before > 0 ? (await jsm.streams.purge(this.streamName, { seq: before + 1 })).purged : 0;
      this.opts.log.info("job log compacted", {
        snapshot: header.seq,
        bytes: image.length,
        purgedBelow: before + 1,
        purged,
      });
      return header.seq;
    } catch (err) {
      this.opts.log.warn("cannot compact the job log", { err: describeError(err) });
      return undefined;
    } finally {
      this.gate = undefined;
      release();
      this.compacting = false;
    }
  }

  /** Stop following the log and close the replica (after what is under way). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.flush();
    this.stopped = true;
    this.stopConsumer?.();
    for (const ref of [...this.waiting.keys()]) this.giveUp(ref, "the job log is closed");
    await this.reloading;
    await this.replicaQueue?.close();
    this.db?.close();
  }

  /** The primary that drives the job (undefined: not in the log). */
  owner(jobId: number): string | undefined {
    return this.owners.get(jobId);
  }

  owns(jobId: number): boolean {
    return this.owners.get(jobId) === this.self;
  }

  /**
   * The leader takes over the unfinished jobs of primaries that are gone;
   * each takeover is applied only if the owner is still the one it saw.
   */
  adoptOrphans(live: ReadonlySet<string>): void {
    if (!this.attached || this.replicaJobs === undefined) return;
    for (const record of this.replicaJobs.unfinished()) {
      const owner = this.owners.get(record.id) ?? null;
      if ((owner !== null && live.has(owner)) || this.adopting.has(record.id)) continue;
      this.adopting.add(record.id);
      this.opts.log.warn("taking over a job whose primary is gone", {
        job: record.id,
        from: owner,
      });
      this.call<boolean>({ k: "owner", id: record.id, owner: this.self, expected: owner })
        .catch((err: unknown) =>
          this.opts.log.error("cannot take over a job", {
            job: record.id,
            err: describeError(err),
          }),
        )
        .finally(() => this.adopting.delete(record.id));
    }
  }

  /** Send an operation; resolves with what applying it to this replica gave. */
  call<T>(op: Op): Promise<T> {
    if (this.stopped || this.js === undefined)
      return Promise.reject(
        new QueueError(
          this.stopped ? "E_QUEUE_CLOSED" : "E_CLUSTER_UNAVAILABLE",
          this.stopped
            ? "the job log is closed"
            : "jobs are shared through NATS JetStream, and this primary has not joined it yet",
        ),
      );
    const timed = { ...op, at: this.opts.clock.now() } as Timed;
    const bytes = JSON.stringify(timed).length;
    const p = new Promise<T>((resolve, reject) => {
      this.batch.push({ op: timed, bytes, resolve: resolve as (v: unknown) => void, reject });
    });
    this.last = p.catch(() => {});
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    return p;
  }

  /** A read of the replica, after this primary's own writes. */
  async read<T>(fn: (queue: SqliteJobQueue, jobs: JobStore) => T | Promise<T>): Promise<T> {
    if (this.stopped) throw new QueueError("E_QUEUE_CLOSED", "the job log is closed");
    await this.last;
    // A replica being loaded again (a hole in the log) is read once it is back.
    await this.reloading;
    const queue = this.replicaQueue;
    const jobs = this.replicaJobs;
    if (queue === undefined || jobs === undefined)
      throw new QueueError(
        "E_CLUSTER_UNAVAILABLE",
        "jobs are shared through NATS JetStream, and this primary has not joined it yet",
      );
    return fn(queue, jobs);
  }

  /** The replica's job table, as it stands (records are applied as they are read). */
  jobsNow(): JobStore | undefined {
    return this.replicaJobs;
  }

  /** One message per turn (cut at MAX_MESSAGE_BYTES), published in call order. */
  private flush(): void {
    this.scheduled = false;
    const calls = this.batch;
    this.batch = [];
    const js = this.js;
    if (calls.length === 0 || js === undefined) return;
    let piece: Call[] = [];
    let bytes = 0;
    const send = () => {
      if (piece.length === 0) return;
      const calls = piece;
      piece = [];
      bytes = 0;
      const ref = ++this.refs;
      const message: LogMessage = {
        from: this.self,
        inst: this.inst,
        ref,
        ops: calls.map((c) => c.op),
      };
      this.waiting.set(ref, (results) => {
        if (results instanceof QueueError) {
          for (const call of calls) call.reject(results);
          return;
        }
        results.forEach((r, i) => {
          const call = calls[i];
          if (call === undefined) return;
          if (r.status === "fulfilled") call.resolve(r.value);
          else call.reject(r.reason as Error);
        });
      });
      js.publish(this.subject, JSON.stringify(message)).then(
        () => {
          // In the stream but not seen back (the log stopped being followed): not forever.
          this.opts.clock.after(SEEN_BACK_MS, () =>
            this.giveUp(ref, `not read back from the job log within ${SEEN_BACK_MS} ms`),
          );
        },
        (err: unknown) =>
          this.giveUp(
            ref,
            `the job log (NATS JetStream) did not take ${calls.length} operations: ${describeError(err)}`,
          ),
      );
    };
    for (const call of calls) {
      if (bytes + call.bytes > MAX_MESSAGE_BYTES) send();
      piece.push(call);
      bytes += call.bytes;
    }
    send();
  }

  private giveUp(ref: number, why: string): void {
    const waiter = this.waiting.get(ref);
    if (waiter === undefined) return;
    this.waiting.delete(ref);
    waiter(new QueueError("E_QUEUE_WRITE", why));
  }

  /** Apply one message's operations to the replica, in order, each at its own time. */
  private apply(message: LogMessage): void {
    const results = message.ops.map((op) => {
      this.opClock.at = op.at;
      this.applied++;
      try {
        return Promise.resolve(this.applyOp(op, message.from));
      } catch (err) {
        return Promise.reject(err);
      }
    });
    const waiter = message.inst === this.inst ? this.waiting.get(message.ref) : undefined;
    if (waiter !== undefined) {
      this.waiting.delete(message.ref);
      void Promise.allSettled(results).then(waiter);
    } else {
      // Another primary's operations: a refusal is its caller's to hear.
      for (const r of results) r.catch(() => {});
    }
  }

  private applyOp(op: Timed, from: string): unknown {
    const queue = this.replicaQueue as SqliteJobQueue;
    const jobs = this.replicaJobs as JobStore;
    switch (op.k) {
      case "insert": {
        const id = jobs.insert(op.job);
        this.owners.set(id, from);
        return id;
      }
      case "status":
        jobs.setStatus(op.id, op.status, op.finishedAt, op.reason);
        return undefined;
      case "owner": {
        const current = this.owners.get(op.id) ?? null;
        if (current !== op.expected) return false;
        this.owners.set(op.id, op.owner);
        this.opts.onOwner?.(op.id, op.owner);
        return true;
      }
      case "define":
        return queue.define(op.jobId, { retries: op.retries });
      case "enqueue":
        return queue.enqueue(op.jobId, op.items);
      case "claim":
        return queue.claim(op.jobId, op.nodeId, op.max, op.leaseMs);
      case "complete":
        return queue.complete(op.lease, op.result);
      case "fail":
        return queue.fail(op.lease, op.result, { retry: op.retry });
      case "requeue":
        return queue.requeue(op.lease, op.reason, { counts: op.counts });
      case "expire":
        return queue.expire(op.jobId);
      case "recover":
        return queue.recover(op.jobId);
      case "cancel": {
        const done = queue.cancel(op.jobId);
        if (from !== this.self && this.owns(op.jobId))
          void done.then(
            (r) => this.opts.onCancelled?.(op.jobId, from, r.running),
            () => {},
          );
        return done;
      }
      case "remove":
        return queue.remove(op.jobId);
    }
  }
}

/** The job queue interface over the log (what the conformance suite checks). */
class LoggedQueue implements JobQueue {
  private closed = false;

  constructor(private readonly log: JobLog) {}

  private call<T>(op: Op): Promise<T> {
    if (this.closed)
      return Promise.reject(new QueueError("E_QUEUE_CLOSED", "the job queue is closed"));
    return this.log.call<T>(op);
  }

  private read<T>(fn: (queue: SqliteJobQueue) => Promise<T>): Promise<T> {
    if (this.closed)
      return Promise.reject(new QueueError("E_QUEUE_CLOSED", "the job queue is closed"));
    return this.log.read((queue) => fn(queue));
  }

  define(jobId: number, opts: { retries: number }): Promise<void> {
    return this.call({ k: "define", jobId, retries: opts.retries });
  }

  async enqueue(jobId: number, items: readonly QueueItem[]): Promise<void> {
    // In pieces that fit a message; all sent in this turn, so they stay together in the log.
    const pieces: QueueItem[][] = [];
    let piece: QueueItem[] = [];
    let bytes = 0;
    for (const item of items) {
      const size = JSON.stringify(item.value ?? null).length + 24;
      if (piece.length > 0 && bytes + size > ENQUEUE_PIECE_BYTES) {
        pieces.push(piece);
        piece = [];
        bytes = 0;
      }
      piece.push(item);
      bytes += size;
    }
    if (piece.length > 0 || pieces.length === 0) pieces.push(piece);
    await Promise.all(pieces.map((p) => this.call<void>({ k: "enqueue", jobId, items: p })));
  }

  claim(jobId: number, nodeId: string, max: number, leaseMs: number): Promise<ClaimedItem[]> {
    return this.call({ k: "claim", jobId, nodeId, max, leaseMs });
  }

  complete(lease: Lease, result: ItemResult): Promise<Settled> {
    return this.call({ k: "complete", lease: plainLease(lease), result });
  }

  fail(lease: Lease, result: ItemResult, opts: { retry: boolean }): Promise<Settled> {
    return this.call({ k: "fail", lease: plainLease(lease), result, retry: opts.retry });
  }

  requeue(lease: Lease, reason: string, opts: { counts: boolean }): Promise<Settled> {
    return this.call({ k: "requeue", lease: plainLease(lease), reason, counts: opts.counts });
  }

  expire(jobId: number): Promise<TakenBack[]> {
    return this.call({ k: "expire", jobId });
  }

  recover(jobId: number): Promise<number> {
    return this.call({ k: "recover", jobId });
  }

  cancel(jobId: number): Promise<{ cancelled: number; running: Lease[] }> {
    return this.call({ k: "cancel", jobId });
  }

  counts(jobId: number): Promise<JobCounts> {
    return this.read((q) => q.counts(jobId));
  }

  shares(jobId: number): Promise<NodeShare[]> {
    return this.read((q) => q.shares(jobId));
  }

  items(jobId: number, query: ItemQuery): Promise<StoredJobItem[]> {
    return this.read((q) => q.items(jobId, query));
  }

  remove(jobId: number): Promise<void> {
    return this.call({ k: "remove", jobId });
  }

  /** No more calls through this queue; the log itself stays (its owner stops it). */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.log.read(() => undefined).catch(() => {});
    this.closed = true;
  }
}

/** A snapshot's bytes: the header's length (4 bytes, big-endian), the header as JSON, the image. */
function snapshotStream(header: SnapshotHeader, image: Buffer): ReadableStream<Uint8Array> {
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(4);
  length.writeUInt32BE(json.length);
  // Handed over piece by piece (the store cuts them in chunks): no second copy of the image.
  const parts: Uint8Array[] = [length, json, image];
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = parts.shift();
      if (next === undefined) controller.close();
      else controller.enqueue(next);
    },
  });
}

function readSnapshot(blob: Uint8Array): { header: SnapshotHeader; image: Buffer } {
  const bytes = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const length = bytes.readUInt32BE(0);
  const header = JSON.parse(bytes.subarray(4, 4 + length).toString()) as SnapshotHeader;
  if (!Number.isInteger(header.seq) || !Array.isArray(header.owners))
    throw new Error("the job log's snapshot has no sequence or owners");
  return { header, image: bytes.subarray(4 + length) };
}

/** A lease as the log carries it (a claimed item also has its value and deadline). */
function plainLease(l: Lease): Lease {
  return { jobId: l.jobId, index: l.index, attempt: l.attempt, nodeId: l.nodeId };
}

/** Job records over the log: reads from the replica, writes as operations. */
class LoggedRecords implements JobRecords {
  constructor(private readonly log: JobLog) {}

  insert(job: NewJob): Promise<number> {
    return this.log.call<number>({ k: "insert", job });
  }

  setStatus(id: number, status: JobStatus, finishedAt?: number, reason?: string): void {
    this.log
      .call({
        k: "status",
        id,
        status,
        ...(finishedAt === undefined ? {} : { finishedAt }),
        ...(reason === undefined ? {} : { reason }),
      })
      .catch(() => {
        // Refused only when the log is closed or unreachable; the owner's next start tells again.
      });
  }

  get(id: number): JobRecord | undefined {
    return this.log.jobsNow()?.get(id);
  }

  list(limit: number): JobRecord[] {
    return this.log.jobsNow()?.list(limit) ?? [];
  }

  unfinished(): JobRecord[] {
    return this.log.jobsNow()?.unfinished() ?? [];
  }
}
