/**
 * The embedded store: one SQLite file in WAL mode. Writes are batched into
 * one transaction every FLUSH interval or BATCH rows, whichever comes first;
 * a sample's promise resolves only after the transaction holding it has
 * committed (synchronous=FULL), so an acknowledged sample survives a crash
 * of the primary or of the machine.
 *
 * Rollups (1 minute, 1 hour: min, max, sum and count per metric) are
 * recomputed from the raw rows for every minute that received samples,
 * including late ones replayed by a reconnecting agent. Retention deletes in
 * small steps so ingest never waits long.
 *
 * A commit that fails (a full or read-only disk) rejects its samples'
 * promises, so nothing is acknowledged that is not stored: the agents keep
 * them and send them again. Its events and node rows have no other copy and
 * wait here (bounded) for the next commit. Until one succeeds the store is
 * failing: new samples are refused at once, events are told to listeners
 * without an id (the live stream goes on), and a commit is tried again every
 * RETRY interval.
 */

import { chmodSync, closeSync, openSync, statSync } from "node:fs";
import {
  type Clock,
  describeError,
  type ErrorCode,
  type Logger,
  type MessageMap,
  PiclusterError,
} from "@picluster/common";
import Database from "better-sqlite3";
import {
  type ClusterEvent,
  isStreamOnly,
  type NodeState,
  type StoreFailureCause,
} from "../events.js";
import type { NodeRecord } from "../registry.js";
import { isMetric, METRIC_NAMES, metricValues } from "./metrics.js";
import { MIGRATIONS, SCHEMA_VERSION } from "./schema.js";

export class StoreError extends PiclusterError {}

const FAILURE_CODES: Record<StoreFailureCause, ErrorCode> = {
  disk_full: "E_STORE_FULL",
  read_only: "E_STORE_READONLY",
  io_error: "E_STORE_IO",
  busy: "E_STORE_BUSY",
  other: "E_STORE_WRITE",
};

/** What kind of failure a write to the store met (better-sqlite3 throws SqliteError with `code`). */
export function storeFailureCause(err: unknown): StoreFailureCause {
  const code = String((err as { code?: unknown } | undefined)?.code ?? "");
  if (code === "SQLITE_FULL" || code === "ENOSPC" || code === "EDQUOT") return "disk_full";
  if (code.startsWith("SQLITE_READONLY") || code === "EROFS") return "read_only";
  if (code.startsWith("SQLITE_IOERR") || code === "EIO") return "io_error";
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) return "busy";
  return "other";
}

/** A write that failed, as a StoreError whose code says why (E_STORE_FULL, E_STORE_READONLY…). */
export function storeWriteError(what: string, err: unknown): StoreError {
  return new StoreError(FAILURE_CODES[storeFailureCause(err)], `${what}: ${describeError(err)}`, {
    cause: err,
  });
}

/** Whether the store is writing; while it is not, since when, why, and what waits. */
export type StoreHealth =
  | { ok: true }
  | {
      ok: false;
      since: number;
      cause: StoreFailureCause;
      code: string;
      /** SQLite's words for the first failure. */
      error: string;
      /** Events waiting for the next commit, and those dropped because too many waited. */
      eventsWaiting: number;
      eventsDropped: number;
    };

/** A failure that ended: how long it lasted and what it cost. */
export interface StoreOutage {
  since: number;
  cause: StoreFailureCause;
  failedForMs: number;
  eventsDropped: number;
}

/**
 * An event as listeners are told it: once stored, with its id; while the
 * store cannot write, at once with `id: null` (and not again when it is
 * stored later).
 */
export interface LiveEvent extends Omit<StoredEvent, "id"> {
  id: number | null;
}

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
export const DEFAULT_FLUSH_MS = 100;
export const DEFAULT_BATCH_ROWS = 1_000;
/** How often a store that cannot write tries to commit again. */
export const DEFAULT_RETRY_MS = 5_000;
/** Events kept for the next commit while the store cannot write; past it the oldest are dropped and counted. */
export const MAX_WAITING_EVENTS = 10_000;
/** Rows deleted per retention step; between steps the event loop runs. */
const PRUNE_STEP_ROWS = 2_000;
const ROLLUP_EVERY_MS = 10_000;
const PRUNE_EVERY_MS = 60_000;
/** Most points a series query returns; a finer step is coarsened to fit. */
export const MAX_POINTS = 1_000;

export interface Retention {
  rawMs: number;
  minuteMs: number;
  hourMs: number;
}

export interface StoreOptions {
  file: string;
  clock: Clock;
  log: Logger;
  retention: Retention;
  flushMs?: number;
  batchRows?: number;
  retryMs?: number;
}

interface PendingSample {
  nodeId: string;
  ts: number;
  seq: number;
  values: Array<number | null>;
}

export interface SeriesPoint {
  ts: number;
  avg: number | null;
  min: number | null;
  max: number | null;
}

export interface Series {
  metric: string;
  /** Which table answered: raw samples or a rollup. */
  resolution: "raw" | "1m" | "1h";
  stepMs: number;
  points: SeriesPoint[];
}

