/**
 * Runs jobs: one task, once per item, on whichever selected nodes have a
 * free slot. Pull, not push: a node is handed items only up to its free
 * slots (its `[tasks] max_running`, and the job's `perNode`), and each
 * answer frees a slot and pulls the next item; so fast nodes take more, a
 * slow one is never flooded, a node that joins the selection takes items
 * at once, and one that goes down takes no more.
 *
 * The queue (queue.ts) decides what each outcome does to an item; this
 * service decides which node gets items, sends them, turns answers and
 * errors into outcomes, takes back the leases of lost nodes and expired
 * items, announces progress and writes the audit log. Jobs outlive the
 * primary: a new one resumes every unfinished job; items that were out on a
 * node when the primary stopped are queued again (their outcome is unknown
 * to it, so they run again: at least once).
 */

import {
  type Clock,
  describeError,
  type JobCounts,
  type JobItems,
  type Logger,
  type MessageMap,
  nodeMatches,
  parseSelector,
  type ResponseMap,
  SelectorError,
  type SelectorTerm,
  type StoredJob,
  type StoredJobItem,
  selectNodes,
} from "@picluster/common";
import type { AuditLog } from "../audit.js";
import type { EventBus, JobEndStatus } from "../events.js";
import type { NodeRecord, Registry } from "../registry.js";
import { RequestError } from "../session.js";
import type { LiveSessions } from "../sessions.js";
import type { JobRecord, JobRecords, NewJob } from "../store/jobs.js";
import {
  checkItemShape,
  checkItemsAgainst,
  itemChunks,
  itemCount,
  JobRequestError,
  renderArgs,
  summarize,
} from "./items.js";
import {
  type ClaimedItem,
  type ItemQuery,
  type ItemResult,
  type JobQueue,
  type Lease,
  QueueError,
  type Settled,
} from "./queue.js";

type TaskInfo = NonNullable<MessageMap["details"]["tasks"]>[number];

export interface JobRequest {
  task: string;
  /** Selector, read again as nodes come and go: `all`, names, `label=value`, a state. */
  on: string;
  items: JobItems;
  /** Argument templates: `{item}` and `{item.KEY}` are replaced per item. */
  args?: Record<string, string>;
  /** Most items of this job one node runs at once (its `max_running` caps it too). */
  perNode?: number;
  /** Times an item is tried again after a loss (node down, timeout); default 2. */
  retries?: number;
  /** Try an item that failed (non-zero exit) again too, within `retries`. */
  retryFailed?: boolean;
  /** Passed to the agent for each item, which caps it by the task's own timeout. */
  timeoutMs?: number;
  requestedBy: string;
  /** The asking token's scope (a selector): nodes outside it never take an item, even later. */
  scope?: string;
}

export interface JobServiceOptions {
  registry: Registry;
  sessions: LiveSessions;
  events: EventBus;
  jobs: JobRecords;
  queue: JobQueue;
  /**
   * The scale-out mode: jobs are shared, and this primary drives only those
   * it owns (it accepted them, or took them over from a primary that is gone).
   */
  owns?: (jobId: number) => boolean;
  clock: Clock;
  log: Logger;
  /** One line when a job starts, one per cancel, one when it ends. */
  audit: AuditLog;
}

/** Ended jobs whose per-node shares are kept in memory. */
const ENDED_KEPT = 100;

/** Slots of a node whose details do not say (an agent before maxRunning): its default max_running. */
export const DEFAULT_NODE_SLOTS = 4;
export const DEFAULT_RETRIES = 2;
export const MAX_RETRIES = 100;
/** Output kept per item (stdout and stderr together); the rest is counted as truncated. */
export const MAX_ITEM_OUTPUT = 4_096;
/** Progress events: at most this often per job. */
export const PROGRESS_EVERY_MS = 1_000;
/** Items written per transaction when a job starts: the event loop runs between pieces. */
const ENQUEUE_CHUNK = 10_000;
/** How often leases past their deadline are looked for (the request's own timeout comes first). */
const SWEEP_EVERY_MS = 1_000;
/** A node that answered E_BUSY (running other tasks) is handed nothing for this long. */
const BUSY_BACKOFF_MS = 500;
/** When neither the job nor the node says how long an item may take. */
const DEFAULT_ITEM_TIMEOUT_MS = 2 * 3_600_000;
/** Past the agent's own timeout, how long the primary still waits for the answer. */
const ANSWER_GRACE_MS = 15_000;
/** Past the request's deadline, when the stored lease runs out (a backstop: the request times out first). */
const LEASE_MARGIN_MS = 10_000;
const TASK_NAME = /^[a-z][a-z0-9._-]{0,63}$/;

