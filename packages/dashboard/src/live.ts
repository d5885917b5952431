/**
 * The page's live picture of the cluster: every node from /api/nodes, kept
 * current by /api/stream (state changes at once, figures once a second),
 * with a short CPU history per node for the tiles' sparklines and the
 * cluster's totals over time for its chart. The stream reconnects by itself
 * (EventSource); the page shows when it is down, and after a few seconds
 * stops showing the last states as if they were current.
 */
import type { ClusterStatus } from "@picluster/common/shared";
import {
  apiToken,
  eventStream,
  type Figures,
  getJson,
  type NodeState,
  type NodeSummary,
  type StoredEvent,
  streamTicket,
  type Throttling,
  TOKEN_EVENT,
} from "./api.js";
import { ClusterHistory, clusterTotals } from "./history.js";
import type { LiveNode } from "./live-node.js";

export type { LiveNode } from "./live-node.js";

export interface FiringAlert {
  rule: string;
  title: string;
  severity: "critical" | "warning" | "info";
  firedAt: number | null;
}

export type StreamStatus = "connecting" | "live" | "reconnecting";

/** Whether the primary stores what happens: a full disk stops that, not the live view. */
export type StoreStatus = { ok: true } | { ok: false; cause: string; since: number };

const HISTORY = 60;
/** A stream lost for longer than this: the primary is taken as unreachable. */
const UNREACHABLE_AFTER_MS = 5_000;

function figuresOf(f: Record<string, number | null> | null | undefined): Figures {
  return {
    cpu: f?.cpu ?? null,
    temp: f?.temp ?? null,
    mem: f?.mem ?? null,
    disk: f?.disk ?? null,
    load1: f?.load1 ?? null,
  };
}

type Listener = () => void;
const NO_FLAGS: Throttling = {
  underVoltage: false,
  throttled: false,
  freqCapped: false,
  softTempLimit: false,
};
export type TaskEventKind = "task.started" | "task.node" | "task.finished";
type TaskListener = (kind: TaskEventKind, event: Record<string, unknown>) => void;
const TASK_KINDS: TaskEventKind[] = ["task.started", "task.node", "task.finished"];

type ScaleOut = NonNullable<ClusterStatus["scaleOut"]>;
/** How often the page asks again who the primaries are (scale-out mode only). */
const SCALE_OUT_POLL_MS = 5_000;

class LiveCluster {
  nodes = new Map<string, LiveNode>();
  status: StreamStatus = "connecting";
  /** Bumped on every change: components re-render on it. */
  version = 0;
  error: string | undefined;
  /** Since when the primary has been out of reach (the stream lost for UNREACHABLE_AFTER_MS), or undefined. */
  unreachableSince: number | undefined;
  private lostAt: number | undefined;
  private lostTimer: ReturnType<typeof setTimeout> | undefined;
  /** The cluster's totals over time, since the page opened. */
  readonly history = new ClusterHistory();
  private listeners = new Set<Listener>();
  private source: EventSource | undefined;
  private pending = false;

  /** Alerts firing now, by node id (from /api/alerts, read again on every alert event). */
  alerts = new Map<string, FiringAlert[]>();
  /** From /api/cluster, then the stream's primary.store_failed / primary.store_ok. */
  store: StoreStatus = { ok: true };
  /** The scale-out mode's primaries, leader and NATS health (from /api/cluster); undefined when embedded. */
  scaleOut: ScaleOut | undefined;
  private scaleOutTimer: ReturnType<typeof setInterval> | undefined;
  private taskListeners = new Set<TaskListener>();
  private alertsTimer: ReturnType<typeof setTimeout> | undefined;

  private reloadAlertsSoon(): void {
    this.alertsTimer ??= setTimeout(() => {
      this.alertsTimer = undefined;
      void this.reloadAlerts();
    }, 100);
  }

  async reloadAlerts(): Promise<void> {
    try {
      const { states } = await getJson<{
        states: Array<FiringAlert & { nodeId: string; state: string }>;
      }>("/api/alerts");
      const next = new Map<string, FiringAlert[]>();
      for (const s of states) {
        if (s.state !== "firing") continue;
        const list = next.get(s.nodeId) ?? [];
        list.push({ rule: s.rule, title: s.title, severity: s.severity, firedAt: s.firedAt });
        next.set(s.nodeId, list);
      }
      this.alerts = next;
    } catch {
      // An older primary without alerts, or a moment without the API: no alerts shown.
      this.alerts = new Map();
    }
    this.changed();
  }

