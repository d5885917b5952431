/**
 * Forgetting a node on purpose (`picluster node remove`, `DELETE
 * /api/nodes/:name`): its credential is revoked, a live session cut, its
 * record deleted from the registry and the store, and its history too
 * unless kept; what fires for it resolves without a message; the removal
 * is an event and an audit line. A removed node is never `down` and never
 * paged: nothing of it is left to judge.
 */

import type { RemovedNode } from "@picluster/common";
import { type Clock, type Logger, NodeError } from "@picluster/common";
import type { AuditLog } from "./audit.js";
import type { CredentialStore } from "./credentials.js";
import type { EventBus } from "./events.js";
import type { NodeRecord, Registry } from "./registry.js";
import type { Store } from "./store/store.js";

export interface RemoveRequest {
  /** The node's id, or its name when only one node has it. */
  node: string;
  /** Keep its samples and events (a node that joins again with the same id continues them). */
  keepHistory: boolean;
  requestedBy: string;
}

// What a removal did: the API answers with it (common/api/nodes.ts).
export type { RemovedNode };

export interface RemovalContext {
  registry: Registry;
  store: Store;
  /** Absent with TLS off: then nothing keeps a removed agent from coming back. */
  credentials: CredentialStore | undefined;
  alerts: { forget(nodeId: string): number };
  events: EventBus;
  audit: AuditLog;
  clock: Clock;
  log: Logger;
  /** End every connection speaking for the node, telling it why; returns how many. */
  cutSessions(nodeId: string): number;
}

export class NodeRemoval {
  constructor(private readonly ctx: RemovalContext) {}

  remove(req: RemoveRequest): RemovedNode {
    const { registry, store, credentials, events, clock } = this.ctx;
    const node = this.find(req.node);
    // A node that no credential keeps out would be back on its next connection, as a new node.
    const keptOut = credentials !== undefined && !node.legacy;
    if (!keptOut && (node.state === "alive" || node.state === "suspect")) {
      throw new NodeError(
        "E_NODE_CONNECTED",
        `"${node.name}" is connected and has no credential to revoke (${node.legacy ? "a tutorial node" : "TLS is off"}), so it would be back at once: stop its agent first, then remove it`,
      );
    }
    // First what keeps it out: if this fails (a full disk), nothing else has changed.
    const revoked =
      credentials !== undefined && keptOut ? credentials.revokeNode(node.id, node.name) : [];
    // Then the store, which commits what is queued first: if it fails the node is revoked
    // (and cut by the credential poll), as after `node revoke`, and the removal can be retried.
    const deleted = store.removeNode(node.id, { keepHistory: req.keepHistory });
    // Gone from the registry before its session ends, so the end finds no node to mark down,
    // and whatever it still sends (a sample, a heartbeat) finds no node to write to.
    registry.remove(node.id);
    const sessionsCut = this.ctx.cutSessions(node.id);
    const alertsResolved = this.ctx.alerts.forget(node.id);
    const at = clock.now();
    events.emit({
      kind: "node.removed",
      at,
      nodeId: node.id,
      name: node.name,
      keepHistory: req.keepHistory,
      requestedBy: req.requestedBy,
    });
    const result: RemovedNode = {
      id: node.id,
      name: node.name,
      keepHistory: req.keepHistory,
      revoked,
      sessionsCut,
      alertsResolved,
      ...deleted,
    };
    this.ctx.audit.write({
      event: "node.remove",
      node: node.name,
      nodeId: node.id,
      keepHistory: req.keepHistory,
      by: req.requestedBy,
      revoked: revoked.length,
      sessionsCut,
      alertsResolved,
    });
    return result;
  }

  /** By id, or by name when exactly one node has it (a node joined again may share its old name). */
  private find(idOrName: string): NodeRecord {
    const { registry } = this.ctx;
    const byId = registry.get(idOrName);
    if (byId !== undefined) return byId;
    const named = registry.list().filter((n) => n.name === idOrName);
    if (named.length > 1) {
      throw new NodeError(
        "E_AMBIGUOUS_NODE",
        `${named.length} nodes are called "${idOrName}" (ids ${named.map((n) => n.id).join(", ")}): remove one by its id`,
      );
    }
    const [node] = named;
    if (node === undefined) throw new NodeError("E_NO_SUCH_NODE", `no node "${idOrName}"`);
    return node;
  }
}
