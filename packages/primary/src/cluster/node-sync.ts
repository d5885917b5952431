/**
 * Node records shared through a JetStream key-value bucket (`n.<node id>`),
 * so that every primary serves the whole cluster.
 *
 * A record is written by the primary that holds the node's session (it
 * judges the node: a crash is still a TCP close there) with compare-and-set
 * on the revision it last saw; the value names that primary as `holder`.
 * A write that finds a newer revision yields unless its primary holds the
 * node's session now (then it writes again on the new revision): a node
 * that moved to another primary is never set back by the one it left.
 *
 * When a primary vanishes (its presence expires), the leader marks the nodes
 * it held `suspect`, and `down` if they have not come back through another
 * primary within `dead_after` (`sweepOrphans`).
 *
 * Every primary applies the others' writes to its registry, which tells its
 * event bus (state changes, details): so each stores the cluster's events
 * and its alert engine sees them.
 */

import type { KV, KvWatchEntry } from "@nats-io/kv";
import { type Clock, describeError, type Logger } from "@picluster/common";
import type { ClusterEvent, EventBus } from "../events.js";
import { type MemoryRegistry, type SharedNode, sharedPart } from "../registry.js";
import { watchAll } from "./nats.js";

interface SharedValue {
  holder: string | null;
  node: SharedNode;
}

export interface NodeSyncOptions {
  kv: KV;
  registry: MemoryRegistry;
  events: EventBus;
  /** Whether this primary holds a session of the node now. */
  holds(nodeId: string): boolean;
  /** This primary's name. */
  self: string;
  clock: Clock;
  log: Logger;
}

const NODE_EVENTS = new Set<ClusterEvent["kind"]>([
  "node.joined",
  "node.state",
  "node.details",
  "node.removed",
]);

export class NodeSync {
  /** The last revision seen of each node's key, and who held it then. */
  private readonly known = new Map<string, { revision: number; holder: string | null }>();
  /** Set while a record from another primary is applied: the events it causes are not published. */
  private applying = false;
  private stopWatch: (() => void) | undefined;
  private offEvents: (() => void) | undefined;
  /** Writes in flight per node, in order. */
  private readonly writing = new Map<string, Promise<void>>();

  constructor(private readonly opts: NodeSyncOptions) {}

  async start(): Promise<void> {
    const { kv, events } = this.opts;
    this.stopWatch = await watchAll(kv, "n.>", (e) => this.take(e));
    this.offEvents = events.on((e) => {
      if (this.applying || !NODE_EVENTS.has(e.kind) || !("nodeId" in e)) return;
      this.publish(e.nodeId, e.kind === "node.removed");
    });
    // What this primary knows that the bucket does not (it ran embedded before, say).
    for (const node of this.opts.registry.list())
      if (!this.known.has(node.id) && !node.legacy) this.publish(node.id, false);
  }

  stop(): void {
    this.stopWatch?.();
    this.offEvents?.();
  }

  /** Who holds the node's session, as last published (undefined: never published). */
  holder(nodeId: string): string | null | undefined {
    return this.known.get(nodeId)?.holder;
  }

  /**
   * The leader's sweep: nodes whose holder is not among `live` primaries
   * become suspect, and down once suspect for `deadAfterMs`.
   */
  sweepOrphans(live: ReadonlySet<string>, deadAfterMs: number): void {
    const now = this.opts.clock.now();
    const { registry } = this.opts;
    for (const [nodeId, { holder }] of this.known) {
      if (holder === null || live.has(holder) || this.opts.holds(nodeId)) continue;
      const node = registry.get(nodeId);
      if (node === undefined) continue;
      // Published as ours to judge: the node stays the vanished primary's until another takes it.
      if (node.state === "alive")
        registry.setState(nodeId, "suspect", `its primary ${holder} vanished`, now);
      else if (node.state === "suspect" && now - node.stateSince >= deadAfterMs)
        registry.setState(
          nodeId,
          "down",
          `its primary ${holder} vanished and it did not come back through another within ${Math.round(deadAfterMs / 1000)} s`,
          now,
        );
    }
  }