// The shapes the API answers with live in common, for the CLI and the dashboard too.
export type { StoredNodeResult, StoredTaskRun } from "@picluster/common";

import type { StoredNodeResult, StoredTaskRun } from "@picluster/common";

interface TaskRunRow {
  id: number;
  task: string;
  selector: string;
  args: string;
  requested_by: string;
  created_at: number;
  finished_at: number | null;
  status: string;
}

interface TaskResultRow {
  run_id: number;
  node_id: string;
  name: string;
  status: string;
  exit_code: number | null;
  signal: string | null;
  started_at: number | null;
  finished_at: number | null;
  output: string;
  truncated: number;
  error: string | null;
}

function taskRunFromRow(r: TaskRunRow, nodes: StoredNodeResult[]): StoredTaskRun {
  return {
    id: r.id,
    task: r.task,
    selector: r.selector,
    args: JSON.parse(r.args) as Record<string, string>,
    requestedBy: r.requested_by,
    createdAt: r.created_at,
    ...(r.finished_at === null ? {} : { finishedAt: r.finished_at }),
    status: r.status,
    nodes,
  };
}

function resultFromRow(r: Omit<TaskResultRow, "run_id">): StoredNodeResult {
  return {
    nodeId: r.node_id,
    name: r.name,
    status: r.status,
    exitCode: r.exit_code,
    signal: r.signal,
    ...(r.started_at === null ? {} : { startedAt: r.started_at }),
    ...(r.finished_at === null ? {} : { finishedAt: r.finished_at }),
    output: r.output,
    truncated: r.truncated === 1,
    ...(r.error === null ? {} : { error: r.error }),
  };
}

export interface StoredEvent {
  id: number;
  ts: number;
  kind: string;
  nodeId: string | null;
  data: Record<string, unknown>;
}

export interface EventQuery {
  node?: string | undefined;
  kind?: string | undefined;
  since?: number | undefined;
  /** Events with an id greater than this (stream resume). */
  afterId?: number | undefined;
  limit: number;
}

type Row = Record<string, unknown>;

interface PendingEvent {
  event: ClusterEvent;
  /** Already told to listeners (without an id) while the store could not write. */
  told: boolean;
}

interface Failure {
  since: number;
  cause: StoreFailureCause;
  code: ErrorCode;
  error: string;
  eventsDropped: number;
  attempts: number;
  stopRetry: () => void;
}

function eventFields(e: ClusterEvent): Omit<StoredEvent, "id"> {
  const { kind, at, ...rest } = e;
  return { ts: at, kind, nodeId: "nodeId" in e ? e.nodeId : null, data: rest };
}

export class Store {
  private db: Database.Database | undefined;
  private samples: PendingSample[] = [];
  private pendingEvents: PendingEvent[] = [];
  private nodes = new Map<string, NodeRecord>();
  private waiters: Array<{ resolve(): void; reject(err: Error): void }> = [];
  private cancelFlush: (() => void) | undefined;
  private immediateFlush = false;
  private readonly dirtyMinutes = new Set<number>();
  private readonly abort = new AbortController();
  private statements: ReturnType<Store["prepare"]> | undefined;
  private readonly eventListeners = new Set<(events: LiveEvent[]) => void>();
  private readonly healthListeners = new Set<
    (health: StoreHealth, ended: StoreOutage | undefined) => void
  >();
  private failure: Failure | undefined;
  /** Samples committed since the store opened (for /metrics). */
  samplesStored = 0;

  constructor(private readonly opts: StoreOptions) {}

  /** Open the file (creating it), migrate it to the current schema, prepare statements. */
  open(): this {
    const db = openDatabase(this.opts.file, this.opts.log);
    this.db = db;
    this.statements = this.prepare(db);
    // Minutes that have samples but no rollup yet (a crash between the two).
    const last = db.prepare("SELECT max(bucket) AS b FROM vitals_1m").get() as { b: number | null };
    const rows = db
      .prepare("SELECT DISTINCT (ts / 60000) * 60000 AS b FROM vitals_raw WHERE ts >= ?")
      .all(last.b ?? 0) as Array<{ b: number }>;
    for (const r of rows) this.dirtyMinutes.add(r.b);
    return this;
  }

