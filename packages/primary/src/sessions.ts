/**
 * The live connections of agents, owned in one place. A connection is
 * opened, bound to its node by hello (replacing an older connection of the
 * same node), and closed; revocation and removal cut connections through
 * here. The rest of the primary reads it (`get`, `has`) and never changes
 * a node's session by hand.
 */
import type { Clock, MessageMap, RequestType, ResponseMap } from "@picluster/common";
import type { RequestOptions, Session } from "./session.js";

/** What asks a node something: its session here, or (scale-out) the primary that holds it. */
export interface NodeRequester {
  request<T extends RequestType>(
    type: T,
    payload: MessageMap[T],
    timeoutMs?: number,
    opts?: RequestOptions,
  ): Promise<ResponseMap[T]>;
}

/** What readers need: a way to ask a node, if it is connected (here or, scale-out, elsewhere). */
export interface LiveSessions {
  get(nodeId: string): NodeRequester | undefined;
  has(nodeId: string): boolean;
}

export class SessionRegistry implements LiveSessions {
  /** The session each node is live on. */
  private readonly byNode = new Map<string, Session>();
  /** Every open connection, before and after its hello. */
  private readonly all = new Set<Session>();
  private nextId: number;
  /** Told after hello binds a node here (the scale-out mode publishes who holds it). */
  onBind: ((nodeId: string) => void) | undefined;
  /** Told when a node's live session here ends. */
  onUnbind: ((nodeId: string) => void) | undefined;

  constructor(clock: Clock) {
    // Request ids start from the clock, so that across restarts a node
    // still working on a request from a dropped connection can never
    // answer a newer one by mistake.
    this.nextId = clock.now();
  }

  /** A request id unique across every session of this process. */
  requestId(): number {
    return this.nextId++;
  }

  get(nodeId: string): Session | undefined {
    return this.byNode.get(nodeId);
  }

  has(nodeId: string): boolean {
    return this.byNode.has(nodeId);
  }

  /** The nodes with a live session here. */
  ids(): IterableIterator<string> {
    return this.byNode.keys();
  }

  /** Nodes with a live session. */
  get size(): number {
    return this.byNode.size;
  }

  /** Every open connection, identified or not. */
  connections(): Iterable<Session> {
    return this.all;
  }

  /** A connection accepted, not yet a node. */
  opened(session: Session): void {
    this.all.add(session);
  }

  /** Hello: `session` is now `nodeId`'s; an older connection of the same node is closed. */
  bind(nodeId: string, session: Session): void {
    const previous = this.byNode.get(nodeId);
    if (previous !== undefined && previous !== session) {
      previous.log.warn("replaced by a newer connection from the same node", {
        newPeer: session.peer,
      });
      previous.close("replaced by a newer connection");
    }
    this.byNode.set(nodeId, session);
    this.onBind?.(nodeId);
  }

  /**
   * A connection ended. True when it was its node's live session, so that
   * its end says something about the node (a replaced one says nothing).
   */
  closed(session: Session): boolean {
    this.all.delete(session);
    const id = session.nodeId;
    if (id === undefined || this.byNode.get(id) !== session) return false;
    this.byNode.delete(id);
    this.onUnbind?.(id);
    return true;
  }

  /** End every connection of a node being removed (it is told why); how many were cut. */
  cutNode(nodeId: string): number {
    if (this.byNode.delete(nodeId)) this.onUnbind?.(nodeId);
    let cut = 0;
    for (const session of this.all) {
      if (session.nodeId !== nodeId) continue;
      session.sendError("E_REMOVED", "this node was removed from the cluster");
      session.close("node removed");
      cut++;
    }
    return cut;
  }

  /** End every connection whose credential `isRevoked`; the node is `left`, not down. */
  cutRevoked(isRevoked: (identity: string) => boolean): number {
    let cut = 0;
    for (const session of this.all) {
      const identity = session.credentialIdentity;
      if (identity === undefined || !isRevoked(identity)) continue;
      session.log.warn("credential revoked, closing the session", { identity });
      // A revoked node did not die: it is `left`, and nobody is paged about it.
      session.leftReason = "credential revoked";
      session.sendError("E_REVOKED", "this node's credential was revoked");
      session.close("credential revoked");
      cut++;
    }
    return cut;
  }

  /** Close every connection (the primary is stopping). */
  closeAll(reason: string): void {
    for (const session of this.all) session.close(reason);
  }
}