  /**
   * Task progress as it happens: `task.started`, `task.node` and
   * `task.finished` (stored events: the figures are under `data`). A run's
   * output is not on this public stream: see followEvents in api.ts.
   */
  onTask(fn: TaskListener): () => void {
    this.taskListeners.add(fn);
    if (!this.started) this.start();
    return () => this.taskListeners.delete(fn);
  }

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    if (!this.started) this.start();
    return () => this.listeners.delete(fn);
  }

  private changed(now = false): void {
    this.version++;
    if (now) {
      // A whole new picture (the first load, a reload): show it at once.
      for (const fn of this.listeners) fn();
      return;
    }
    // One render per 50 ms at most, however many events arrive. (Not
    // requestAnimationFrame: a page in a background tab or a headless
    // browser gets few or no frames, and must still be current when seen.)
    if (this.pending) return;
    this.pending = true;
    setTimeout(() => {
      this.pending = false;
      for (const fn of this.listeners) fn();
    }, 50);
  }

  private started = false;
  /** Counts stream openings: a ticket that comes back after a newer opening is dropped. */
  private openings = 0;

  private start(): void {
    this.started = true;
    void this.reload();
    void this.reloadAlerts();
    void this.reloadStore();
    this.connect();
    // Signed in or out: another token sees other nodes, so everything is read again.
    addEventListener(TOKEN_EVENT, () => {
      this.source?.close();
      this.source = undefined;
      void this.reload();
      void this.reloadAlerts();
      void this.reloadStore();
      this.connect();
    });
  }

  async reloadStore(): Promise<void> {
    try {
      const { primary, scaleOut } = await getJson<{
        primary?: { store?: { ok: boolean; cause?: string; since?: number } };
        scaleOut?: ScaleOut;
      }>("/api/cluster");
      const s = primary?.store;
      this.store =
        s === undefined || s.ok
          ? { ok: true }
          : { ok: false, cause: String(s.cause), since: Number(s.since) };
      this.scaleOut = scaleOut;
      // The primaries come and go without a stream event: asked again now and then.
      if (scaleOut !== undefined)
        this.scaleOutTimer ??= setInterval(() => void this.reloadStore(), SCALE_OUT_POLL_MS);
    } catch {
      // A moment without the API: the stream's events, or the next reload, say it.
    }
    this.changed();
  }

  /** A point of the cluster chart, from the picture as it is now. */
  private record(): void {
    this.history.add(Date.now(), clusterTotals(this.nodes.values()));
  }

  /** Open the stream: with a token, through a ticket (EventSource cannot send the token). */
  private connect(): void {
    const opening = ++this.openings;
    if (apiToken() === "") {
      this.open(undefined);
      return;
    }
    streamTicket().then(
      (ticket) => {
        if (opening === this.openings) this.open(ticket);
      },
      () => {
        // Refused or unreachable: the stream's error path retries.
        if (opening === this.openings) this.open(undefined);
      },
    );
  }

  private open(ticket: string | undefined): void {
    const source = eventStream(ticket);
    this.source = source;
    source.onopen = () => {
      // After a gap, fetch everything again: events may have been missed.
      if (this.status === "reconnecting") {
        void this.reload();
        void this.reloadAlerts();
        void this.reloadStore();
      }
      this.status = "live";
      clearTimeout(this.lostTimer);
      this.lostAt = undefined;
      this.unreachableSince = undefined;
      this.changed();
    };
    source.onerror = () => {
      this.status = "reconnecting";
      // Past a few seconds, the states shown are only the last known (the
      // nodes may have died meanwhile): the page says so instead.
      if (this.lostAt === undefined) {
        const lostAt = Date.now();
        this.lostAt = lostAt;
        this.lostTimer = setTimeout(() => {
          this.unreachableSince = lostAt;
          this.changed();
        }, UNREACHABLE_AFTER_MS);
      }
      this.changed();
      // EventSource retries by itself after a dropped connection, but gives
      // up for good on an answer that is not a stream (a proxy's 502 while
      // the primary restarts): then start over after a pause.
      if (source.readyState === EventSource.CLOSED)
        setTimeout(() => {
          if (this.source === source) this.connect();
        }, 3_000);
    };
    source.addEventListener("node.state", (e) => {
      const ev = JSON.parse((e as MessageEvent<string>).data) as StoredEvent;
      const node = ev.nodeId === null ? undefined : this.nodes.get(ev.nodeId);
      if (node === undefined) return void this.reload();
      node.view = {
        ...node.view,
        state: ev.data.to as NodeState,
        stateSince: ev.ts,
        stateReason: String(ev.data.reason ?? ""),
      };
      node.rev++;
      this.record();
      this.changed();
    });
    source.addEventListener("node.throttling", (e) => {
      const ev = JSON.parse((e as MessageEvent<string>).data) as StoredEvent;
      const node = ev.nodeId === null ? undefined : this.nodes.get(ev.nodeId);
      const flag = ev.data.flag as keyof Throttling;
      if (node === undefined || !(flag in NO_FLAGS)) return;
      node.throttling = { ...(node.throttling ?? NO_FLAGS), [flag]: ev.data.on === true };
      node.rev++;
      this.changed();
    });
    source.addEventListener("node.joined", () => void this.reload());
    source.addEventListener("primary.store_failed", (e) => {
      const ev = JSON.parse((e as MessageEvent<string>).data) as StoredEvent;
      this.store = { ok: false, cause: String(ev.data.cause), since: ev.ts };
      this.changed();
    });
    source.addEventListener("primary.store_ok", () => {
      this.store = { ok: true };
      this.changed();
    });
    source.addEventListener("node.removed", (e) => {
      const ev = JSON.parse((e as MessageEvent<string>).data) as StoredEvent;
      if (ev.nodeId !== null) this.removed(ev.nodeId);
    });
    for (const kind of ["alert.firing", "alert.resolved"])
      source.addEventListener(kind, () => this.reloadAlertsSoon());
    for (const kind of TASK_KINDS) {
      source.addEventListener(kind, (e) => {
        const data = JSON.parse((e as MessageEvent<string>).data) as Record<string, unknown>;
        for (const fn of this.taskListeners) fn(kind, data);
      });
    }
    source.addEventListener("vitals", (e) => {
      const batch = JSON.parse((e as MessageEvent<string>).data) as Array<{
        nodeId: string;
        at: number | null;
        figures: Record<string, number | null>;
      }>;
      let missing = false;
      for (const b of batch) {
        const node = this.nodes.get(b.nodeId);
        if (node === undefined) continue;
        // Uptime is not in the batch: a node first seen without vitals gets it from a reload.
        if (node.uptimeS === null) missing = true;
        const f = b.figures;
        node.figures = figuresOf(f);
        if (b.at !== null) node.seenAt = Math.max(node.seenAt, b.at);
        if (f.cpu !== null && f.cpu !== undefined) {
          node.cpuHistory = [...node.cpuHistory, f.cpu].slice(-HISTORY);
        }
        node.rev++;
      }
      if (missing) this.reloadSoon();
      this.record();
      this.changed();
    });
  }

  /** A node was removed: off the page at once (its own page may have just removed it). */
  removed(id: string): void {
    if (!this.nodes.delete(id)) return;
    this.alerts.delete(id);
    this.changed(true);
  }

  private reloadTimer: ReturnType<typeof setTimeout> | undefined;

  /** A reload within 5 s, once however often asked. */
  private reloadSoon(): void {
    this.reloadTimer ??= setTimeout(() => {
      this.reloadTimer = undefined;
      void this.reload();
    }, 5_000);
  }

  async reload(): Promise<void> {
    try {
      const { nodes } = await getJson<{ nodes: NodeSummary[] }>("/api/nodes?view=summary");
      const next = new Map<string, LiveNode>();
      const now = Date.now();
      for (const view of nodes) {
        const old = this.nodes.get(view.id);
        const figures = figuresOf(view.figures);
        next.set(view.id, {
          view,
          figures,
          uptimeS: view.uptimeS,
          uptimeAt: view.vitalsAt ?? now,
          seenAt: Math.max(view.lastSeen, view.vitalsAt ?? 0),
          throttling: view.throttling,
          cores: view.cores,
          memoryBytes: view.memoryBytes,
          cpuHistory: old?.cpuHistory ?? (figures.cpu === null ? [] : [figures.cpu]),
          rev: 0,
        });
      }
      this.nodes = next;
      this.error = undefined;
      this.record();
    } catch (err) {
      this.error = err instanceof Error ? err.message : String(err);
    }
    this.changed(true);
  }
}

export const live = new LiveCluster();
