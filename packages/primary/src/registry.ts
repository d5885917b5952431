/**
 * Every node the primary knows: identity, state, details, latest vitals.
 * Handlers and the liveness detector write it; every write that matters
 * becomes an event. Kept behind an interface so a store can back it.
 */
import type { MessageMap } from "@picluster/common";
import { describeDetails, detailsChanges } from "./details-changes.js";
import type { EventBus, NodeState, ThrottleFlag } from "./events.js";

export type Details = MessageMap["details"];
export type Vitals = MessageMap["vitals"];

/** The state reason of every node restored from the store when a primary starts. */
export const RESTART_REASON = "primary restarted";

export interface NodeRecord {
  id: string;
  name: string;
  labels: Record<string, string>;
  /** `ip:port` of the current or last connection. */
  address: string;
  state: NodeState;
  stateSince: number;
  stateReason: string;
  firstSeen: number;
  lastSeen: number;
  agentVersion: string;
  /** Joined through the tutorial's plaintext protocol: never sent tasks. */
  legacy: boolean;
  details?: Details;
  vitals?: Vitals;
  vitalsAt?: number;
  /** Highest acknowledged seq from this node. */
  lastSeq: number;
  /** Samples the agent reports it dropped from a full outbox. */
  dropped: number;
}

/** What the primaries share of a node (scale-out mode): not its vitals nor what this store holds. */
export type SharedNode = Omit<NodeRecord, "vitals" | "vitalsAt" | "lastSeq" | "dropped">;

/** The shared part of a record. */
export function sharedPart(node: NodeRecord): SharedNode {
  const { vitals: _v, vitalsAt: _a, lastSeq: _s, dropped: _d, ...shared } = node;
  return shared;
}

export interface NodeHello {
  id: string;
  name: string;
  labels: Record<string, string>;
  address: string;
  agentVersion: string;
  legacy: boolean;
}

export interface Registry {
  get(id: string): NodeRecord | undefined;
  list(): NodeRecord[];
  /** A node connected and identified itself: create it or bring it back, `alive`. */
  connected(hello: NodeHello, at: number): NodeRecord;
  /** Any message from the node: it is alive (a suspect node recovers). */
  seen(id: string, at: number): void;
  setState(id: string, state: NodeState, reason: string, at: number): void;
  setDetails(id: string, details: Details, at: number): void;
  setVitals(id: string, vitals: Vitals, seq: number | undefined, at: number): void;
  /** Samples up to `seq` are stored: replays of them are duplicates. */
  markStored(id: string, seq: number): void;
  setDropped(id: string, dropped: number): void;
  /** Forget a node (it was removed): no event here, the caller announces the removal. */
  remove(id: string): NodeRecord | undefined;
}

/**
 * A node by id, else by name. Should a tutorial node share a name with a
 * node of our own (it joined before the real node had a credential), the
 * real node wins: a name never leads to the tutorial one first.
 */
export function lookupNode(registry: Registry, idOrName: string): NodeRecord | undefined {
  const byId = registry.get(idOrName);
  if (byId !== undefined) return byId;
  let legacy: NodeRecord | undefined;
  for (const n of registry.list()) {
    if (n.name !== idOrName) continue;
    if (!n.legacy) return n;
    legacy ??= n;
  }
  return legacy;
}

const THROTTLE_FLAGS: readonly ThrottleFlag[] = [
  "underVoltage",
  "freqCapped",
  "throttled",
  "softTempLimit",
];

/**
 * Every record built with the same literal, fields in the same order and
 * the optional ones present: V8 then gives all records one hidden class, and
 * the liveness sweep and per-message reads stay fast (spread-built records
 * measured 8x slower to sweep at 10 000 nodes).
 */
function makeRecord(r: NodeRecord): NodeRecord {
  return {
    id: r.id,
    name: r.name,
    labels: r.labels,
    address: r.address,
    state: r.state,
    stateSince: r.stateSince,
    stateReason: r.stateReason,
    firstSeen: r.firstSeen,
    lastSeen: r.lastSeen,
    agentVersion: r.agentVersion,
    legacy: r.legacy,
    details: r.details,
    vitals: r.vitals,
    vitalsAt: r.vitalsAt,
    lastSeq: r.lastSeq,
    dropped: r.dropped,
  };
}

export class MemoryRegistry implements Registry {
  private readonly nodes = new Map<string, NodeRecord>();

  constructor(private readonly events: EventBus) {}

  /**
   * Start from nodes known before a restart: each is `down` until it
   * reconnects, and keeps its last stored seq so replays are de-duplicated.
   */
  restore(records: readonly NodeRecord[], reason: string, at: number): void {
    for (const r of records) {
      const wasUp = r.state === "alive" || r.state === "suspect";
      const node = makeRecord(r);
      if (wasUp) {
        node.state = "down";
        node.stateSince = at;
        node.stateReason = reason;
      }
      this.nodes.set(r.id, node);
    }
  }

  get(id: string): NodeRecord | undefined {
    return this.nodes.get(id);
  }

  list(): NodeRecord[] {
    return [...this.nodes.values()];
  }

  connected(hello: NodeHello, at: number): NodeRecord {
    let node = this.nodes.get(hello.id);
    if (node === undefined) {
      node = makeRecord({
        ...hello,
        state: "alive",
        stateSince: at,
        stateReason: "connected",
        firstSeen: at,
        lastSeen: at,
        lastSeq: 0,
        dropped: 0,
      });
      this.nodes.set(hello.id, node);
      this.announce(node, at);
      return node;
    }
    Object.assign(node, {
      name: hello.name,
      labels: hello.labels,
      address: hello.address,
      agentVersion: hello.agentVersion,
      legacy: hello.legacy,
    });
    node.lastSeen = at;
    this.setState(node.id, "alive", "reconnected", at);
    return node;
  }

