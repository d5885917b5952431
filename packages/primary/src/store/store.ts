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

import type { SeriesPoint, StoredEvent, StoredNodeResult, StoredTaskRun } from "@picluster/common";
import {
  type Clock,
  describeError,
  type ErrorCode,
  type Logger,
  type MessageMap,
  seriesKey,
} from "@picluster/common";
import type Database from "better-sqlite3";
import { type ClusterEvent, isStreamOnly, type StoreFailureCause } from "../events.js";
import type { NodeRecord } from "../registry.js";
import { openDatabase } from "./database.js";
import { FAILURE_CODES, StoreError, storeFailureCause, storeWriteError } from "./failure.js";
import { METRIC_NAMES, metricValues } from "./metrics.js";
import { nodeRow } from "./node-rows.js";
import { type EventQuery, type Retention, type Series, StoreReads } from "./reads.js";
import { TaskRuns } from "./task-runs.js";

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
  /** The node's own series at this sample (`[metrics.NAME]`). */
  custom?: ReadonlyArray<{ series: string; value: number }>;
}

// The shapes the API answers with live in common, for the CLI and the dashboard too.
export type { StoredNodeResult, StoredTaskRun } from "@picluster/common";
export { openDatabase } from "./database.js";
export { StoreError, storeFailureCause, storeWriteError } from "./failure.js";
export { type EventQuery, MAX_POINTS, type Retention, type Series, StoreReads } from "./reads.js";
export { TaskRuns } from "./task-runs.js";
export type { SeriesPoint, StoredEvent };

/** The open file and what works on it; absent while the store is closed. */
interface Parts {
  db: Database.Database;
  /** Ingest, rollup and retention statements, prepared once. */
  st: ReturnType<typeof prepareIngest>;
  reads: StoreReads;
  runs: TaskRuns;
}

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

/**
 * A running container's figures as series of the custom tables, keyed
 * `container.cpu{name="web"}` (a dot no series of a node's own can hold):
 * charted and rolled up like the rest.
 */
export function containerSeries(
  containers: MessageMap["vitals"]["containers"],
): Array<{ series: string; value: number }> {
  const out: Array<{ series: string; value: number }> = [];
  for (const c of containers ?? []) {
    if (c.cpuPct !== undefined)
      out.push({ series: seriesKey("container.cpu", [["name", c.name]]), value: c.cpuPct });
    if (c.memBytes !== undefined)
      out.push({ series: seriesKey("container.mem", [["name", c.name]]), value: c.memBytes });
    if (c.rxBps !== undefined)
      out.push({ series: seriesKey("container.rx", [["name", c.name]]), value: c.rxBps });
    if (c.txBps !== undefined)
      out.push({ series: seriesKey("container.tx", [["name", c.name]]), value: c.txBps });
  }
  return out;
}

