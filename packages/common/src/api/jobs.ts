/**
 * Jobs as the primary stores them and its API answers with them: one task
 * run once per item on whichever selected nodes have a free slot. The one
 * definition the primary, the CLI and the dashboard share: TypeBox schemas
 * (the routes' response schemas) and the types inferred from them.
 */
import Type, { type Static } from "typebox";

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

const Count = Type.Integer({ minimum: 0 });
/** Any JSON value (an item as given); serialised as it is. */
const Json = Type.Unsafe<JsonValue>({});

export const JobCountsSchema = Type.Object({
  total: Count,
  queued: Count,
  /** Out on a node now (`cancelling` included). */
  running: Count,
  ok: Count,
  failed: Count,
  cancelled: Count,
});
export type JobCounts = Static<typeof JobCountsSchema>;

const Strings = <const T extends readonly string[]>(values: T) =>
  Type.Unsafe<T[number]>({ type: "string", enum: [...values] });

export const StoredJobSchema = Type.Object({
  id: Type.Integer(),
  task: Type.String(),
  selector: Type.String(),
  items: Type.Union([
    Type.Object({ kind: Type.Literal("range"), from: Type.Integer(), to: Type.Integer() }),
    Type.Object({ kind: Type.Literal("list"), count: Count }),
  ]),
  /** Argument templates: `{item}` and `{item.KEY}` are replaced per item. */
  args: Type.Record(Type.String(), Type.String()),
  /** Most items one node runs at once for this job (its own `max_running` caps it too). */
  perNode: Type.Optional(Type.Integer()),
  /** The scope of the token that started it: nodes outside it take no item. */
  scope: Type.Optional(Type.String()),
  /** Times an item is tried again after its node went down, timed out, or (retryFailed) it failed. */
  retries: Type.Integer(),
  retryFailed: Type.Boolean(),
  /** Passed to the agent for each item; absent: the task's own timeout on the node. */
  timeoutMs: Type.Optional(Type.Number()),
  requestedBy: Type.String(),
  createdAt: Type.Number(),
  finishedAt: Type.Optional(Type.Number()),
  status: Strings(["queuing", "running", "cancelling", "ok", "failed", "cancelled"] as const),
  /** Why a job ended without running all its items (the primary stopped while queuing…). */
  reason: Type.Optional(Type.String()),
  counts: JobCountsSchema,
  /**
   * Each node's items now (claims included) and the ones it finished (by
   * the node that ran the last try), for progress and throughput per node.
   */
  nodes: Type.Optional(
    Type.Array(
      Type.Object({
        nodeId: Type.String(),
        name: Type.String(),
        running: Count,
        ok: Count,
        failed: Count,
      }),
    ),
  ),
  /** While it runs: selected nodes that take none of its items, and why. */
  skipped: Type.Optional(
    Type.Array(Type.Object({ nodeId: Type.String(), name: Type.String(), reason: Type.String() })),
  ),
});
export type StoredJob = Static<typeof StoredJobSchema>;

export const StoredJobItemSchema = Type.Object({
  index: Count,
  value: Json,
  state: Strings(["queued", "running", "cancelling", "ok", "failed", "cancelled"] as const),
  /** Times it was handed to a node. */
  attempts: Count,
  /** Attempts that counted against `retries` (lost, timed out, failed with retryFailed). */
  tries: Count,
  /** The node that ran it (the last one handed it, until it is done). */
  nodeId: Type.Union([Type.String(), Type.Null()]),
  startedAt: Type.Optional(Type.Number()),
  finishedAt: Type.Optional(Type.Number()),
  exitCode: Type.Union([Type.Integer(), Type.Null()]),
  signal: Type.Union([Type.String(), Type.Null()]),
  durationMs: Type.Union([Type.Number(), Type.Null()]),
  /** The first MAX_ITEM_OUTPUT characters of stdout and stderr together. */
  output: Type.String(),
  truncated: Type.Boolean(),
  /** Why it failed, or (queued again) why its last attempt did not count. */
  error: Type.Optional(Type.String()),
  /** Recorded from an attempt the queue had already given up on (its answer came late). */
  late: Type.Boolean(),
});
export type StoredJobItem = Static<typeof StoredJobItemSchema>;

export const JobListSchema = Type.Object({ jobs: Type.Array(StoredJobSchema) });
export const JobResultsSchema = Type.Object({
  items: Type.Array(StoredJobItemSchema),
  /** Without the token: outputs and errors are left out. */
  redacted: Type.Boolean(),
});
