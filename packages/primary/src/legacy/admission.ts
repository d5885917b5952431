/**
 * Who may become a tutorial node. The legacy listener is unauthenticated,
 * so what a peer can make the primary keep is bounded: at most `maxNodes`
 * tutorial nodes in all, at most `newNodesPerMinute` new ones from one
 * client address a minute, and never one with the name of a node that has
 * credentials (or of any agent's node): that name is the real node's.
 * Nodes already known may always come back. No sockets, no timers.
 */
import type { Registry } from "../registry.js";

export type RefusalReason = "name_taken" | "too_many_nodes" | "too_many_new";

export type Admission =
  | { ok: true; id: string; isNew: boolean }
  | { ok: false; reason: RefusalReason; limit: number | undefined };

/** The window `newNodesPerMinute` counts over. */
export const NEW_NODES_WINDOW_MS = 60_000;

export interface AdmissionOptions {
  registry: Registry;
  maxNodes: number;
  newNodesPerMinute: number;
  /** Whether a node with credentials (or a pending join token) is called `name`. */
  nameTaken(name: string): boolean;
}

/** A tutorial node is keyed by its host name, so it stays the same node across reconnects. */
export function legacyNodeId(hostname: string): string {
  return `legacy-${hostname}`;
}

/** `::ffff:10.0.0.7` and `10.0.0.7` are one client. */
export function clientAddress(remote: string | undefined): string {
  const address = remote ?? "?";
  return address.startsWith("::ffff:") ? address.slice(7) : address;
}

export class LegacyAdmission {
  /** When each address created its recent new nodes, oldest first. */
  private readonly created = new Map<string, number[]>();

  constructor(private readonly opts: AdmissionOptions) {}

  admit(hostname: string, address: string, now: number): Admission {
    const id = legacyNodeId(hostname);
    const known = this.opts.registry.get(id);
    if (
      this.opts.nameTaken(hostname) ||
      (known !== undefined && !known.legacy) ||
      this.opts.registry.list().some((n) => !n.legacy && n.name === hostname)
    )
      return { ok: false, reason: "name_taken", limit: undefined };
    if (known !== undefined) return { ok: true, id, isNew: false };
    const legacyNodes = this.opts.registry.list().filter((n) => n.legacy).length;
    if (legacyNodes >= this.opts.maxNodes)
      return { ok: false, reason: "too_many_nodes", limit: this.opts.maxNodes };
    this.forget(now);
    const recent = this.created.get(address) ?? [];
    if (recent.length >= this.opts.newNodesPerMinute)
      return { ok: false, reason: "too_many_new", limit: this.opts.newNodesPerMinute };
    recent.push(now);
    this.created.set(address, recent);
    return { ok: true, id, isNew: true };
  }

  /** Drop creations older than the window (the map holds at most `maxNodes` times). */
  private forget(now: number): void {
    for (const [address, times] of this.created) {
      while (times.length > 0 && (times[0] ?? now) <= now - NEW_NODES_WINDOW_MS) times.shift();
      if (times.length === 0) this.created.delete(address);
    }
  }
}