  private take(e: KvWatchEntry): void {
    const nodeId = e.key.slice(2);
    const mine = this.known.get(nodeId);
    if (mine !== undefined && mine.revision >= e.revision) return;
    if (e.operation !== "PUT") {
      this.known.delete(nodeId);
      if (this.opts.holds(nodeId)) return;
      this.apply(() => {
        const node = this.opts.registry.remove(nodeId);
        if (node !== undefined)
          this.opts.events.emit({
            kind: "node.removed",
            at: this.opts.clock.now(),
            nodeId,
            name: node.name,
            // Removed on another primary; this one keeps what it stored of it.
            keepHistory: true,
            requestedBy: "another primary",
          });
      });
      return;
    }
    let value: SharedValue;
    try {
      value = e.json<SharedValue>();
    } catch (err) {
      this.opts.log.warn("unreadable node record from the cluster", {
        key: e.key,
        err: describeError(err),
      });
      return;
    }
    this.known.set(nodeId, { revision: e.revision, holder: value.holder });
    // Our own live session says more about the node than anyone's record: one that says
    // otherwise (the leader took us for gone a moment) is answered with ours. So does our
    // own judgment of a node we held and lost (a crash seen here is down here), as long as
    // the record still names us: a record from elsewhere must not set it back to alive.
    if (this.opts.holds(nodeId) || value.holder === this.opts.self) {
      const mine = this.opts.registry.get(nodeId);
      if (value.holder !== this.opts.self || value.node.state !== mine?.state)
        this.publish(nodeId, false);
      return;
    }
    this.apply(() => this.opts.registry.applyShared(value.node, this.opts.clock.now()));
  }

  private apply(fn: () => void): void {
    this.applying = true;
    try {
      fn();
    } catch (err) {
      this.opts.log.error("cannot apply a node record from the cluster", {
        err: describeError(err),
      });
    } finally {
      this.applying = false;
    }
  }

  /** This primary holds the node's session now (it moved here, say): say so. */
  bound(nodeId: string): void {
    this.publish(nodeId, false);
  }

  /** Write the node as this primary sees it; one write per node at a time, in order. */
  private publish(nodeId: string, removed: boolean): void {
    const before = this.writing.get(nodeId) ?? Promise.resolve();
    const next = before.then(() => this.write(nodeId, removed));
    this.writing.set(nodeId, next);
    void next.finally(() => {
      if (this.writing.get(nodeId) === next) this.writing.delete(nodeId);
    });
  }

  private async write(nodeId: string, removed: boolean): Promise<void> {
    const { kv, registry, self } = this.opts;
    const key = `n.${nodeId}`;
    for (let attempt = 0; attempt < 5; attempt++) {
      const known = this.known.get(nodeId);
      try {
        if (removed) {
          await kv.delete(key);
          this.known.delete(nodeId);
          return;
        }
        const node = registry.get(nodeId);
        if (node === undefined) return;
        const holds = this.opts.holds(nodeId);
        // A node not held here keeps the holder it had while it may still come back.
        const holder = holds
          ? self
          : node.state === "alive" || node.state === "suspect"
            ? (known?.holder ?? null)
            : null;
        const value = JSON.stringify({ holder, node: sharedPart(node) } satisfies SharedValue);
        const revision =
          known === undefined
            ? await kv.create(key, value)
            : await kv.update(key, value, known.revision);
        this.known.set(nodeId, { revision, holder });
        return;
      } catch (err) {
        // Someone wrote first: take in what they wrote; then write again only if it is ours.
        try {
          const entry = await kv.get(key);
          if (entry !== null && entry.operation === "PUT") this.take(entry as KvWatchEntry);
        } catch (readErr) {
          this.opts.log.debug("cannot read a node record", { nodeId, err: describeError(readErr) });
        }
        // Written again on the newer revision while the node is ours to judge: held here,
        // or last held here and not taken by another primary since (its down after a crash).
        if (!this.opts.holds(nodeId) && this.known.get(nodeId)?.holder !== self && !removed) {
          this.opts.log.debug("node record written by another primary first", {
            nodeId,
            err: describeError(err),
          });
          return;
        }
      }
    }
    this.opts.log.warn("could not publish a node record", { nodeId });
  }
}