interface LiveJob {
  record: JobRecord;
  terms: SelectorTerm[];
  /** The asking token's scope, when it had one. */
  scopeTerms?: SelectorTerm[];
  counts: JobCounts;
  /** Queued items not yet asked for; claims stop at 0 until an item is queued again or counted. */
  queuedHint: number;
  claiming: number;
  cancelled: boolean;
  enqueuing: boolean;
  /** This job's items on each node, claims under way included. */
  onNode: Map<string, number>;
  /** Items each node finished (ok or failed), as this primary recorded them since it took the job. */
  doneOnNode: Map<string, { ok: number; failed: number }>;
  /** Selected nodes that take none of its items, and why (each said once). */
  skipped: Map<string, { name: string; reason: string }>;
  changed: boolean;
  checking: boolean;
  recheck: boolean;
  lastProgress: { at: number; done: number };
  finished: Promise<void>;
  resolveFinished: () => void;
}

interface InFlight {
  job: LiveJob;
  lease: ClaimedItem;
  node: string;
  /** Sends `cancel` for the item's request while it is unanswered (set once it is sent). */
  cancel?: () => void;
  /** Why the primary stopped it, when it did. */
  stopped?: "cancelled" | "superseded" | "expired" | "lost" | "closing";
  output: string;
  truncated: boolean;
}

function taskInfo(node: NodeRecord, task: string): TaskInfo | undefined {
  return node.details?.tasks?.find((t) => t.name === task);
}

function nodeSlots(node: NodeRecord): number {
  return node.details?.maxRunning ?? DEFAULT_NODE_SLOTS;
}

function leaseKey(l: Lease): string {
  return `${l.jobId}:${l.index}:${l.attempt}`;
}

function done(c: JobCounts): number {
  return c.ok + c.failed + c.cancelled;
}

function wholeIn(value: number | undefined, min: number, max: number, what: string): void {
  if (value !== undefined && (!Number.isInteger(value) || value < min || value > max))
    throw new JobRequestError("E_BAD_OPTION", `${what}: expected ${min}–${max}, got ${value}`);
}

export class JobService {
  private readonly live = new Map<number, LiveJob>();
  private readonly inflight = new Map<string, InFlight>();
  /** Items on each node across all jobs, claims under way included. */
  private readonly onNode = new Map<string, number>();
  private readonly busyUntil = new Map<string, number>();
  /** Work the service started and must see end before it closes. */
  private pending = 0;
  /** Resolves `closed()`'s wait once `pending` is back to 0. */
  private onIdle: (() => void) | undefined;
  private readonly abort = new AbortController();
  private pumpScheduled = false;
  /** Each node's share of the jobs that ended lately. */
  private readonly endedNodes = new Map<number, NonNullable<StoredJob["nodes"]>>();
  private closing = false;
  private started = false;

  constructor(private readonly opts: JobServiceOptions) {}

  /** Resume the jobs a stopped primary left unfinished; then follow the nodes. */
  async start(): Promise<void> {
    const { clock } = this.opts;
    for (const record of this.opts.jobs.unfinished()) {
      if (this.opts.owns !== undefined && !this.opts.owns(record.id)) continue;
      await this.resume(record);
    }
    const off = this.opts.events.on((e) => {
      if (e.kind === "node.details")
        for (const job of this.live.values()) job.skipped.delete(e.nodeId);
      if (e.kind === "node.state" && (e.to === "down" || e.to === "left"))
        this.takeBack(e.nodeId, e.name, e.to, e.reason);
      if (
        e.kind === "node.details" ||
        e.kind === "node.joined" ||
        (e.kind === "node.state" && e.to === "alive")
      )
        this.schedulePump();
    });
    const stopTick = clock.every(Math.min(PROGRESS_EVERY_MS, SWEEP_EVERY_MS), () => this.tick());
    this.abort.signal.addEventListener(
      "abort",
      () => {
        off();
        stopTick();
      },
      { once: true },
    );
    this.started = true;
    this.schedulePump();
  }

  /** Take up an unfinished job where a stopped primary (this one, or another that is gone) left it. */
  private async resume(record: JobRecord): Promise<void> {
    const { clock, log } = this.opts;
    if (record.status === "queuing") {
      await this.abandon(record);
      return;
    }
    const requeued = await this.opts.queue.recover(record.id);
    const job = this.track(record);
    if (record.status === "cancelling") {
      job.cancelled = true;
      await this.opts.queue.cancel(record.id);
    }
    job.counts = await this.opts.queue.counts(record.id);
    // What the nodes did before the restart still shows in their shares.
    for (const share of await this.opts.queue.shares(record.id))
      job.doneOnNode.set(share.nodeId, { ok: share.ok, failed: share.failed });
    job.queuedHint = job.counts.queued;
    job.lastProgress = { at: clock.now(), done: done(job.counts) };
    log.info("job resumed", { job: record.id, task: record.task, requeued, ...job.counts });
    this.check(job);
    this.schedulePump();
  }

