/**
 * The job queue: a job's items, handed out in leases to the nodes that have
 * a free slot, each item's result recorded once. One interface for every
 * backend (SQLite embedded today, a JetStream work queue in scale-out mode
 * next); `test/jobs/queue-conformance.ts` is the suite every backend passes.
 *
 * The rules a backend keeps:
 * - Every method resolves only after what it changed is durable (ack after
 *   commit): a caller may announce or count what a resolved call returned.
 * - Calls take effect in the order they were made.
 * - A claim hands an item to one node at a time: a leased item is never
 *   claimed again until it is requeued (its node lost, its lease expired).
 * - `attempt` counts an item's claims and is its lease's token: outcomes
 *   name the lease they answer, and an outcome for a lease that is no
 *   longer the item's current one is *stale*.
 * - A result is recorded once. A stale success is still recorded when the
 *   item is not yet done (the work was done; the attempt now holding the
 *   item is `superseded`, for the caller to cancel, and its answer is then
 *   ignored); a stale failure or loss changes nothing (the current attempt
 *   decides). Anything for an item already done is ignored.
 * - An item is tried at most `retries + 1` times: losses (node down, lease
 *   expired) count, and failures when the caller asks for a retry; a claim
 *   refused before it ran (node busy, task not allowed there) need not.
 */
import {
  type ItemState,
  type JobCounts,
  type JsonValue,
  PiclusterError,
  type StoredJobItem,
} from "@picluster/common";

/** E_NO_QUEUE (not defined), E_JOB_CANCELLED (enqueue after cancel), E_QUEUE_CLOSED, E_QUEUE_WRITE. */
export class QueueError extends PiclusterError {}

export interface QueueItem {
  /** The item's place in its job, unique within it. */
  index: number;
  value: JsonValue;
}

/** One hand-out of an item to a node. */
export interface Lease {
  jobId: number;
  index: number;
  /** How many times the item was claimed, this time included: the lease's token. */
  attempt: number;
  nodeId: string;
}

export interface ClaimedItem extends Lease {
  value: JsonValue;
  /** When the queue takes the item back if nothing was heard (clock ms). */
  leaseUntil: number;
}

/** What a node answered for an item. */
export interface ItemResult {
  exitCode: number | null;
  signal: string | null;
  durationMs: number | null;
  output: string;
  truncated: boolean;
  /** Why it failed, in words (a refusal from the node, a signal, an exit code). */
  error?: string;
}

/** What an outcome did to its item. */
export type Settled =
  | {
      applied: true;
      /** The item's state now: `queued` means it will be tried again. */
      state: ItemState;
      /** Recorded from a stale lease (the item was not yet done). */
      late: boolean;
      /** The lease this late result displaced, still out on a node: cancel it. */
      superseded?: Lease;
    }
  /** Nothing changed: the lease is stale, or the item was already done. */
  | { applied: false; state: ItemState | undefined };

/** A lease the queue took back, and what became of its item. */
export interface TakenBack {
  lease: Lease;
  state: ItemState;
}

/** How many of a job's items a node finished, by outcome. */
export interface NodeShare {
  nodeId: string;
  ok: number;
  failed: number;
}

export interface ItemQuery {
  /** Items with an index greater than this. */
  after?: number;
  state?: ItemState;
  limit: number;
}

export interface JobQueue {
  /** Make (or update) a job's queue. Items are tried at most `retries + 1` times. */
  define(jobId: number, opts: { retries: number }): Promise<void>;
  /** Add items; an index already in the job is left as it is. Throws E_NO_QUEUE, E_JOB_CANCELLED. */
  enqueue(jobId: number, items: readonly QueueItem[]): Promise<void>;
  /** Lease up to `max` queued items (lowest index first) to `nodeId` for `leaseMs`. */
  claim(jobId: number, nodeId: string, max: number, leaseMs: number): Promise<ClaimedItem[]>;
  /** The node ran the item and it succeeded. */
  complete(lease: Lease, result: ItemResult): Promise<Settled>;
  /** The node ran the item and it failed; `retry` queues it again while tries are left. */
  fail(lease: Lease, result: ItemResult, opts: { retry: boolean }): Promise<Settled>;
  /**
   * The item did not run to an answer (node down, timeout, busy, not
   * allowed there): queue it again. `counts` makes it a try; past the
   * retries it fails with `reason`.
   */
  requeue(lease: Lease, reason: string, opts: { counts: boolean }): Promise<Settled>;
  /** Take back every lease of the job past its deadline, each counted as a try. */
  expire(jobId: number): Promise<TakenBack[]>;
  /**
   * After a restart nobody holds the job's leases: queue every running item
   * again (not counted as a try). Returns how many.
   */
  recover(jobId: number): Promise<number>;
  /**
   * No more claims or items: queued items end `cancelled`; running ones
   * become `cancelling` (returned, for the caller to stop) and end
   * `cancelled` whatever their answer but success.
   */
  cancel(jobId: number): Promise<{ cancelled: number; running: Lease[] }>;
  counts(jobId: number): Promise<JobCounts>;
  /** Each node's finished items (ok or failed, by the node that ran the last try), from what is stored. */
  shares(jobId: number): Promise<NodeShare[]>;
  items(jobId: number, query: ItemQuery): Promise<StoredJobItem[]>;
  /** Forget a job's queue and items. */
  remove(jobId: number): Promise<void>;
  /** Commit what is pending; later calls are refused with E_QUEUE_CLOSED. */
  close(): Promise<void>;
}

/** States an item does not leave. */
export function isFinal(state: ItemState): boolean {
  return state === "ok" || state === "failed" || state === "cancelled";
}
