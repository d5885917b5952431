/**
 * What happens in the cluster, as data. The registry emits these; readers
 * (logs, the store, the stream, alerts) subscribe. Nothing reaches back.
 */
import type { Logger, NodeState, StoreFailureCause } from "@picluster/common";

/** Why the primary's store cannot write (see storeFailureCause in store.ts). */
export type { NodeState, StoreFailureCause };

/** Throttling flags that get an event of their own when they turn on or off. */
export type ThrottleFlag = "underVoltage" | "freqCapped" | "throttled" | "softTempLimit";

export type ClusterEvent =
  | { kind: "node.joined"; at: number; nodeId: string; name: string }
  | {
      kind: "node.state";
      at: number;
      nodeId: string;
      name: string;
      from: NodeState | undefined;
      to: NodeState;
      reason: string;
    }
  | {
      kind: "node.throttling";
      at: number;
      nodeId: string;
      name: string;
      flag: ThrottleFlag;
      on: boolean;
    }
  /** One of the node's checks (`[check.NAME]`) changed state, or was first seen down. */
  | {
      kind: "check.down" | "check.up";
      at: number;
      nodeId: string;
      name: string;
      check: string;
      checkKind: string;
      target: string;
      reason: string;
    }
  /**
   * One of the node's containers changed state between two samples
   * (running → exited, exited → running, → restarting…); a container seen for
   * the first time or gone from the list is not news.
   */
  | {
      kind: "container.state";
      at: number;
      nodeId: string;
      name: string;
      container: string;
      image: string;
      from: string;
      to: string;
      /** When it exited: its exit code. */
      exitCode?: number;
    }
  /**
   * Its details changed in a way a person cares about (not a boot-time
   * jitter or an update count): `changes` says what, in words
   * ("kernel 6.6.51 → 6.6.62"); the first details of a node are `first`,
   * with one line saying what it is.
   */
  | {
      kind: "node.details";
      at: number;
      nodeId: string;
      name: string;
      changes: string[];
      first?: boolean;
    }
  /**
   * Forgotten on purpose (`picluster node remove`): its record is gone, its
   * credential revoked; `keepHistory` says whether its samples and events were kept.
   */
  | {
      kind: "node.removed";
      at: number;
      nodeId: string;
      name: string;
      keepHistory: boolean;
      requestedBy: string;
    }
  | { kind: "node.vitals"; at: number; nodeId: string; name: string; seq: number | undefined }
  | {
      kind: "task.started";
      at: number;
      runId: number;
      task: string;
      selector: string;
      nodes: number;
      requestedBy: string;
    }
  | {
      kind: "task.node";
      at: number;
      runId: number;
      task: string;
      nodeId: string;
      name: string;
      status: NodeRunStatus;
      exitCode: number | null;
      signal: string | null;
      durationMs: number | null;
      error?: string;
    }
  | {
      kind: "task.finished";
      at: number;
      runId: number;
      task: string;
      status: TaskRunStatus;
      ok: number;
      failed: number;
      skipped: number;
      cancelled: number;
    }
  /** An alert rule started to hold for a node (for its whole `for`). */
  | {
      kind: "alert.firing";
      at: number;
      rule: string;
      nodeId: string;
      name: string;
      severity: "critical" | "warning" | "info";
      value: number;
      threshold: number;
      /** The notification's title, in plain words. */
      title: string;
    }
  /** It stopped holding (or the node is gone). */
  | {
      kind: "alert.resolved";
      at: number;
      rule: string;
      nodeId: string;
      name: string;
      value: number | null;
      firedForMs: number;
      title: string;
    }
  /** A channel gave up on a notification after its retries. */
  | {
      kind: "alert.delivery_failed";
      at: number;
      channel: string;
      rule: string;
      title: string;
      attempts: number;
      error: string;
    }
  /**
   * The primary's store cannot write (a full or read-only disk): nothing new
   * is stored until it can. Stored, like what happens meanwhile, once it can.
   */
  | {
      kind: "primary.store_failed";
      at: number;
      cause: StoreFailureCause;
      code: string;
      error: string;
    }
  /** It writes again; `eventsDropped`: events past the bound of what may wait. */
  | { kind: "primary.store_ok"; at: number; failedForMs: number; eventsDropped: number }
  /** A job was accepted: `items` will each run `task` once on a selected node with a free slot. */
  | {
      kind: "job.started";
      at: number;
      jobId: number;
      task: string;
      selector: string;
      items: number;
      requestedBy: string;
    }
  /** Where a job stands; at most once a second per job, stream-only (the queue keeps the counts). */
  | {
      kind: "job.progress";
      at: number;
      jobId: number;
      task: string;
      total: number;
      queued: number;
      running: number;
      ok: number;
      failed: number;
      cancelled: number;
      /** Items finished per second since the last progress event. */
      perSecond: number;
    }
  /** A selected node takes none of the job's items (until its details change). */
  | {
      kind: "job.node_skipped";
      at: number;
      jobId: number;
      task: string;
      nodeId: string;
      name: string;
      reason: string;
    }
  | {
      kind: "job.finished";
      at: number;
      jobId: number;
      task: string;
      status: JobEndStatus;
      total: number;
      ok: number;
      failed: number;
      cancelled: number;
      durationMs: number;
    }
  /** Streamed as it comes; not stored as an event (the node's result keeps it). */
  | {
      kind: "task.output";
      at: number;
      runId: number;
      nodeId: string;
      name: string;
      stream: "stdout" | "stderr";
      data: string;
    };

export type NodeRunStatus = "pending" | "running" | "ok" | "failed" | "skipped" | "cancelled";
export type TaskRunStatus = "running" | "ok" | "failed" | "cancelled";
export type JobEndStatus = "ok" | "failed" | "cancelled";

/** Events too frequent to keep in the recent list or the store's event table. */
export function isStreamOnly(event: ClusterEvent): boolean {
  return (
    event.kind === "node.vitals" || event.kind === "task.output" || event.kind === "job.progress"
  );
}

export type EventKind = ClusterEvent["kind"];
export type Listener = (event: ClusterEvent) => void;

/** A synchronous, in-process event bus that also keeps the most recent events. */
export class EventBus {
  private readonly listeners = new Set<Listener>();
  private readonly recentEvents: ClusterEvent[] = [];

  constructor(
    private readonly log: Logger,
    private readonly keep = 1_000,
  ) {}

  /** Subscribe; returns the function that unsubscribes. */
  on(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: ClusterEvent): void {
    // Samples are too many to keep here; the recent list is for what happened.
    if (!isStreamOnly(event)) {
      this.recentEvents.push(event);
      if (this.recentEvents.length > this.keep) this.recentEvents.shift();
    }
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        // One broken reader must not stop the others or the writer.
        this.log.error("event listener failed", { event: event.kind, err: String(err) });
      }
    }
  }

  /** The most recent events, oldest first. */
  recent(limit = this.keep): ClusterEvent[] {
    return this.recentEvents.slice(-limit);
  }
}