  /** The scale-out mode: this primary took the job over (its owner is gone); drive it from here. */
  adopt(id: number): void {
    if (!this.started || this.closing || this.live.has(id)) return;
    const record = this.opts.jobs.get(id);
    if (record === undefined || !["queuing", "running", "cancelling"].includes(record.status))
      return;
    this.follow(this.resume(record));
  }

  /** The scale-out mode: another primary took the job over; stop driving it. */
  release(id: number): void {
    const job = this.live.get(id);
    if (job === undefined) return;
    this.live.delete(id);
    this.opts.log.warn("job taken over by another primary", { job: id });
    for (const entry of this.inflight.values())
      if (entry.job === job) this.stop(entry.lease, "superseded");
    job.resolveFinished();
  }

  /** The scale-out mode: another primary cancelled a job this one drives; stop what runs. */
  cancelledElsewhere(id: number, running: readonly Lease[]): void {
    const job = this.live.get(id);
    if (job === undefined || job.cancelled) return;
    job.cancelled = true;
    job.record.status = "cancelling";
    for (const lease of running) this.stop(lease, "cancelled");
    this.opts.log.info("job cancelled on another primary", { job: id, stopping: running.length });
    job.changed = true;
    this.check(job);
  }

  /**
   * Accept a job: check it, store it, queue its items and start handing
   * them out. Throws JobRequestError (E_BAD_TASK, E_BAD_OPTION,
   * E_BAD_ITEMS, E_BAD_SELECTOR, E_NO_SUCH_NODE, E_NO_NODES, E_TASK_NOT_ALLOWED).
   */
  async submit(req: JobRequest): Promise<StoredJob> {
    if (!this.started || this.closing)
      throw new JobRequestError("E_NOT_RUNNING", "the job service is not running");
    if (!TASK_NAME.test(req.task))
      throw new JobRequestError("E_BAD_TASK", `"${req.task}" is not a task name`);
    wholeIn(req.perNode, 1, 64, "perNode");
    wholeIn(req.retries, 0, MAX_RETRIES, "retries");
    wholeIn(req.timeoutMs, 1, 7 * 86_400_000, "timeoutMs");
    checkItemShape(req.items);
    const template = req.args ?? {};
    const terms = this.parse(req.on);
    const scopeTerms = req.scope === undefined ? undefined : this.parse(req.scope);
    const { nodes: picked, unknownNames } = selectNodes(this.opts.registry.list(), terms);
    const nodes =
      scopeTerms === undefined ? picked : picked.filter((n) => nodeMatches(n, scopeTerms));
    if (unknownNames.length > 0)
      throw new JobRequestError(
        "E_NO_SUCH_NODE",
        `no node called ${unknownNames.map((n) => `"${n}"`).join(", ")}`,
      );
    if (nodes.length === 0)
      throw new JobRequestError("E_NO_NODES", `selector "${req.on}" matches no node`);
    const allowing = nodes.filter((n) => !n.legacy && taskInfo(n, req.task) !== undefined);
    const first = allowing[0];
    if (first === undefined)
      throw new JobRequestError(
        "E_TASK_NOT_ALLOWED",
        `no selected node allows task "${req.task}" (a node allows what its own config lists: [task.${req.task}] or the [tasks] switch)`,
      );
    // The first allowing node's declaration stands for all: nodes are meant to share it,
    // and each still checks every item's arguments itself.
    const problems = checkItemsAgainst(
      req.items,
      template,
      taskInfo(first, req.task)?.args ?? [],
      req.task,
    );
    if (problems.length > 0)
      throw new JobRequestError(
        "E_BAD_ITEMS",
        `the items do not fit task "${req.task}" on ${first.name}: ${problems.join("; ")}`,
      );

    const now = this.opts.clock.now();
    const total = itemCount(req.items);
    const retries = req.retries ?? DEFAULT_RETRIES;
    const fields: NewJob = {
      task: req.task,
      selector: req.on,
      items: summarize(req.items),
      args: template,
      ...(req.perNode === undefined ? {} : { perNode: req.perNode }),
      retries,
      retryFailed: req.retryFailed ?? false,
      ...(req.timeoutMs === undefined ? {} : { timeoutMs: req.timeoutMs }),
      ...(req.scope === undefined ? {} : { scope: req.scope }),
      requestedBy: req.requestedBy,
      createdAt: now,
      status: "queuing",
    };
    const id = await this.opts.jobs.insert(fields);
    const record: JobRecord = { id, ...fields };
    const job = this.track(record);
    job.enqueuing = true;
    this.audit({
      event: "job.started",
      job: id,
      task: req.task,
      on: req.on,
      items: total,
      args: template,
      by: req.requestedBy,
      perNode: req.perNode,
      retries,
      retryFailed: record.retryFailed,
      timeoutMs: req.timeoutMs,
    });
    this.opts.events.emit({
      kind: "job.started",
      at: now,
      jobId: id,
      task: req.task,
      selector: req.on,
      items: total,
      requestedBy: req.requestedBy,
    });
    for (const node of nodes) this.takes(job, node);
    try {
      await this.opts.queue.define(id, { retries });
      // Items are handed out from the first piece on, while the rest is written.
      for (const chunk of itemChunks(req.items, ENQUEUE_CHUNK)) {
        if (job.cancelled || this.closing) break;
        await this.opts.queue.enqueue(id, chunk);
        job.queuedHint += chunk.length;
        job.counts.total += chunk.length;
        job.counts.queued += chunk.length;
        this.schedulePump();
      }
    } catch (err) {
      this.live.delete(id);
      const reason = `its items could not be stored: ${describeError(err)}`;
      this.opts.jobs.setStatus(id, "failed", this.opts.clock.now(), reason);
      this.announceEnd(job, "failed", reason);
      throw err;
    }
    job.enqueuing = false;
    if (!job.cancelled && !this.closing) {
      job.record.status = "running";
      this.opts.jobs.setStatus(id, "running");
    }
    this.check(job);
    return this.view(job);
  }