export class Store {
  private opened: Parts | undefined;
  private samples: PendingSample[] = [];
  private pendingEvents: PendingEvent[] = [];
  private nodes = new Map<string, NodeRecord>();
  private waiters: Array<{ resolve(): void; reject(err: Error): void }> = [];
  private cancelFlush: (() => void) | undefined;
  private immediateFlush = false;
  private readonly dirtyMinutes = new Set<number>();
  private readonly abort = new AbortController();
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
    this.opened = {
      db,
      st: prepareIngest(db),
      reads: new StoreReads(db, this.opts.clock, this.opts.retention),
      runs: new TaskRuns(db),
    };
    // Minutes that have samples but no rollup yet (a crash between the two).
    const last = db.prepare("SELECT max(bucket) AS b FROM vitals_1m").get() as { b: number | null };
    const rows = db
      .prepare("SELECT DISTINCT (ts / 60000) * 60000 AS b FROM vitals_raw WHERE ts >= ?")
      .all(last.b ?? 0) as Array<{ b: number }>;
    for (const r of rows) this.dirtyMinutes.add(r.b);
    return this;
  }

  /** The one closed-guard: everything that needs the file goes through it. */
  private get parts(): Parts {
    if (this.opened === undefined) throw new StoreError("E_STORE_CLOSED", "the store is not open");
    return this.opened;
  }

  private get st(): Parts["st"] {
    return this.parts.st;
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
    node: Pick<NodeRecord, "id">,
    ts: number,
    seq: number,
    vitals: MessageMap["vitals"],
  ): Promise<void> {
    return this.addValues(node.id, ts, seq, metricValues(vitals), [
      ...(vitals.custom ?? []),
      ...containerSeries(vitals.containers),
    ]);
  }

  /**
   * Queue a sample's figures (in METRIC_NAMES order, null where none):
   * what addVitals stores, and what `picluster cluster import` carries
   * from another store. Resolves once committed.
   */
  addValues(
    nodeId: string,
    ts: number,
    seq: number,
    values: Array<number | null>,
    custom?: ReadonlyArray<{ series: string; value: number }>,
  ): Promise<void> {
    if (this.opened === undefined)
      return Promise.reject(
        new StoreError("E_STORE_CLOSED", "the store is closed; the sample stays with its agent"),
      );
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
    this.samples.push(
      custom === undefined || custom.length === 0
        ? { nodeId, ts, seq, values }
        : { nodeId, ts, seq, values, custom },
    );
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.scheduleFlush();
    return done;
  }

  /**
   * Rollup rows copied from another store (`picluster cluster import`):
   * `[bucket, samples, then min, max, sum, n of each metric in
   * METRIC_NAMES order]`. A bucket this store already has is kept as it is.
   * Written at once, in one transaction; returns how many were new.
   */
  importRollups(table: "1m" | "1h", nodeId: string, rows: Array<Array<number | null>>): number {
    const st = table === "1m" ? this.st.importMinute : this.st.importHour;
    let added = 0;
    this.parts.db.transaction(() => {
      for (const row of rows) added += st.run(nodeId, ...row).changes;
    })();
    return added;
  }

  /**
   * Imported rows of a node's own series (`picluster cluster import`):
   * [series, ts, value] for custom_raw, [series, bucket, min, max, sum, n] for
   * the rollups. A row the store has is kept; a malformed one is skipped.
   * Returns the rows added.
   */
  importCustom(
    table: "custom_raw" | "custom_1m" | "custom_1h",
    nodeId: string,
    rows: ReadonlyArray<ReadonlyArray<number | string | null>>,
  ): number {
    const raw = table === "custom_raw";
    const st =
      table === "custom_raw"
        ? this.st.insertCustom
        : table === "custom_1m"
          ? this.st.importCustomMinute
          : this.st.importCustomHour;
    const num = (v: unknown) => typeof v === "number" && Number.isFinite(v);
    let added = 0;
    this.parts.db.transaction(() => {
      for (const row of rows) {
        const [series, at, ...values] = row;
        const ok =
          typeof series === "string" &&
          num(at) &&
          (raw
            ? values.length === 1 && num(values[0])
            : values.length === 4 &&
              num(values[3]) &&
              values.slice(0, 3).every((v) => v === null || num(v)));
        if (ok) added += st.run(nodeId, series, at, ...values).changes;
      }
    })();
    return added;
  }

  /** Queue an event (and the node it concerns) for the next batch. */
  addEvent(event: ClusterEvent, node: NodeRecord | undefined): void {
    if (isStreamOnly(event)) return;
    if (this.opened === undefined) {
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
    if (this.opened === undefined) {
      const error = new StoreError(
        "E_STORE_CLOSED",
        "the store is closed; samples stay unacknowledged",
      );
      for (const w of waiters) w.reject(error);
      return;
    }
    const { db, st } = this.opened;
    const committed: LiveEvent[] = [];
    try {
      db.transaction(() => {
        for (const s of samples) {
          // A replayed sample (its seq already stored) brings no second copy of its series either.
          const { changes } = st.insertSample.run(s.nodeId, s.seq, s.ts, ...s.values);
          if (changes > 0 && s.custom !== undefined)
            for (const c of s.custom) {
              if (Number.isFinite(c.value)) st.insertCustom.run(s.nodeId, c.series, s.ts, c.value);
            }
        }
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
    if (this.opened === undefined || this.failure !== undefined) return;
    const { db, st } = this.opened;
    const current = Math.floor(this.opts.clock.now() / MINUTE_MS) * MINUTE_MS;
    const minutes = [...this.dirtyMinutes].filter((b) => b < current).sort((a, b) => a - b);
    if (minutes.length === 0) return;
    const hours = new Set<number>();
    try {
      db.transaction(() => {
        for (const bucket of minutes) {
          st.rollupMinute.run({ bucket });
          st.rollupCustomMinute.run({ bucket });
          hours.add(Math.floor(bucket / HOUR_MS) * HOUR_MS);
        }
        for (const bucket of hours) {
          st.rollupHour.run({ bucket });
          st.rollupCustomHour.run({ bucket });
        }
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
      [st.pruneCustomRaw, now - rawMs],
      [st.pruneCustomMinute, now - minuteMs],
      [st.pruneCustomHour, now - hourMs],
      [st.pruneEvents, now - hourMs],
    ];
    const step = (i: number): void => {
      if (i >= steps.length || this.opened === undefined || this.abort.signal.aborted) return;
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

  // Task runs (task-runs.ts): written at once, runs are few.
  insertTaskRun(run: Omit<StoredTaskRun, "id" | "finishedAt" | "nodes">): number {
    return this.parts.runs.insert(run);
  }

  saveTaskResult(runId: number, r: StoredNodeResult): void {
    this.parts.runs.saveResult(runId, r);
  }

  finishTaskRun(runId: number, status: string, finishedAt: number): void {
    this.parts.runs.finish(runId, status, finishedAt);
  }

  taskRuns(limit: number): StoredTaskRun[] {
    return this.parts.runs.recent(limit);
  }

  taskRunsForNode(nodeId: string, limit: number): StoredTaskRun[] {
    return this.parts.runs.forNode(nodeId, limit);
  }

  taskRun(id: number): StoredTaskRun | undefined {
    return this.parts.runs.get(id);
  }

  abandonTaskRuns(at: number): number {
    return this.parts.runs.abandon(at);
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
    const { db, st } = this.parts;
    this.flush();
    // A minute still to be rolled up would only find this node's raw rows gone; nothing to redo.
    return db
      .transaction(() => {
        st.deleteNode.run(nodeId);
        if (opts.keepHistory) return { vitalsRows: 0, events: 0 };
        let vitalsRows = 0;
        for (const del of st.deleteVitals) vitalsRows += del.run(nodeId).changes;
        const events = st.deleteEvents.run(nodeId).changes;
        return { vitalsRows, events };
      })
      .immediate();
  }

  // Reads for the API (reads.ts).
  /**
   * The highest seq stored for a node, from its raw samples: a node removed
   * with its history kept that joins again continues after it.
   */
  lastStoredSeq(nodeId: string): number {
    return this.parts.reads.lastStoredSeq(nodeId);
  }

  /** Every known node, as the registry should start from. */
  loadNodes(): NodeRecord[] {
    return this.parts.reads.loadNodes();
  }

  series(nodeId: string, metric: string, from: number, to: number, stepMs: number): Series {
    return this.parts.reads.series(nodeId, metric, from, to, stepMs);
  }

  customSeries(nodeId: string, since: number): string[] {
    return this.parts.reads.customSeries(nodeId, since);
  }

  events(q: EventQuery): StoredEvent[] {
    return this.parts.reads.events(q);
  }

  eventsAfter(afterId: number, limit: number): Array<{ id: number; kind: string; json: string }> {
    return this.parts.reads.eventsAfter(afterId, limit);
  }

  /** Commit what is queued, then close the file. */
  close(): void {
    this.abort.abort();
    if (this.opened === undefined) return;
    // A last try; what still cannot be written is lost with the process (samples stay with agents).
    this.flush();
    this.failure?.stopRetry();
    this.rollUp();
    this.opened.db.close();
    this.opened = undefined;
  }
}

/** The statements ingest, rollups and retention run, prepared once per open file. */
function prepareIngest(db: Database.Database) {
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
    importMinute: db.prepare(
      `INSERT OR IGNORE INTO vitals_1m (node_id, bucket, samples, ${rollupCols}) VALUES (?, ?, ?, ${rollup(() => "?, ?, ?, ?")})`,
    ),
    importCustomMinute: db.prepare(
      "INSERT OR IGNORE INTO custom_1m (node_id, series, bucket, min, max, sum, n) VALUES (?, ?, ?, ?, ?, ?, ?)",
    ),
    importCustomHour: db.prepare(
      "INSERT OR IGNORE INTO custom_1h (node_id, series, bucket, min, max, sum, n) VALUES (?, ?, ?, ?, ?, ?, ?)",
    ),
    importHour: db.prepare(
      `INSERT OR IGNORE INTO vitals_1h (node_id, bucket, samples, ${rollupCols}) VALUES (?, ?, ?, ${rollup(() => "?, ?, ?, ?")})`,
    ),
    rollupMinute:
      db.prepare(`INSERT OR REPLACE INTO vitals_1m (node_id, bucket, samples, ${rollupCols})
      SELECT node_id, @bucket, count(*), ${rollup((m) => `min(${m}), max(${m}), total(${m}), count(${m})`)}
      FROM vitals_raw WHERE ts >= @bucket AND ts < @bucket + 60000 GROUP BY node_id`),
    rollupHour:
      db.prepare(`INSERT OR REPLACE INTO vitals_1h (node_id, bucket, samples, ${rollupCols})
      SELECT node_id, @bucket, sum(samples), ${rollup((m) => `min(${m}_min), max(${m}_max), total(${m}_sum), sum(${m}_n)`)}
      FROM vitals_1m WHERE bucket >= @bucket AND bucket < @bucket + 3600000 GROUP BY node_id`),
    insertCustom: db.prepare(
      "INSERT OR IGNORE INTO custom_raw (node_id, series, ts, value) VALUES (?, ?, ?, ?)",
    ),
    rollupCustomMinute:
      db.prepare(`INSERT OR REPLACE INTO custom_1m (node_id, series, bucket, min, max, sum, n)
      SELECT node_id, series, @bucket, min(value), max(value), total(value), count(value)
      FROM custom_raw WHERE ts >= @bucket AND ts < @bucket + 60000 GROUP BY node_id, series`),
    rollupCustomHour:
      db.prepare(`INSERT OR REPLACE INTO custom_1h (node_id, series, bucket, min, max, sum, n)
      SELECT node_id, series, @bucket, min(min), max(max), total(sum), sum(n)
      FROM custom_1m WHERE bucket >= @bucket AND bucket < @bucket + 3600000 GROUP BY node_id, series`),
    pruneCustomRaw: db.prepare(
      "DELETE FROM custom_raw WHERE (node_id, series, ts) IN (SELECT node_id, series, ts FROM custom_raw WHERE ts < ? LIMIT ?)",
    ),
    pruneCustomMinute: db.prepare(
      "DELETE FROM custom_1m WHERE (node_id, series, bucket) IN (SELECT node_id, series, bucket FROM custom_1m WHERE bucket < ? LIMIT ?)",
    ),
    pruneCustomHour: db.prepare(
      "DELETE FROM custom_1h WHERE (node_id, series, bucket) IN (SELECT node_id, series, bucket FROM custom_1h WHERE bucket < ? LIMIT ?)",
    ),
    pruneRaw: db.prepare(
      "DELETE FROM vitals_raw WHERE (node_id, seq) IN (SELECT node_id, seq FROM vitals_raw WHERE ts < ? LIMIT ?)",
    ),
    pruneMinute: db.prepare(
      "DELETE FROM vitals_1m WHERE (node_id, bucket) IN (SELECT node_id, bucket FROM vitals_1m WHERE bucket < ? LIMIT ?)",
    ),
    pruneHour: db.prepare(
      "DELETE FROM vitals_1h WHERE (node_id, bucket) IN (SELECT node_id, bucket FROM vitals_1h WHERE bucket < ? LIMIT ?)",
    ),
    deleteNode: db.prepare("DELETE FROM nodes WHERE id = ?"),
    deleteVitals: [
      "vitals_raw",
      "vitals_1m",
      "vitals_1h",
      "custom_raw",
      "custom_1m",
      "custom_1h",
    ].map((table) => db.prepare(`DELETE FROM ${table} WHERE node_id = ?`)),
    deleteEvents: db.prepare("DELETE FROM events WHERE node_id = ?"),
    pruneEvents: db.prepare(
      "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE ts < ? LIMIT ?)",
    ),
  };
}