  seen(id: string, at: number): void {
    const node = this.nodes.get(id);
    if (node === undefined) return;
    node.lastSeen = at;
    // Only live sessions call this, so a node silent long enough to be
    // down comes back as soon as it speaks again.
    if (node.state === "suspect" || node.state === "down")
      this.setState(id, "alive", "heard from again", at);
  }

  setState(id: string, state: NodeState, reason: string, at: number): void {
    const node = this.nodes.get(id);
    if (node === undefined || node.state === state) return;
    const from = node.state;
    node.state = state;
    node.stateSince = at;
    node.stateReason = reason;
    this.events.emit({
      kind: "node.state",
      at,
      nodeId: id,
      name: node.name,
      from,
      to: state,
      reason,
    });
  }

  setDetails(id: string, details: Details, at: number): void {
    const node = this.nodes.get(id);
    if (node === undefined) return;
    const before = node.details;
    node.details = details;
    // Agents send details whenever any field differs (a boot time that
    // jitters, an update count): an event only for what a person cares about.
    const changes =
      before === undefined ? [describeDetails(details)] : detailsChanges(before, details);
    if (changes.length === 0) return;
    this.events.emit({
      kind: "node.details",
      at,
      nodeId: id,
      name: node.name,
      changes,
      ...(before === undefined ? { first: true } : {}),
    });
  }

  setVitals(id: string, vitals: Vitals, seq: number | undefined, at: number): void {
    const node = this.nodes.get(id);
    if (node === undefined) return;
    const before = node.vitals?.throttling;
    const checksBefore = new Map((node.vitals?.checks ?? []).map((c) => [c.name, c.up]));
    const containersBefore = new Map((node.vitals?.containers ?? []).map((c) => [c.name, c.state]));
    node.vitals = vitals;
    node.vitalsAt = at;

    this.events.emit({ kind: "node.vitals", at, nodeId: id, name: node.name, seq });
    const after = vitals.throttling;
    for (const flag of THROTTLE_FLAGS) {
      const was = before?.[flag] ?? false;
      const is = after?.[flag] ?? false;
      if (was !== is)
        this.events.emit({
          kind: "node.throttling",
          at,
          nodeId: id,
          name: node.name,
          flag,
          on: is,
        });
    }
    for (const c of vitals.checks ?? []) {
      const was = checksBefore.get(c.name);
      // A check seen for the first time is news only when it is down.
      if (was === undefined ? c.up : was === c.up) continue;
      this.events.emit({
        kind: c.up ? "check.up" : "check.down",
        at,
        nodeId: id,
        name: node.name,
        check: c.name,
        checkKind: c.kind,
        target: c.target,
        reason: c.reason,
      });
    }
    for (const c of vitals.containers ?? []) {
      const was = containersBefore.get(c.name);
      if (was === undefined || was === c.state) continue;
      this.events.emit({
        kind: "container.state",
        at,
        nodeId: id,
        name: node.name,
        container: c.name,
        image: c.image,
        from: was,
        to: c.state,
        ...(c.exitCode === undefined ? {} : { exitCode: c.exitCode }),
      });
    }
  }

  markStored(id: string, seq: number): void {
    const node = this.nodes.get(id);
    if (node !== undefined && seq > node.lastSeq) node.lastSeq = seq;
  }

  setDropped(id: string, dropped: number): void {
    const node = this.nodes.get(id);
    if (node !== undefined) node.dropped = dropped;
  }

  /**
   * The scale-out mode: a node as the primary holding its session (or the
   * leader) published it. Created if new (`node.joined`); its identity and
   * details taken over; its state set (`node.state` when it changed). This
   * primary's own figures for it (vitals, last stored seq) are kept.
   */
  applyShared(shared: SharedNode, at: number): void {
    let node = this.nodes.get(shared.id);
    if (node === undefined) {
      // Details through setDetails below, so that the page's first-details event is told.
      node = makeRecord({ ...shared, details: undefined, lastSeq: 0, dropped: 0 });
      this.nodes.set(shared.id, node);
      this.announce(node, at);
      if (shared.details !== undefined) this.setDetails(node.id, shared.details, at);
      return;
    }
    Object.assign(node, {
      name: shared.name,
      labels: shared.labels,
      address: shared.address,
      agentVersion: shared.agentVersion,
      legacy: shared.legacy,
      firstSeen: Math.min(node.firstSeen, shared.firstSeen),
      lastSeen: Math.max(node.lastSeen, shared.lastSeen),
    });
    if (
      shared.details !== undefined &&
      JSON.stringify(shared.details) !== JSON.stringify(node.details)
    )
      this.setDetails(node.id, shared.details, at);
    if (shared.state !== node.state) {
      this.setState(node.id, shared.state, shared.stateReason, shared.stateSince);
      node.stateSince = shared.stateSince;
    }
  }

  /** A node new to this registry: it joined, in the state it has. */
  private announce(node: NodeRecord, at: number): void {
    this.events.emit({ kind: "node.joined", at, nodeId: node.id, name: node.name });
    this.events.emit({
      kind: "node.state",
      at,
      nodeId: node.id,
      name: node.name,
      from: undefined,
      to: node.state,
      reason: node.stateReason,
    });
  }

  remove(id: string): NodeRecord | undefined {
    const node = this.nodes.get(id);
    // Every write above ignores an unknown id, so late messages of a cut session change nothing.
    this.nodes.delete(id);
    return node;
  }
}