  /** A job as it stands (live or stored). */
  async get(id: number): Promise<StoredJob | undefined> {
    const job = this.live.get(id);
    const record = job?.record ?? this.opts.jobs.get(id);
    if (record === undefined) return undefined;
    // Counted now: the live job's counts are only as fresh as its last answer.
    const counts = await this.opts.queue.counts(id);
    if (job !== undefined) return { ...this.view(job), counts };
    if (!this.endedNodes.has(id)) {
      // Ended before this primary started: the shares are read from the items once.
      const shares = await this.opts.queue.shares(id);
      this.keepEnded(
        id,
        shares.map((s) => ({
          ...s,
          name: this.opts.registry.get(s.nodeId)?.name ?? s.nodeId,
          running: 0,
        })),
      );
    }
    return this.ended(record, counts);
  }

  /** A job no longer running: its record and counts, and its nodes' shares when known. */
  private ended(record: JobRecord, counts: JobCounts): StoredJob {
    const nodes = this.endedNodes.get(record.id);
    return { ...record, counts, ...(nodes === undefined || nodes.length === 0 ? {} : { nodes }) };
  }

  /** The most recent jobs, newest first. */
  async list(limit: number): Promise<StoredJob[]> {
    return Promise.all(
      this.opts.jobs.list(limit).map(async (record) => {
        const job = this.live.get(record.id);
        const counts = await this.opts.queue.counts(record.id);
        return job === undefined ? this.ended(record, counts) : { ...this.view(job), counts };
      }),
    );
  }

  /** A job's items with their results, in index order. */
  items(id: number, query: ItemQuery): Promise<StoredJobItem[]> {
    return this.opts.queue.items(id, query);
  }

  /**
   * Cancel a job: no item is handed out any more, queued ones end
   * cancelled, running ones are told to stop (and end cancelled, unless
   * they succeed first). Resolves with the job, or undefined if unknown.
   */
  async cancel(id: number, by: string): Promise<StoredJob | undefined> {
    const job = this.live.get(id);
    if (job === undefined) {
      const record = this.opts.jobs.get(id);
      if (
        this.opts.owns !== undefined &&
        record !== undefined &&
        (record.status === "running" || record.status === "queuing")
      ) {
        // Driven by another primary: the cancel goes through the shared log, and its owner stops what runs.
        this.opts.jobs.setStatus(id, "cancelling");
        this.audit({ event: "job.cancel", job: id, task: record.task, by });
        await this.opts.queue.cancel(id);
        this.opts.log.info("job cancelled (driven by another primary)", { job: id, by });
      }
      return this.get(id);
    }
    if (job.cancelled) return this.view(job);
    job.cancelled = true;
    job.record.status = "cancelling";
    this.opts.jobs.setStatus(id, "cancelling");
    this.audit({ event: "job.cancel", job: id, task: job.record.task, by });
    const { cancelled, running } = await this.opts.queue.cancel(id);
    for (const lease of running) this.stop(lease, "cancelled");
    this.opts.log.info("job cancelled", { job: id, by, cancelled, stopping: running.length });
    job.changed = true;
    this.check(job);
    return this.view(job);
  }

  /** Resolves when the job has finished (tests; the API's wait). */
  async settled(id: number): Promise<void> {
    await this.live.get(id)?.finished;
  }