  private prepare(db: Database.Database) {
    const cols = METRIC_NAMES.join(", ");
    const params = METRIC_NAMES.map(() => "?").join(", ");
    const rollup = (fn: (m: string) => string) => METRIC_NAMES.map(fn).join(", ");
    const rollupCols = rollup((m) => `${m}_min, ${m}_max, ${m}_sum, ${m}_n`);
    return {
      // A seq already stored (a replay racing its own ack) is kept once.
      insertSample: db.prepare(
        `INSERT OR IGNORE INTO vitals_raw (node_id, seq, ts, ${cols}) VALUES (?, ?, ?, ${params})`,
      ),
      insertEvent: db.prepare("INSERT INTO events (ts, kind, node_id, data) VALUES (?, ?, ?, ?)"),
      // The primary key (node_id, seq) answers it without a scan.
      lastSeq: db.prepare("SELECT max(seq) AS seq FROM vitals_raw WHERE node_id = ?"),
      upsertNode:
        db.prepare(`INSERT INTO nodes (id, name, labels, address, state, state_since, state_reason, first_seen, last_seen,
          agent_version, legacy, details, vitals, vitals_at, last_seq, dropped)
        VALUES (@id, @name, @labels, @address, @state, @stateSince, @stateReason, @firstSeen, @lastSeen,
          @agentVersion, @legacy, @details, @vitals, @vitalsAt, @lastSeq, @dropped)
        ON CONFLICT (id) DO UPDATE SET name = excluded.name, labels = excluded.labels, address = excluded.address,
          state = excluded.state, state_since = excluded.state_since, state_reason = excluded.state_reason,
          last_seen = excluded.last_seen, agent_version = excluded.agent_version, legacy = excluded.legacy,
          details = excluded.details, vitals = excluded.vitals, vitals_at = excluded.vitals_at,
          last_seq = max(nodes.last_seq, excluded.last_seq), dropped = excluded.dropped`),
      touchNode: db.prepare(
        "UPDATE nodes SET last_seq = max(last_seq, ?), last_seen = max(last_seen, ?) WHERE id = ?",
      ),
      rollupMinute:
        db.prepare(`INSERT OR REPLACE INTO vitals_1m (node_id, bucket, samples, ${rollupCols})
        SELECT node_id, @bucket, count(*), ${rollup((m) => `min(${m}), max(${m}), total(${m}), count(${m})`)}
        FROM vitals_raw WHERE ts >= @bucket AND ts < @bucket + 60000 GROUP BY node_id`),
      rollupHour:
        db.prepare(`INSERT OR REPLACE INTO vitals_1h (node_id, bucket, samples, ${rollupCols})
        SELECT node_id, @bucket, sum(samples), ${rollup((m) => `min(${m}_min), max(${m}_max), total(${m}_sum), sum(${m}_n)`)}
        FROM vitals_1m WHERE bucket >= @bucket AND bucket < @bucket + 3600000 GROUP BY node_id`),
      pruneRaw: db.prepare(
        "DELETE FROM vitals_raw WHERE (node_id, seq) IN (SELECT node_id, seq FROM vitals_raw WHERE ts < ? LIMIT ?)",
      ),
      pruneMinute: db.prepare(
        "DELETE FROM vitals_1m WHERE (node_id, bucket) IN (SELECT node_id, bucket FROM vitals_1m WHERE bucket < ? LIMIT ?)",
      ),
      pruneHour: db.prepare(
        "DELETE FROM vitals_1h WHERE (node_id, bucket) IN (SELECT node_id, bucket FROM vitals_1h WHERE bucket < ? LIMIT ?)",
      ),
      pruneEvents: db.prepare(
        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE ts < ? LIMIT ?)",
      ),
    };
  }

  private get st(): NonNullable<Store["statements"]> {
    if (this.statements === undefined)
      throw new StoreError("E_STORE_CLOSED", "the store is not open");
    return this.statements;
  }

  /** Start the rollup and retention timers; both stop with close(). */
  start(): void {
    const stopRollup = this.opts.clock.every(ROLLUP_EVERY_MS, () => this.rollUp());
    const stopPrune = this.opts.clock.every(PRUNE_EVERY_MS, () => this.prune());
    this.abort.signal.addEventListener(
      "abort",
      () => {
        stopRollup();
        stopPrune();
      },
      { once: true },
    );
  }

  /** Queue a vitals sample and the node's new state; resolves once both are committed. */
  addVitals(
    node: NodeRecord,
    ts: number,
    seq: number,
    vitals: MessageMap["vitals"],
  ): Promise<void> {
    const failure = this.failure;
    if (failure !== undefined) {
      // Refused at once, not queued: a sample of this node committed after
      // the failed ones would let its ack cover them. Its agent keeps it.
      return Promise.reject(
        new StoreError(
          failure.code,
          `the store cannot write since ${new Date(failure.since).toISOString()} (${failure.error}); the sample stays with its agent`,
        ),
      );
    }
    // Only the sample: the node's row is rewritten on events (state, details),
    // and its last seq moves with a one-column update at commit.
    this.samples.push({ nodeId: node.id, ts, seq, values: metricValues(vitals) });
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.scheduleFlush();
    return done;
  }

  /** Queue an event (and the node it concerns) for the next batch. */
  addEvent(event: ClusterEvent, node: NodeRecord | undefined): void {
    if (isStreamOnly(event)) return;
    if (this.db === undefined) {
      this.opts.log.warn("event after the store closed, not kept", { kind: event.kind });
      return;
    }
    if (node !== undefined) this.nodes.set(node.id, node);
    if (this.failure !== undefined) {
      // Told now, stored when the store can write again (the retry commits it).
      this.pendingEvents.push({ event, told: true });
      this.boundWaiting(this.failure);
      this.tell([{ id: null, ...eventFields(event) }]);
      return;
    }
    this.pendingEvents.push({ event, told: false });
    this.scheduleFlush();
  }

  /** Whether the store is writing; see StoreHealth. */
  get health(): StoreHealth {
    const f = this.failure;
    if (f === undefined) return { ok: true };
    return {
      ok: false,
      since: f.since,
      cause: f.cause,
      code: f.code,
      error: f.error,
      eventsWaiting: this.pendingEvents.length,
      eventsDropped: f.eventsDropped,
    };
  }

  /** Be told when the store stops writing, and when it writes again (with the outage that ended). */
  onHealth(listener: (health: StoreHealth, ended: StoreOutage | undefined) => void): () => void {
    this.healthListeners.add(listener);
    return () => this.healthListeners.delete(listener);
  }

  private get pendingRows(): number {
    return this.samples.length + this.pendingEvents.length;
  }

  private scheduleFlush(): void {
    // While failing, the retry timer is the only one that commits.
    if (this.failure !== undefined) return;
    if (this.pendingRows >= (this.opts.batchRows ?? DEFAULT_BATCH_ROWS)) {
      // A full batch commits on the next turn of the event loop, not inside
      // the caller: committing here would resolve promises whose handlers
      // queue more rows and commit again, starving timers and sockets.
      if (!this.immediateFlush) {
        this.immediateFlush = true;
        setImmediate(() => {
          this.immediateFlush = false;
          this.flush();
        });
      }
      return;
    }
    this.cancelFlush ??= this.opts.clock.after(this.opts.flushMs ?? DEFAULT_FLUSH_MS, () =>
      this.flush(),
    );
  }

  /**
   * Commit everything queued in one transaction, then resolve the samples'
   * promises. While the store is failing this is the retry: with nothing
   * queued it still writes (a probe), to learn whether it can again.
   */
  flush(): void {
    this.cancelFlush?.();
    this.cancelFlush = undefined;
    if (this.pendingRows === 0 && this.nodes.size === 0 && this.failure === undefined) return;
    const samples = this.samples;
    const events = this.pendingEvents;
    const nodes = [...this.nodes.values()];
    const waiters = this.waiters;
    this.samples = [];
    this.pendingEvents = [];
    this.nodes = new Map();
    this.waiters = [];
    if (this.db === undefined || this.statements === undefined) {
      const error = new StoreError(
        "E_STORE_CLOSED",
        "the store is closed; samples stay unacknowledged",
      );
      for (const w of waiters) w.reject(error);
      return;
    }
    const db = this.db;
    const st = this.statements;
    const committed: LiveEvent[] = [];
    try {
      db.transaction(() => {
        for (const s of samples) st.insertSample.run(s.nodeId, s.seq, s.ts, ...s.values);
        for (const { event, told } of events) {
          const fields = eventFields(event);
          const { lastInsertRowid } = st.insertEvent.run(
            fields.ts,
            fields.kind,
            fields.nodeId,
            JSON.stringify(fields.data),
          );
          if (!told) committed.push({ id: Number(lastInsertRowid), ...fields });
        }
        // The node row's last_seq moves in the same transaction as its samples.
        const stored = new Map<string, { seq: number; ts: number }>();
        for (const s of samples) {
          const prev = stored.get(s.nodeId);
          if (prev === undefined || s.seq > prev.seq)
            stored.set(s.nodeId, { seq: s.seq, ts: s.ts });
        }
        for (const n of nodes) st.upsertNode.run(nodeRow(n, stored.get(n.id)?.seq));
        for (const [id, { seq, ts }] of stored) st.touchNode.run(seq, ts, id);
        // Retrying with nothing queued: a write all the same (the header's
        // user_version, which nothing reads), or we would never learn that
        // the disk has room again.
        if (samples.length + events.length + nodes.length === 0)
          db.pragma(`user_version = ${Number(db.pragma("user_version", { simple: true }))}`);
      })();
    } catch (err) {
      const error = storeWriteError(
        `commit of ${samples.length} samples and ${events.length} events failed`,
        err,
      );
      // The samples are refused (their agents send them again); events and
      // node rows have no other copy and wait for the next commit.
      this.pendingEvents = events;
      for (const n of nodes) if (!this.nodes.has(n.id)) this.nodes.set(n.id, n);
      for (const w of waiters) w.reject(error);
      this.failed(err);
      const untold = events.filter((e) => !e.told);
      for (const e of untold) e.told = true;
      if (untold.length > 0) this.tell(untold.map((e) => ({ id: null, ...eventFields(e.event) })));
      return;
    }
    for (const s of samples) this.dirtyMinutes.add(Math.floor(s.ts / MINUTE_MS) * MINUTE_MS);
    this.samplesStored += samples.length;
    if (this.failure !== undefined) this.recovered(events.length);
    for (const w of waiters) w.resolve();
    if (committed.length > 0) this.tell(committed);
  }

  private tell(events: LiveEvent[]): void {
    for (const listener of this.eventListeners) {
      try {
        listener(events);
      } catch (err) {
        this.opts.log.error("stored-event listener failed", { err: describeError(err) });
      }
    }
  }

  private failed(cause: unknown): void {
    if (this.failure !== undefined) {
      this.failure.attempts += 1;
      this.boundWaiting(this.failure);
      return;
    }
    const retryMs = this.opts.retryMs ?? DEFAULT_RETRY_MS;
    const failure: Failure = {
      since: this.opts.clock.now(),
      cause: storeFailureCause(cause),
      code: FAILURE_CODES[storeFailureCause(cause)],
      error: describeError(cause),
      eventsDropped: 0,
      attempts: 1,
      stopRetry: this.opts.clock.every(retryMs, () => this.flush()),
    };
    this.failure = failure;
    this.boundWaiting(failure);
    this.opts.log.error(
      "the store cannot write: nothing new is stored until it can; samples stay with the agents, events wait here",
      {
        file: this.opts.file,
        cause: failure.cause,
        code: failure.code,
        err: failure.error,
        retryEveryMs: retryMs,
      },
    );
    this.announceHealth();
  }

  private recovered(committedEvents: number): void {
    const failure = this.failure;
    if (failure === undefined) return;
    failure.stopRetry();
    this.failure = undefined;
    const ended: StoreOutage = {
      since: failure.since,
      cause: failure.cause,
      failedForMs: this.opts.clock.now() - failure.since,
      eventsDropped: failure.eventsDropped,
    };
    this.opts.log.warn("the store writes again", {
      file: this.opts.file,
      cause: failure.cause,
      failedForMs: ended.failedForMs,
      attempts: failure.attempts,
      eventsStored: committedEvents,
      eventsDropped: failure.eventsDropped,
    });
    this.announceHealth(ended);
  }

  /** Events waiting for a commit are bounded: the oldest go first, counted. */
  private boundWaiting(failure: Failure): void {
    const over = this.pendingEvents.length - MAX_WAITING_EVENTS;
    if (over <= 0) return;
    this.pendingEvents.splice(0, over);
    failure.eventsDropped += over;
  }

  private announceHealth(ended?: StoreOutage): void {
    const health = this.health;
    for (const listener of this.healthListeners) {
      try {
        listener(health, ended);
      } catch (err) {
        this.opts.log.error("store health listener failed", { err: describeError(err) });
      }
    }
  }

  /** Recompute the rollups of every complete minute that received samples, and their hours. */
  rollUp(): void {
    // Not while failing: the minutes stay dirty and are rolled up once it writes again.
    if (this.db === undefined || this.failure !== undefined) return;
    const current = Math.floor(this.opts.clock.now() / MINUTE_MS) * MINUTE_MS;
    const minutes = [...this.dirtyMinutes].filter((b) => b < current).sort((a, b) => a - b);
    if (minutes.length === 0) return;
    const hours = new Set<number>();
    const st = this.st;
    try {
      this.db?.transaction(() => {
        for (const bucket of minutes) {
          st.rollupMinute.run({ bucket });
          hours.add(Math.floor(bucket / HOUR_MS) * HOUR_MS);
        }
        for (const bucket of hours) st.rollupHour.run({ bucket });
      })();
    } catch (err) {
      this.opts.log.error("rollup failed; will retry", {
        err: describeError(err),
        minutes: minutes.length,
      });
      return;
    }
    for (const b of minutes) this.dirtyMinutes.delete(b);
  }

  /** Delete what is past retention, a small step at a time, yielding between steps. */
  prune(): void {
    if (this.failure !== undefined) return;
    const now = this.opts.clock.now();
    const { rawMs, minuteMs, hourMs } = this.opts.retention;
    const st = this.st;
    const steps: Array<[Database.Statement, number]> = [
      [st.pruneRaw, now - rawMs],
      [st.pruneMinute, now - minuteMs],
      [st.pruneHour, now - hourMs],
      [st.pruneEvents, now - hourMs],
    ];
    const step = (i: number): void => {
      if (i >= steps.length || this.db === undefined || this.abort.signal.aborted) return;
      const [statement, cutoff] = steps[i] as [Database.Statement, number];
      let deleted: number;
      try {
        deleted = statement.run(cutoff, PRUNE_STEP_ROWS).changes;
      } catch (err) {
        this.opts.log.error("retention step failed; will retry next time", {
          err: describeError(err),
        });
        return;
      }
      setImmediate(() => step(deleted >= PRUNE_STEP_ROWS ? i : i + 1));
    };
    step(0);
  }

  /**
   * Be told of events once they are committed, with their ids (the live
   * stream); while the store cannot write, at once without (see LiveEvent).
   */
  onEvents(listener: (events: LiveEvent[]) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  /** Every known node, as the registry should start from. */
  /** A new task run; returns its id. Written at once (not batched): runs are few. */
  insertTaskRun(run: Omit<StoredTaskRun, "id" | "finishedAt" | "nodes">): number {
    const db = this.openDb;
    const insert = db.prepare(
      "INSERT INTO task_runs (task, selector, args, requested_by, created_at, status) VALUES (?, ?, ?, ?, ?, ?)",
    );
    try {
      const { lastInsertRowid } = insert.run(
        run.task,
        run.selector,
        JSON.stringify(run.args),
        run.requestedBy,
        run.createdAt,
        run.status,
      );
      return Number(lastInsertRowid);
    } catch (err) {
      // A run that cannot be recorded is not started (a full disk): say why, with a code.
      throw storeWriteError(`the task run "${run.task}" cannot be recorded`, err);
    }
  }

  /** Write one node's result of a run (insert or replace). */
  saveTaskResult(runId: number, r: StoredNodeResult): void {
    this.openDb
      .prepare(
        `INSERT OR REPLACE INTO task_results
         (run_id, node_id, name, status, exit_code, signal, started_at, finished_at, output, truncated, error)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        runId,
        r.nodeId,
        r.name,
        r.status,
        r.exitCode,
        r.signal,
        r.startedAt ?? null,
        r.finishedAt ?? null,
        r.output,
        r.truncated ? 1 : 0,
        r.error ?? null,
      );
  }

  finishTaskRun(runId: number, status: string, finishedAt: number): void {
    this.openDb
      .prepare("UPDATE task_runs SET status = ?, finished_at = ? WHERE id = ?")
      .run(status, finishedAt, runId);
  }

  /** The most recent runs, newest first, with counts of their nodes by status instead of results. */
  taskRuns(limit: number): StoredTaskRun[] {
    const db = this.openDb;
    const rows = db
      .prepare("SELECT * FROM task_runs ORDER BY id DESC LIMIT ?")
      .all(limit) as TaskRunRow[];
    if (rows.length === 0) return [];
    const counts = new Map<number, Record<string, number>>();
    const tally = db
      .prepare(
        "SELECT run_id, status, count(*) AS n FROM task_results WHERE run_id BETWEEN ? AND ? GROUP BY run_id, status",
      )
      .all(rows.at(-1)?.id ?? 0, rows[0]?.id ?? 0) as Array<{
      run_id: number;
      status: string;
      n: number;
    }>;
    for (const t of tally) {
      const c = counts.get(t.run_id) ?? {};
      c[t.status] = t.n;
      counts.set(t.run_id, c);
    }
    return rows.map((r) => ({ ...taskRunFromRow(r, []), counts: counts.get(r.id) ?? {} }));
  }

  /** A node's most recent runs, newest first, each with that node's result only (its output left out: see the run). */
  taskRunsForNode(nodeId: string, limit: number): StoredTaskRun[] {
    const rows = this.openDb
      .prepare(
        `SELECT r.*, x.node_id AS x_node, x.name AS x_name, x.status AS x_status, x.exit_code, x.signal,
           x.started_at, x.finished_at AS x_finished, '' AS output, x.truncated, x.error
         FROM task_results x JOIN task_runs r ON r.id = x.run_id
         WHERE x.node_id = ? ORDER BY x.run_id DESC LIMIT ?`,
      )
      .all(nodeId, limit) as Array<
      TaskRunRow & {
        x_node: string;
        x_name: string;
        x_status: string;
        exit_code: number | null;
        signal: string | null;
        started_at: number | null;
        x_finished: number | null;
        output: string;
        truncated: number;
        error: string | null;
      }
    >;
    return rows.map((r) =>
      taskRunFromRow(r, [
        resultFromRow({
          node_id: r.x_node,
          name: r.x_name,
          status: r.x_status,
          exit_code: r.exit_code,
          signal: r.signal,
          started_at: r.started_at,
          finished_at: r.x_finished,
          output: r.output,
          truncated: r.truncated,
          error: r.error,
        }),
      ]),
    );
  }

  /** One run with its per-node results, or undefined. */
  taskRun(id: number): StoredTaskRun | undefined {
    const db = this.openDb;
    const row = db.prepare("SELECT * FROM task_runs WHERE id = ?").get(id) as
      | TaskRunRow
      | undefined;
    if (row === undefined) return undefined;
    const results = db
      .prepare("SELECT * FROM task_results WHERE run_id = ? ORDER BY name")
      .all(id) as TaskResultRow[];
    return taskRunFromRow(row, results.map(resultFromRow));
  }

  /** Runs left `running` by a primary that stopped: they can no longer finish. */
  abandonTaskRuns(at: number): number {
    const db = this.openDb;
    db.prepare(
      "UPDATE task_results SET status = 'failed', error = 'the primary restarted during the run', finished_at = ? WHERE status IN ('pending', 'running') AND run_id IN (SELECT id FROM task_runs WHERE status = 'running')",
    ).run(at);
    return db
      .prepare("UPDATE task_runs SET status = 'failed', finished_at = ? WHERE status = 'running'")
      .run(at).changes;
  }

  private get openDb(): Database.Database {
    if (this.db === undefined) throw new StoreError("E_STORE_CLOSED", "the store is not open");
    return this.db;
  }

  /**
   * Forget a node: its row always; its samples (raw and rollups) and events
   * too unless `keepHistory`. Its task results stay either way: they belong
   * to the runs (and the audit log), and keep the node's name as it was.
   * What is queued is committed first, so no pending write brings it back.
   */
  removeNode(
    nodeId: string,
    opts: { keepHistory: boolean },
  ): { vitalsRows: number; events: number } {
    const db = this.openDb;
    this.flush();
    // A minute still to be rolled up would only find this node's raw rows gone; nothing to redo.
    return db
      .transaction(() => {
        db.prepare("DELETE FROM nodes WHERE id = ?").run(nodeId);
        if (opts.keepHistory) return { vitalsRows: 0, events: 0 };
        let vitalsRows = 0;
        for (const table of ["vitals_raw", "vitals_1m", "vitals_1h"])
          vitalsRows += db.prepare(`DELETE FROM ${table} WHERE node_id = ?`).run(nodeId).changes;
        const events = db.prepare("DELETE FROM events WHERE node_id = ?").run(nodeId).changes;
        return { vitalsRows, events };
      })
      .immediate();
  }

  /**
   * The highest seq stored for a node, from its raw samples: a node removed
   * with its history kept that joins again continues after it, so its new
   * samples are not taken for replays of the old ones.
   */
  lastStoredSeq(nodeId: string): number {
    const row = this.st.lastSeq.get(nodeId) as { seq: number | null };
    return row.seq ?? 0;
  }

  loadNodes(): NodeRecord[] {
    const rows = this.db?.prepare("SELECT * FROM nodes").all() as Row[] | undefined;
    return (rows ?? []).map(nodeFromRow);
  }

  /**
   * A metric of one node between `from` and `to`, about one point per
   * `stepMs`: raw samples for steps under a minute (within raw retention),
   * else the 1-minute rollup, else the 1-hour one. At most MAX_POINTS points.
   */
  series(nodeId: string, metric: string, from: number, to: number, stepMs: number): Series {
    if (!isMetric(metric))
      throw new StoreError(
        "E_BAD_METRIC",
        `unknown metric "${metric}"; one of ${METRIC_NAMES.join(", ")}`,
      );
    const span = Math.max(1, to - from);
    let step = Math.max(1_000, stepMs, Math.ceil(span / MAX_POINTS));
    const now = this.opts.clock.now();
    let resolution: Series["resolution"] = "raw";
    if (step >= HOUR_MS || from < now - this.opts.retention.minuteMs) resolution = "1h";
    else if (step >= MINUTE_MS || from < now - this.opts.retention.rawMs) resolution = "1m";
    if (resolution === "1m") step = Math.ceil(step / MINUTE_MS) * MINUTE_MS;
    if (resolution === "1h") step = Math.ceil(step / HOUR_MS) * HOUR_MS;
    const db = this.db;
    if (db === undefined) throw new StoreError("E_STORE_CLOSED", "the store is not open");
    const sql =
      resolution === "raw"
        ? `SELECT ts - ts % @step AS b, avg(${metric}) AS avg, min(${metric}) AS min, max(${metric}) AS max
           FROM vitals_raw WHERE node_id = @node AND ts >= @from AND ts < @to GROUP BY b ORDER BY b`
        : `SELECT bucket - bucket % @step AS b, total(${metric}_sum) / nullif(sum(${metric}_n), 0) AS avg,
             min(${metric}_min) AS min, max(${metric}_max) AS max
           FROM vitals_${resolution} WHERE node_id = @node AND bucket >= @from AND bucket < @to GROUP BY b ORDER BY b`;
    // `metric` is checked against METRICS above, so it is safe in the SQL text.
    // `x - x % step` rounds down in integers even though numbers bind as REAL.
    const rows = db.prepare(sql).all({ step, node: nodeId, from, to }) as Array<{
      b: number;
      avg: number | null;
      min: number | null;
      max: number | null;
    }>;
    return {
      metric,
      resolution,
      stepMs: step,
      points: rows.map((r) => ({ ts: r.b, avg: r.avg, min: r.min, max: r.max })),
    };
  }

  events(q: EventQuery): StoredEvent[] {
    const rows = this.db
      ?.prepare(
        `SELECT id, ts, kind, node_id, data FROM events
         WHERE (@node IS NULL OR node_id = @node) AND (@kind IS NULL OR kind = @kind)
           AND ts >= @since AND id > @afterId
         ORDER BY id DESC LIMIT @limit`,
      )
      .all({
        node: q.node ?? null,
        kind: q.kind ?? null,
        since: q.since ?? 0,
        afterId: q.afterId ?? 0,
        limit: q.limit,
      }) as Row[] | undefined;
    return (rows ?? []).map((r) => ({
      id: Number(r.id),
      ts: Number(r.ts),
      kind: String(r.kind),
      nodeId: r.node_id === null ? null : String(r.node_id),
      data: JSON.parse(String(r.data)) as Record<string, unknown>,
    }));
  }

  /**
   * Events after `afterId`, oldest first, each as the JSON text of its
   * StoredEvent, built from the stored text without parsing it: what a
   * resuming stream replays, for many clients at once.
   */
  eventsAfter(afterId: number, limit: number): Array<{ id: number; kind: string; json: string }> {
    const rows = this.db
      ?.prepare(
        "SELECT id, ts, kind, node_id, data FROM events WHERE id > ? ORDER BY id ASC LIMIT ?",
      )
      .all(afterId, limit) as Row[] | undefined;
    return (rows ?? []).map((r) => {
      const id = Number(r.id);
      const kind = String(r.kind);
      const nodeId = r.node_id === null ? "null" : JSON.stringify(String(r.node_id));
      return {
        id,
        kind,
        json: `{"id":${id},"ts":${Number(r.ts)},"kind":${JSON.stringify(kind)},"nodeId":${nodeId},"data":${String(r.data)}}`,
      };
    });
  }

  /** Commit what is queued, then close the file. */
  close(): void {
    this.abort.abort();
    if (this.db === undefined) return;
    // A last try; what still cannot be written is lost with the process (samples stay with agents).
    this.flush();
    this.failure?.stopRetry();
    this.rollUp();
    this.db.close();
    this.db = undefined;
    this.statements = undefined;
  }
}

/**
 * Open the store's SQLite file (creating it, mode 0600: it holds node
 * credentials) in WAL mode and migrate it to the current schema. The
 * primary's Store and CredentialStore and the CLI each open their own
 * connection; SQLite's locking orders their transactions.
 */
export function openDatabase(file: string, log: Logger): Database.Database {
  let db: Database.Database;
  try {
    restrictMode(file);
    db = new Database(file);
    db.pragma("journal_mode = WAL");
    // FULL: a committed (and so acknowledged) sample survives power loss too.
    db.pragma("synchronous = FULL");
    db.pragma("foreign_keys = ON");
    db.pragma("busy_timeout = 5000");
    // 64 MiB of page cache (SQLite's default is 2 MiB): ingest touches a leaf
    // page of every reporting node per batch (bench/README.md, suite store).
    db.pragma("cache_size = -65536");
  } catch (err) {
    throw new StoreError("E_STORE_OPEN", `cannot open the store ${file}: ${describeError(err)}`, {
      cause: err,
    });
  }
  try {
    migrate(db, file, log);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/** Create `file` as 0600, or take group/other access away from it and its WAL files. */
function restrictMode(file: string): void {
  if (file === ":memory:") return;
  closeSync(openSync(file, "a", 0o600));
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      if ((statSync(f).mode & 0o077) !== 0) chmodSync(f, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
}

function migrate(db: Database.Database, file: string, log: Logger): void {
  db.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  const row = db.prepare("SELECT version FROM schema_version").get() as
    | { version: number }
    | undefined;
  const from = row?.version ?? 0;
  if (from > SCHEMA_VERSION) {
    throw new StoreError(
      "E_STORE_VERSION",
      `${file} has schema version ${from}, newer than this picluster (${SCHEMA_VERSION}); upgrade picluster`,
    );
  }
  for (let v = from; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v] as string);
      db.prepare("DELETE FROM schema_version").run();
      db.prepare("INSERT INTO schema_version (version) VALUES (?)").run(v + 1);
    })();
    log.info("store migrated", { file, version: v + 1 });
  }
}

function nodeRow(n: NodeRecord, storedSeq = 0): Row {
  return {
    id: n.id,
    name: n.name,
    labels: JSON.stringify(n.labels),
    address: n.address,
    state: n.state,
    stateSince: n.stateSince,
    stateReason: n.stateReason,
    firstSeen: n.firstSeen,
    lastSeen: n.lastSeen,
    agentVersion: n.agentVersion,
    legacy: n.legacy ? 1 : 0,
    details: n.details === undefined ? null : JSON.stringify(n.details),
    vitals: n.vitals === undefined ? null : JSON.stringify(n.vitals),
    vitalsAt: n.vitalsAt ?? null,
    lastSeq: Math.max(n.lastSeq, storedSeq),
    dropped: n.dropped,
  };
}

function nodeFromRow(r: Row): NodeRecord {
  const json = <T>(v: unknown): T | undefined =>
    typeof v === "string" ? (JSON.parse(v) as T) : undefined;
  const record: NodeRecord = {
    id: String(r.id),
    name: String(r.name),
    labels: json<Record<string, string>>(r.labels) ?? {},
    address: String(r.address),
    state: String(r.state) as NodeState,
    stateSince: Number(r.state_since),
    stateReason: String(r.state_reason),
    firstSeen: Number(r.first_seen),
    lastSeen: Number(r.last_seen),
    agentVersion: String(r.agent_version),
    legacy: Number(r.legacy) === 1,
    lastSeq: Number(r.last_seq),
    dropped: Number(r.dropped),
  };
  const details = json<MessageMap["details"]>(r.details);
  const vitals = json<MessageMap["vitals"]>(r.vitals);
  if (details !== undefined) record.details = details;
  if (vitals !== undefined) record.vitals = vitals;
  if (r.vitals_at !== null && r.vitals_at !== undefined) record.vitalsAt = Number(r.vitals_at);
  return record;
}
