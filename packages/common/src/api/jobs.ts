/**
 * Jobs as the primary stores them and its API answers with them: one task
 * run once per item on whichever selected nodes have a free slot. The one
 * definition the primary, the CLI and the dashboard share (types only).
 */

export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/** How a job's items are given. */
export type JobItems =
  /** Every whole number from `from` to `to`, both included; each fills `{item}`. */
  | { kind: "range"; from: number; to: number }
  /**
   * These values, in order: a string, number or boolean fills `{item}`; an
   * object's keys fill the task's arguments by name (and `{item.KEY}`).
   */
  | { kind: "list"; values: JsonValue[] };

/** What a stored job says about its items (a list's values are the items themselves). */
export type JobItemsSummary =
  | { kind: "range"; from: number; to: number }
  | { kind: "list"; count: number };

/**
 * `queuing` while its items are written, `running` until every item is done,
 * `cancelling` from a cancel until the items out on nodes have answered.
 */
export type JobStatus = "queuing" | "running" | "cancelling" | "ok" | "failed" | "cancelled";

/** `cancelling`: out on a node when its job was cancelled; it ends `cancelled` (or `ok`). */
export type ItemState = "queued" | "running" | "cancelling" | "ok" | "failed" | "cancelled";

export interface JobCounts {
  total: number;
  queued: number;
  /** Out on a node now (`cancelling` included). */
  running: number;
  ok: number;
  failed: number;
  cancelled: number;
}

export interface StoredJob {
  id: number;
  task: string;
  selector: string;
  items: JobItemsSummary;
  /** Argument templates: `{item}` and `{item.KEY}` are replaced per item. */
  args: Record<string, string>;
  /** Most items one node runs at once for this job (its own `max_running` caps it too). */
  perNode?: number;
  /** Times an item is tried again after its node went down, timed out, or (retryFailed) it failed. */
  retries: number;
  retryFailed: boolean;
  /** Passed to the agent for each item; absent: the task's own timeout on the node. */
  timeoutMs?: number;
  requestedBy: string;
  createdAt: number;
  finishedAt?: number;
  status: JobStatus;
  /** Why a job ended without running all its items (the primary stopped while queuing…). */
  reason?: string;
  counts: JobCounts;
  /** While it runs: selected nodes that take none of its items, and why. */
  skipped?: Array<{ nodeId: string; name: string; reason: string }>;
}

export interface StoredJobItem {
  index: number;
  value: JsonValue;
  state: ItemState;
  /** Times it was handed to a node. */
  attempts: number;
  /** Attempts that counted against `retries` (lost, timed out, failed with retryFailed). */
  tries: number;
  /** The node that ran it (the last one handed it, until it is done). */
  nodeId: string | null;
  startedAt?: number;
  finishedAt?: number;
  exitCode: number | null;
  signal: string | null;
  durationMs: number | null;
  /** The first MAX_ITEM_OUTPUT characters of stdout and stderr together. */
  output: string;
  truncated: boolean;
  /** Why it failed, or (queued again) why its last attempt did not count. */
  error?: string;
  /** Recorded from an attempt the queue had already given up on (its answer came late). */
  late: boolean;
}