  /**
   * Stop handing out items and stop what runs (the nodes are told to
   * cancel); those items are queued again, not counted as tries, and the
   * next primary resumes every job. Call before the sessions close.
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.abort.abort();
    for (const entry of this.inflight.values()) {
      entry.stopped = "closing";
      entry.cancel?.();
    }
    // What is under way ends once its node answers or its session closes.
    if (this.pending > 0)
      await new Promise<void>((resolve) => {
        this.onIdle = resolve;
      });
    await this.opts.queue.close();
    for (const job of this.live.values()) job.resolveFinished();
  }

  private parse(on: string): SelectorTerm[] {
    try {
      return parseSelector(on);
    } catch (err) {
      if (err instanceof SelectorError) throw new JobRequestError("E_BAD_SELECTOR", err.message);
      throw err;
    }
  }

  private track(record: JobRecord): LiveJob {
    const job = this.newJob(record);
    this.live.set(record.id, job);
    return job;
  }

  private newJob(record: JobRecord): LiveJob {
    let resolveFinished = () => {};
    const finished = new Promise<void>((resolve) => {
      resolveFinished = resolve;
    });
    const job: LiveJob = {
      record,
      terms: this.parse(record.selector),
      ...(record.scope === undefined ? {} : { scopeTerms: this.parse(record.scope) }),
      counts: { total: 0, queued: 0, running: 0, ok: 0, failed: 0, cancelled: 0 },
      queuedHint: 0,
      claiming: 0,
      cancelled: false,
      enqueuing: false,
      onNode: new Map(),
      doneOnNode: new Map(),
      skipped: new Map(),
      changed: false,
      checking: false,
      recheck: false,
      lastProgress: { at: this.opts.clock.now(), done: 0 },
      finished,
      resolveFinished,
    };
    return job;
  }

  /** A job left `queuing` by a primary that stopped: some of its items may never have been written. */
  private async abandon(record: JobRecord): Promise<void> {
    const reason = "the primary stopped while its items were being stored; start it again";
    try {
      await this.opts.queue.recover(record.id);
      await this.opts.queue.cancel(record.id);
    } catch (err) {
      // No queue yet (it stopped before the first write): nothing to cancel.
      if (!(err instanceof QueueError && err.code === "E_NO_QUEUE")) throw err;
    }
    this.opts.jobs.setStatus(record.id, "failed", this.opts.clock.now(), reason);
    this.opts.log.warn("job left unfinished while queuing marked failed", { job: record.id });
    const job = this.newJob(record);
    try {
      job.counts = await this.opts.queue.counts(record.id);
    } catch (err) {
      if (!(err instanceof QueueError && err.code === "E_NO_QUEUE")) throw err;
    }
    this.announceEnd(job, "failed", reason);
  }

  private keepEnded(id: number, nodes: NonNullable<StoredJob["nodes"]>): void {
    this.endedNodes.set(id, nodes);
    for (const old of this.endedNodes.keys()) {
      if (this.endedNodes.size <= ENDED_KEPT) break;
      this.endedNodes.delete(old);
    }
  }

  private view(job: LiveJob): StoredJob {
    const skipped = [...job.skipped].map(([nodeId, s]) => ({ nodeId, ...s }));
    const ids = new Set([...job.onNode.keys(), ...job.doneOnNode.keys()]);
    const nodes = [...ids].map((nodeId) => ({
      nodeId,
      name: this.opts.registry.get(nodeId)?.name ?? nodeId,
      running: job.onNode.get(nodeId) ?? 0,
      ok: job.doneOnNode.get(nodeId)?.ok ?? 0,
      failed: job.doneOnNode.get(nodeId)?.failed ?? 0,
    }));
    return {
      ...structuredClone(job.record),
      counts: { ...job.counts },
      ...(skipped.length === 0 ? {} : { skipped }),
      ...(nodes.length === 0 ? {} : { nodes }),
    };
  }

  /** Whether `node` takes items of `job` now; a selected node that never will is skipped, said once. */
  private takes(job: LiveJob, node: NodeRecord): boolean {
    if (!nodeMatches(node, job.terms) || job.skipped.has(node.id)) return false;
    if (job.scopeTerms !== undefined && !nodeMatches(node, job.scopeTerms)) return false;
    let reason: string | undefined;
    if (node.legacy) reason = "a tutorial (legacy) node: never sent tasks";
    else if (node.details === undefined)
      return false; // Just connected: its details tell.
    else if (taskInfo(node, job.record.task) === undefined)
      reason = `its config does not allow task "${job.record.task}"`;
    if (reason !== undefined) {
      this.skip(job, node.id, node.name, reason);
      return false;
    }
    return true;
  }

  private skip(job: LiveJob, nodeId: string, name: string, reason: string): void {
    if (job.skipped.has(nodeId)) return;
    job.skipped.set(nodeId, { name, reason });
    this.opts.log.info("node skipped for a job", { job: job.record.id, node: name, reason });
    this.opts.events.emit({
      kind: "job.node_skipped",
      at: this.opts.clock.now(),
      jobId: job.record.id,
      task: job.record.task,
      nodeId,
      name,
      reason,
    });
  }

