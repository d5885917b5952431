/**
 * The page's live picture of the cluster: every node from /api/nodes, kept
 * current by /api/stream (state changes at once, figures once a second),
 * with a short CPU history per node for the tiles' sparklines. The stream
 * reconnects by itself (EventSource) and the page shows when it is down.
 */
import { type Figures, getJson, type NodeState, type NodeView, type StoredEvent } from "./api.js";

/** A node as `/api/nodes?view=summary` sends it: the tile's figures, not the whole vitals. */
interface NodeSummary extends NodeView {
  figures: Record<string, number | null> | null;
  uptimeS: number | null;
}

export interface LiveNode {
  view: NodeView;
  figures: Figures;
  uptimeS: number | null;
  uptimeAt: number;
  /** Last CPU figures, oldest first, at most HISTORY. */
  cpuHistory: number[];
  /** Bumped whenever this node changes: its tile re-renders only then (and on the clock). */
  rev: number;
}

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

type Listener = () => void;
export type TaskEventKind = "task.started" | "task.node" | "task.finished";
type TaskListener = (kind: TaskEventKind, event: Record<string, unknown>) => void;
const TASK_KINDS: TaskEventKind[] = ["task.started", "task.node", "task.finished"];

class LiveCluster {
  nodes = new Map<string, LiveNode>();
  status: StreamStatus = "connecting";
  /** Bumped on every change: components re-render on it. */
  version = 0;
  error: string | undefined;
  private listeners = new Set<Listener>();
  private source: EventSource | undefined;
  private pending = false;

  /** Alerts firing now, by node id (from /api/alerts, read again on every alert event). */
  alerts = new Map<string, FiringAlert[]>();
  /** From /api/cluster, then the stream's primary.store_failed / primary.store_ok. */
  store: StoreStatus = { ok: true };
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
    if (this.source === undefined) this.start();
    return () => this.taskListeners.delete(fn);
  }

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    if (this.source === undefined) this.start();
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

  private start(): void {
    void this.reload();
    void this.reloadAlerts();
    void this.reloadStore();
    this.connect();
  }

  async reloadStore(): Promise<void> {
    try {
      const { primary } = await getJson<{
        primary?: { store?: { ok: boolean; cause?: string; since?: number } };
      }>("/api/cluster");
      const s = primary?.store;
      this.store =
        s === undefined || s.ok
          ? { ok: true }
          : { ok: false, cause: String(s.cause), since: Number(s.since) };
    } catch {
      // A moment without the API: the stream's events, or the next reload, say it.
    }
    this.changed();
  }

  private connect(): void {
    const source = new EventSource("/api/stream");
    this.source = source;
    source.onopen = () => {
      // After a gap, fetch everything again: events may have been missed.
      if (this.status === "reconnecting") {
        void this.reload();
        void this.reloadAlerts();
        void this.reloadStore();
      }
      this.status = "live";
      this.changed();
    };
    source.onerror = () => {
      this.status = "reconnecting";
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
        node.figures = {
          cpu: f.cpu ?? null,
          temp: f.temp ?? null,
          mem: f.mem ?? null,
          disk: f.disk ?? null,
        };
        if (f.cpu !== null && f.cpu !== undefined) {
          node.cpuHistory = [...node.cpuHistory, f.cpu].slice(-HISTORY);
        }
        node.rev++;
      }
      if (missing) this.reloadSoon();
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
        const f = view.figures;
        const figures: Figures = {
          cpu: f?.cpu ?? null,
          temp: f?.temp ?? null,
          mem: f?.mem ?? null,
          disk: f?.disk ?? null,
        };
        next.set(view.id, {
          view,
          figures,
          uptimeS: view.uptimeS,
          uptimeAt: view.vitalsAt ?? now,
          cpuHistory: old?.cpuHistory ?? (figures.cpu === null ? [] : [figures.cpu]),
          rev: 0,
        });
      }
      this.nodes = next;
      this.error = undefined;
    } catch (err) {
      this.error = err instanceof Error ? err.message : String(err);
    }
    this.changed(true);
  }
}

export const live = new LiveCluster();