  private schedulePump(): void {
    if (this.pumpScheduled || this.closing || !this.started) return;
    this.pumpScheduled = true;
    // Once per turn of the event loop, however many answers came in it.
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Fill every eligible node's free slots, oldest job first. */
  private pump(): void {
    if (this.closing) return;
    const jobs = [...this.live.values()].filter((j) => !j.cancelled && j.queuedHint > 0);
    if (jobs.length === 0) return;
    const now = this.opts.clock.now();
    for (const node of this.opts.registry.list()) {
      if (node.state !== "alive" || !this.opts.sessions.has(node.id)) continue;
      if ((this.busyUntil.get(node.id) ?? 0) > now) continue;
      const slots = nodeSlots(node);
      let free = slots - (this.onNode.get(node.id) ?? 0);
      for (const job of jobs) {
        if (free <= 0) break;
        if (job.queuedHint <= 0 || !this.takes(job, node)) continue;
        const mine = job.onNode.get(node.id) ?? 0;
        const take = Math.min(free, (job.record.perNode ?? slots) - mine, job.queuedHint);
        if (take <= 0) continue;
        free -= take;
        this.claim(job, node, take);
      }
    }
  }

  private reserve(job: LiveJob, nodeId: string, n: number): void {
    if (n === 0) return;
    job.onNode.set(nodeId, (job.onNode.get(nodeId) ?? 0) + n);
    this.onNode.set(nodeId, (this.onNode.get(nodeId) ?? 0) + n);
  }

  private claim(job: LiveJob, node: NodeRecord, take: number): void {
    this.reserve(job, node.id, take);
    job.queuedHint -= take;
    job.claiming++;
    const id = job.record.id;
    this.follow(
      this.opts.queue.claim(id, node.id, take, this.requestMs(job, node) + LEASE_MARGIN_MS).then(
        (items) => {
          job.claiming--;
          this.reserve(job, node.id, items.length - take);
          // Fewer than asked: nothing more is queued until an item comes back or a count says so.
          if (items.length < take) job.queuedHint = 0;
          for (const item of items) this.dispatch(job, node, item);
        },
        (err: unknown) => {
          job.claiming--;
          this.reserve(job, node.id, -take);
          this.opts.log.error("cannot claim items", { job: id, err: describeError(err) });
        },
      ),
    );
  }

  /** How long the primary waits for an item's answer on `node`. */
  private requestMs(job: LiveJob, node: NodeRecord): number {
    const own = taskInfo(node, job.record.task)?.timeoutMs;
    return (job.record.timeoutMs ?? own ?? DEFAULT_ITEM_TIMEOUT_MS) + ANSWER_GRACE_MS;
  }

  private dispatch(job: LiveJob, node: NodeRecord, item: ClaimedItem): void {
    const session = this.opts.sessions.get(item.nodeId);
    const entry: InFlight = {
      job,
      lease: item,
      node: node.name,
      output: "",
      truncated: false,
    };
    this.inflight.set(leaseKey(item), entry);
    if (session === undefined || this.closing || job.cancelled) {
      // Claimed but never sent: it goes back without costing a try (or ends cancelled).
      this.finished(entry);
      this.settle(
        job,
        this.opts.queue.requeue(item, `not sent: ${node.name} is gone`, { counts: false }),
      );
      return;
    }
    let args: Record<string, string>;
    try {
      args = renderArgs(job.record.args, item.value);
    } catch (err) {
      this.finished(entry);
      this.settle(
        job,
        this.opts.queue.fail(item, { ...noResult(), error: describeError(err) }, { retry: false }),
      );
      return;
    }
    const timeoutMs = this.requestMs(job, node);
    this.follow(
      session
        .request(
          "task.run",
          {
            task: job.record.task,
            args,
            ...(job.record.timeoutMs === undefined ? {} : { timeoutMs: job.record.timeoutMs }),
          },
          timeoutMs,
          {
            onSent: (cancel) => {
              entry.cancel = cancel;
            },
            onOutput: (out) => keep(entry, out.data),
          },
        )
        .then(
          (answer) => this.answered(entry, answer),
          (err: unknown) => this.refused(entry, err, timeoutMs),
        ),
    );
  }

  /** The item left its node (answered or not): its slot is free. */
  private finished(entry: InFlight): void {
    this.inflight.delete(leaseKey(entry.lease));
    this.reserve(entry.job, entry.lease.nodeId, -1);
    this.schedulePump();
  }

  private answered(entry: InFlight, answer: ResponseMap["task.run"]): void {
    this.finished(entry);
    const { job, lease } = entry;
    const result: ItemResult = {
      exitCode: answer.exitCode,
      signal: answer.signal,
      durationMs: answer.durationMs,
      output: entry.output,
      truncated: entry.truncated || answer.truncated,
    };
    if (answer.exitCode === 0) {
      this.settle(job, this.opts.queue.complete(lease, result), lease.nodeId);
      return;
    }
    if (answer.timedOut === true && entry.stopped === undefined) {
      // Past its timeout the item is lost, not failed: tried again within the retries.
      this.settle(
        job,
        this.opts.queue.requeue(
          lease,
          `${entry.node}: timed out after ${answer.durationMs} ms and was killed`,
          { counts: true },
        ),
      );
      return;
    }
    if (entry.stopped === "closing") {
      this.settle(
        job,
        this.opts.queue.requeue(lease, "stopped: the primary was shutting down", { counts: false }),
      );
      return;
    }
    const error =
      answer.signal !== null ? `killed by ${answer.signal}` : `exit code ${answer.exitCode}`;
    this.settle(
      job,
      this.opts.queue.fail(
        lease,
        { ...result, error: `${entry.node}: ${error}` },
        { retry: job.record.retryFailed && !job.cancelled },
      ),
      lease.nodeId,
    );
  }

  private refused(entry: InFlight, err: unknown, timeoutMs: number): void {
    this.finished(entry);
    const { job, lease } = entry;
    const code = err instanceof RequestError ? err.code : undefined;
    const requeue = (reason: string, counts: boolean) =>
      this.settle(job, this.opts.queue.requeue(lease, reason, { counts }));
    if (entry.stopped === "closing") {
      requeue("stopped: the primary was shutting down", false);
      return;
    }
    switch (code) {
      case "E_BUSY":
        // The node runs other tasks (a task run, another primary's request): not this item's fault.
        this.busyUntil.set(lease.nodeId, this.opts.clock.now() + BUSY_BACKOFF_MS);
        requeue(`${entry.node} was busy`, false);
        return;
      case "E_NOT_ALLOWED":
        // Its details were out of date: it takes no more of this job's items.
        this.skip(job, lease.nodeId, entry.node, describeError(err));
        requeue(`${entry.node} does not allow the task`, false);
        return;
      case "E_BAD_ARGS":
        this.settle(
          job,
          this.opts.queue.fail(
            lease,
            { ...noResult(), error: `${entry.node}: ${describeError(err)}` },
            { retry: false },
          ),
        );
        return;
      case "E_DISCONNECTED":
        requeue(`${entry.node} disconnected while it ran`, true);
        return;
      case "E_TIMEOUT":
        requeue(`no answer from ${entry.node} within ${timeoutMs} ms`, true);
        return;
      default:
        requeue(`${entry.node}: ${describeError(err)}`, true);
    }
  }

  /**
   * A node went down (silent, or its connection dropped) or left: what it
   * holds goes back to the queue as a try, and it is told to stop should it
   * still hear. A closed connection also fails its requests; whichever
   * comes second finds the lease stale and changes nothing.
   */
  private takeBack(nodeId: string, name: string, state: string, reason: string): void {
    for (const entry of this.inflight.values()) {
      if (entry.lease.nodeId !== nodeId || entry.stopped !== undefined) continue;
      entry.stopped = "lost";
      this.settle(
        entry.job,
        this.opts.queue.requeue(entry.lease, `${name} went ${state} (${reason}) while it ran`, {
          counts: true,
        }),
      );
      entry.cancel?.();
    }
  }

  /** Stop the request holding `lease`, if it is still out. */
  private stop(lease: Lease, why: NonNullable<InFlight["stopped"]>): void {
    const entry = this.inflight.get(leaseKey(lease));
    if (entry === undefined) return;
    entry.stopped ??= why;
    entry.cancel?.();
  }

  private settle(job: LiveJob, outcome: Promise<Settled>, nodeId?: string): void {
    this.follow(
      outcome.then(
        (s) => {
          if (s.applied) {
            job.changed = true;
            if (nodeId !== undefined && (s.state === "ok" || s.state === "failed")) {
              const tally = job.doneOnNode.get(nodeId) ?? { ok: 0, failed: 0 };
              tally[s.state] += 1;
              job.doneOnNode.set(nodeId, tally);
            }
            if (s.state === "queued") {
              job.queuedHint++;
              this.schedulePump();
            }
            if (s.superseded !== undefined) this.stop(s.superseded, "superseded");
          }
          this.check(job);
        },
        (err: unknown) =>
          this.opts.log.error("cannot record an item's outcome", {
            job: job.record.id,
            err: describeError(err),
          }),
      ),
    );
  }

  /** Count the job's items (after what was recorded so far); finish it when none is left. */
  private check(job: LiveJob): void {
    if (this.closing || !this.live.has(job.record.id)) return;
    if (job.checking) {
      job.recheck = true;
      return;
    }
    job.checking = true;
    this.follow(
      this.opts.queue.counts(job.record.id).then(
        (counts) => {
          job.checking = false;
          job.counts = counts;
          // With no claim under way the count is exact; requeues after it add themselves.
          if (job.claiming === 0 && !job.cancelled) job.queuedHint = counts.queued;
          if (job.recheck) {
            job.recheck = false;
            this.check(job);
          } else if (!job.enqueuing && counts.queued === 0 && counts.running === 0) {
            this.finish(job);
          }
        },
        (err: unknown) => {
          job.checking = false;
          this.opts.log.error("cannot count a job's items", {
            job: job.record.id,
            err: describeError(err),
          });
        },
      ),
    );
  }

  private finish(job: LiveJob): void {
    if (this.closing || !this.live.has(job.record.id)) return;
    // Each node's share stays at hand after the end (older ones are read again from the items).
    const { nodes } = this.view(job);
    if (nodes !== undefined) this.keepEnded(job.record.id, nodes);
    this.live.delete(job.record.id);
    const { counts } = job;
    const status: JobEndStatus = job.cancelled
      ? "cancelled"
      : counts.failed > 0 || counts.cancelled > 0
        ? "failed"
        : "ok";
    const at = this.opts.clock.now();
    job.record.status = status;
    job.record.finishedAt = at;
    this.opts.jobs.setStatus(job.record.id, status, at);
    // Answers still out belong to leases the queue already gave up on.
    for (const entry of this.inflight.values())
      if (entry.job === job) this.stop(entry.lease, "superseded");
    this.announceEnd(job, status);
  }

  private announceEnd(job: LiveJob, status: JobEndStatus, reason?: string): void {
    const at = this.opts.clock.now();
    const { counts, record } = job;
    this.progress(job, at);
    const durationMs = at - record.createdAt;
    this.audit({
      event: "job.finished",
      job: record.id,
      task: record.task,
      by: record.requestedBy,
      status,
      total: counts.total,
      ok: counts.ok,
      failed: counts.failed,
      cancelled: counts.cancelled,
      durationMs,
      ...(reason === undefined ? {} : { reason }),
    });
    this.opts.events.emit({
      kind: "job.finished",
      at,
      jobId: record.id,
      task: record.task,
      status,
      total: counts.total,
      ok: counts.ok,
      failed: counts.failed,
      cancelled: counts.cancelled,
      durationMs,
    });
    job.resolveFinished();
  }

  private progress(job: LiveJob, at: number): void {
    const { counts } = job;
    const finished = done(counts);
    const seconds = Math.max(0.001, (at - job.lastProgress.at) / 1_000);
    this.opts.events.emit({
      kind: "job.progress",
      at,
      jobId: job.record.id,
      task: job.record.task,
      ...counts,
      perSecond: Math.round((finished - job.lastProgress.done) / seconds),
    });
    job.lastProgress = { at, done: finished };
    job.changed = false;
  }

  /** Once a second: progress, expired leases, busy nodes ready again, claims that stopped short. */
  private tick(): void {
    if (this.closing) return;
    const now = this.opts.clock.now();
    for (const job of this.live.values()) {
      if (job.changed && now - job.lastProgress.at >= PROGRESS_EVERY_MS) this.progress(job, now);
      this.follow(
        this.opts.queue.expire(job.record.id).then(
          (taken) => {
            for (const t of taken) {
              this.stop(t.lease, "expired");
              if (t.state === "queued") job.queuedHint++;
            }
            if (taken.length > 0) {
              this.opts.log.warn("leases expired, items taken back", {
                job: job.record.id,
                items: taken.length,
              });
              job.changed = true;
              this.check(job);
              this.schedulePump();
            }
          },
          (err: unknown) =>
            this.opts.log.error("cannot take back expired leases", {
              job: job.record.id,
              err: describeError(err),
            }),
        ),
      );
      // Counts (and the queued hint) stay fresh while nothing is answered.
      this.check(job);
    }
    this.schedulePump();
  }

  /** Keep `p` until it settles, so close() can wait for it; a failure in it is logged, never lost. */
  /** Count work under way until it ends (one reaction each: this runs several times an item). */
  private follow(p: Promise<unknown>): void {
    this.pending++;
    p.then(
      () => this.followed(),
      (err: unknown) => {
        this.opts.log.error("job step failed", { err: describeError(err) });
        this.followed();
      },
    );
  }

  private followed(): void {
    if (--this.pending === 0 && this.onIdle !== undefined) {
      const resolve = this.onIdle;
      this.onIdle = undefined;
      resolve();
    }
  }

  private audit(record: Record<string, unknown>): void {
    this.opts.audit.write(record);
  }
}

function noResult(): ItemResult {
  return { exitCode: null, signal: null, durationMs: null, output: "", truncated: false };
}

function keep(entry: InFlight, data: string): void {
  const room = MAX_ITEM_OUTPUT - entry.output.length;
  if (room <= 0) {
    entry.truncated = true;
    return;
  }
  entry.output += data.slice(0, room);
  if (data.length > room) entry.truncated = true;
}
