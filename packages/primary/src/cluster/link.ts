/**
 * One primary among several (the scale-out mode, `[cluster] nats`): its
 * link to the NATS cluster and, through JetStream key-value buckets, what
 * the primaries share:
 *
 * - presence: each primary puts its own key every lease/3 in a bucket whose
 *   entries live one lease; a primary not heard from for a lease is gone;
 * - the leader lease: one key, taken with `create` (only when absent) and
 *   kept with `update` on its revision (compare-and-set); the bucket's TTL
 *   frees it a lease after its holder stops renewing, and the holder steps
 *   down by itself once it could not renew for a lease;
 * - credentials and join tokens (KvMirror): any primary admits any
 *   node, and a revocation anywhere cuts the node wherever it is connected.
 *
 * nats-server 2.9 (Debian 12) has no per-key TTL: the buckets' max age is
 * the lease, so a renewal is a put of the whole value.
 */

import type { KV, KvWatchEntry } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  type Clock,
  type Config,
  describeError,
  type Logger,
  type MessageMap,
  type PrimaryPresence,
} from "@picluster/common";
import type { CredentialStore } from "../credentials.js";
import type { EventBus } from "../events.js";
import type { MemoryRegistry } from "../registry.js";
import type { NodeRequester, SessionRegistry } from "../sessions.js";
import { StoreError } from "../store/failure.js";
import type { Store } from "../store/store.js";
import type { AlertGate } from "./alert-gate.js";
import type { JobLog, JobLogPosition } from "./job-log.js";
import { credentialRecords, KvMirror, type MirroredStore } from "./kv-mirror.js";
import { BUCKETS, bucket, ClusterError, connectNats, replicasFor } from "./nats.js";
import { NodeRequests } from "./node-requests.js";
import { NodeSync } from "./node-sync.js";
import { VitalsStream } from "./vitals-stream.js";

export interface ClusterLinkOptions {
  config: Config["cluster"];
  /** This primary's name in the cluster (unique). */
  name: string;
  /** What this primary tells the others about itself, asked at every renewal. */
  presence: () => Omit<PrimaryPresence, "name" | "at" | "leader">;
  credentials: CredentialStore | undefined;
  registry: MemoryRegistry;
  events: EventBus;
  /** Whether this primary holds a session of the node now. */
  holds(nodeId: string): boolean;
  /** This primary's sessions (requests from the other primaries are relayed through them). */
  sessions: SessionRegistry;
  store: Store;
  /** `[store] raw_retention`: how long the vitals stream keeps a sample for a primary that was away. */
  rawRetentionMs: number;
  /** `[primary] dead_after`: how long the nodes of a vanished primary stay suspect before down. */
  deadAfterMs: number;
  /** A credential changed because another primary changed it (cut what it revoked now). */
  onCredentialsChanged: () => void;
  /** Only the leader tells: it gets the shared alert state and each change of leadership. */
  alertGate?: AlertGate;
  /** Named API tokens, shared through their own bucket. */
  apiTokens?: MirroredStore;
  /**
   * Shared jobs: replayed when joining; the leader takes over those of
   * primaries that are gone and compacts the log.
   */
  jobs?: JobLog;
  clock: Clock;
  log: Logger;
}

export interface NatsHealth {
  connected: boolean;
  /** The server this primary is connected to now. */
  server: string | null;
  /** Round trip to it, measured at the last renewal. */
  rttMs: number | null;
  reconnects: number;
}

export interface ClusterStatus {
  self: string;
  leader: string | null;
  primaries: PrimaryPresence[];
  nats: NatsHealth;
  /** This primary's replica of the job log, once it has joined. */
  jobLog?: JobLogPosition;
}

const LEADER_KEY = "leader";
/** How long a stopping primary tries to hand over its lease and leave before it just goes. */
const LEAVE_MS = 1_000;

export class ClusterLink {
  private nc: NatsConnection | undefined;
  private presenceKv: KV | undefined;
  private leaderKv: KV | undefined;
  private sync: KvMirror | undefined;
  private tokenSync: KvMirror | undefined;
  private nodes: NodeSync | undefined;
  private vitals: VitalsStream | undefined;
  private requests: NodeRequests | undefined;
  /** Primaries heard from (their last presence and when, by this clock). */
  private readonly seen = new Map<string, { presence: PrimaryPresence; heardAt: number }>();
  private leaderName: string | null = null;
  /** The lease's revision while this primary holds it. */
  private leaseRevision: number | undefined;
  private renewedAt = 0;
  private rttMs: number | null = null;
  private reconnects = 0;
  private connected = false;
  private stopTimer: (() => void) | undefined;
  private readonly stopWatches: Array<() => void> = [];
  private ticking = false;
  private closed = false;

  constructor(private readonly opts: ClusterLinkOptions) {}

  /** This primary's name among the others. */
  get name(): string {
    return this.opts.name;
  }

  get isLeader(): boolean {
    return this.leaseRevision !== undefined;
  }

  /**
   * Join in the background: connect (trying every server until one answers),
   * open the buckets (JetStream may still be electing its leaders), take in
   * the shared credentials, then renew presence and the lease. The primary
   * serves its own agents meanwhile; `ready` resolves once joined.
   */
  start(): void {
    this.ready = this.join().catch((err: unknown) => {
      if (!this.closed)
        this.opts.log.error("cannot join the primaries' cluster", { err: describeError(err) });
    });
  }

  /** Resolves once this primary has joined (or was closed first). */
  ready: Promise<void> = Promise.resolve();

  private async join(): Promise<void> {
    const { config, log } = this.opts;
    let said = false;
    const retry = async (what: string, err: unknown) => {
      if (!said)
        log.warn(`${what}; trying again every second`, {
          servers: config.nats.join(", "),
          err: describeError(err),
        });
      said = true;
      await this.pause(1_000);
    };
    let nc: NatsConnection | undefined;
    while (nc === undefined) {
      if (this.closed) return;
      try {
        nc = await connectNats(config, this.opts.name);
      } catch (err) {
        if (err instanceof ClusterError) throw err;
        const refused = /authori[sz]ation|authentication/i.test(describeError(err));
        await retry(
          refused
            ? "NATS refused this primary's credentials ([cluster] creds, or user and password_file)"
            : "cannot reach a NATS server",
          err,
        );
      }
    }
    // Closed meanwhile: close() drains it once this returns.
    this.nc = nc;
    if (this.closed) return;
    this.connected = true;
    void this.followStatus(nc);
    const replicas = replicasFor(config);
    // Entries of the two lease buckets live one lease; a renewal is due every third of it.
    const ttl = config.lease;
    for (;;) {
      if (this.closed) return;
      try {
        this.presenceKv = await bucket(nc, BUCKETS.presence, { history: 1, ttl, replicas });
        this.leaderKv = await bucket(nc, BUCKETS.leader, { history: 1, ttl, replicas });
        if (this.opts.credentials !== undefined) {
          const kv = await bucket(nc, BUCKETS.credentials, { history: 1, replicas });
          this.sync = new KvMirror({
            kv,
            store: credentialRecords(this.opts.credentials),
            what: "credentials",
            log: log.child({ component: "cluster-credentials" }),
            onRemoteChange: this.opts.onCredentialsChanged,
          });
          await this.sync.start();
        }
        if (this.opts.apiTokens !== undefined) {
          this.tokenSync = new KvMirror({
            kv: await bucket(nc, BUCKETS.tokens, { history: 1, replicas }),
            store: this.opts.apiTokens,
            what: "API tokens",
            log: log.child({ component: "cluster-tokens" }),
            // A token revoked elsewhere is refused here from the next request: lookups read the table.
            onRemoteChange: () => {},
          });
          await this.tokenSync.start();
        }
        this.requests = new NodeRequests({
          nc,
          self: this.opts.name,
          local: this.opts.sessions,
          clock: this.opts.clock,
          log: log.child({ component: "cluster-requests" }),
        });
        this.requests.start();
        // Nodes that connected before the join.
        for (const id of this.opts.sessions.ids()) this.requests.serve(id);
        const nodesKv = await bucket(nc, BUCKETS.nodes, { history: 1, replicas });
        this.nodes = new NodeSync({
          kv: nodesKv,
          registry: this.opts.registry,
          events: this.opts.events,
          holds: this.opts.holds,
          self: this.opts.name,
          clock: this.opts.clock,
          log: log.child({ component: "cluster-nodes" }),
        });
        await this.nodes.start();
        const vitals = new VitalsStream({
          nc,
          self: this.opts.name,
          replicas,
          maxAgeMs: this.opts.rawRetentionMs,
          store: this.opts.store,
          registry: this.opts.registry,
          clock: this.opts.clock,
          log: log.child({ component: "cluster-vitals" }),
        });
        try {
          await vitals.start();
        } catch (err) {
          vitals.stop();
          throw err;
        }
        this.vitals = vitals;
        if (this.opts.alertGate !== undefined)
          await this.opts.alertGate.attach(
            await bucket(nc, BUCKETS.alerts, { history: 1, replicas, ttl: 7 * 86_400_000 }),
          );
        if (this.opts.jobs !== undefined && !this.opts.jobs.attached)
          await this.opts.jobs.attach(nc, this.opts.name, replicas);
        break;
      } catch (err) {
        // What this attempt started goes before the next: two of a part (two node
        // syncs with their own revisions, two consumers) would fight each other.
        this.dropParts();
        await retry("JetStream does not answer", err);
      }
    }
    await this.watchPresence(this.presenceKv as KV);
    await this.tick();
    this.stopTimer = this.opts.clock.every(Math.max(100, Math.floor(ttl / 3)), () => {
      void this.tick();
    });
    log.info("joined the primaries' cluster", {
      name: this.opts.name,
      server: nc.getServer(),
      replicas,
      leaseMs: ttl,
      leader: this.leaderName,
    });
  }

  /** Stop the parts a failed join attempt started. */
  private dropParts(): void {
    this.sync?.stop();
    this.sync = undefined;
    this.tokenSync?.stop();
    this.tokenSync = undefined;
    this.requests?.stop();
    this.requests = undefined;
    this.nodes?.stop();
    this.nodes = undefined;
    this.vitals?.stop();
    this.vitals = undefined;
    this.opts.alertGate?.stop();
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const cancel = this.opts.clock.after(ms, () => {
        this.wake = undefined;
        resolve();
      });
      this.wake = () => {
        cancel();
        resolve();
      };
    });
  }

  /** Ends a pause early (close). */
  private wake: (() => void) | undefined;

  /** Hand a sample from this primary's agent to the others; resolves once the stream has it. */
  shareVitals(
    nodeId: string,
    ts: number,
    seq: number,
    vitals: MessageMap["vitals"],
  ): Promise<void> {
    if (this.vitals === undefined) return Promise.reject(notJoined());
    return this.vitals.publish(nodeId, ts, seq, vitals);
  }

  /** Hello bound a node's session to this primary. */
  nodeBound(nodeId: string): void {
    this.nodes?.bound(nodeId);
    this.requests?.serve(nodeId);
  }

  /** A node's session here ended. */
  nodeUnbound(nodeId: string): void {
    this.requests?.unserve(nodeId);
  }

  /** Whether another live primary holds the node's session (asked through it). */
  heldElsewhere(nodeId: string): boolean {
    const holder = this.nodes?.holder(nodeId);
    if (holder === undefined || holder === null || holder === this.opts.name) return false;
    return (
      this.livePrimaries(this.opts.config.lease).has(holder) &&
      this.opts.registry.get(nodeId)?.state === "alive"
    );
  }

  /** How to ask a node held by another primary; undefined when none does. */
  requesterFor(nodeId: string): NodeRequester | undefined {
    const holder = this.nodes?.holder(nodeId);
    if (this.requests === undefined || !this.heldElsewhere(nodeId) || typeof holder !== "string")
      return undefined;
    return this.requests.requester(nodeId, holder);
  }

  /**
   * The primaries heard from lately, this one included. For judging others
   * gone (their nodes suspect), twice the lease: a NATS server's loss costs
   * a primary a reconnection and JetStream an election, and a primary is
   * not gone for that.
   */
  livePrimaries(withinMs = 2 * this.opts.config.lease): Set<string> {
    const now = this.opts.clock.now();
    const live = new Set<string>([this.opts.name]);
    for (const [name, { heardAt }] of this.seen) if (now - heardAt <= withinMs) live.add(name);
    return live;
  }

  /**
   * Whether this primary's own presence came back through the watch within
   * the lease: if not, its view of the others is stale (its connection or
   * JetStream is in trouble), and their silence proves nothing.
   */
  private hearsItself(): boolean {
    const own = this.seen.get(this.opts.name);
    return own !== undefined && this.opts.clock.now() - own.heardAt <= this.opts.config.lease;
  }

  status(): ClusterStatus {
    const now = this.opts.clock.now();
    const primaries: PrimaryPresence[] = [];
    for (const { presence, heardAt } of this.seen.values()) {
      if (now - heardAt > this.opts.config.lease) continue;
      primaries.push({ ...presence, leader: presence.name === this.leaderName });
    }
    primaries.sort((a, b) => a.name.localeCompare(b.name));
    return {
      self: this.opts.name,
      leader: this.leaderName,
      primaries,
      nats: {
        connected: this.connected,
        server: this.connected ? (this.nc?.getServer() ?? null) : null,
        rttMs: this.rttMs,
        reconnects: this.reconnects,
      },
      ...(this.opts.jobs?.attached === true ? { jobLog: this.opts.jobs.position() } : {}),
    };
  }

  /** Step down (delete the lease if held), leave, and close the connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wake?.();
    // A join under way stops at its next step (a connect attempt ends within its timeout).
    await this.ready;
    this.stopTimer?.();
    for (const stop of this.stopWatches) stop();
    this.sync?.stop();
    this.tokenSync?.stop();
    this.nodes?.stop();
    this.vitals?.stop();
    this.requests?.stop();
    this.opts.alertGate?.stop();
    const nc = this.nc;
    if (nc === undefined) return;
    // Hand the lease over now rather than a lease later, and leave the list; with NATS
    // out of reach, not for long: the buckets' TTL does the same.
    if (this.connected) {
      const leave = async () => {
        if (this.leaseRevision !== undefined)
          await this.leaderKv?.delete(LEADER_KEY, { previousSeq: this.leaseRevision });
        await this.presenceKv?.delete(this.presenceKey(this.opts.name));
        await nc.drain();
      };
      const gaveUp = await new Promise<boolean>((resolve) => {
        const cancel = this.opts.clock.after(LEAVE_MS, () => resolve(true));
        leave().then(
          () => {
            cancel();
            resolve(false);
          },
          (err: unknown) => {
            cancel();
            this.opts.log.debug("could not leave cleanly", { err: describeError(err) });
            resolve(true);
          },
        );
      });
      if (gaveUp) this.opts.log.debug("left without handing over", { withinMs: LEAVE_MS });
    }
    this.setLeader(false);
    if (!nc.isClosed()) await nc.close();
  }

  private presenceKey(name: string): string {
    return `p.${name}`;
  }

  private async followStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") {
        this.connected = false;
        this.opts.log.warn("lost the NATS server, reconnecting", { server: s.server });
      } else if (s.type === "reconnect") {
        this.connected = true;
        this.reconnects += 1;
        this.opts.log.info("reconnected to NATS", { server: s.server });
      }
    }
  }

  private async watchPresence(kv: KV): Promise<void> {
    const iter = await kv.watch({ key: "p.>" });
    this.stopWatches.push(() => iter.stop());
    void (async () => {
      for await (const e of iter) this.heard(e);
    })();
  }

  private heard(e: KvWatchEntry): void {
    const name = e.key.slice(2);
    if (e.operation !== "PUT") {
      this.seen.delete(name);
      return;
    }
    try {
      const presence = e.json<PrimaryPresence>();
      this.seen.set(name, { presence, heardAt: this.opts.clock.now() });
    } catch (err) {
      this.opts.log.warn("unreadable presence of a primary", {
        key: e.key,
        err: describeError(err),
      });
    }
  }

  /** Renew presence and the lease (or try to take it). */
  private async tick(): Promise<void> {
    if (this.ticking || this.closed) return;
    this.ticking = true;
    try {
      await this.renewPresence();
      await this.renewLease();
      if (this.isLeader && this.hearsItself()) {
        const live = this.livePrimaries();
        this.nodes?.sweepOrphans(live, this.opts.deadAfterMs);
        this.opts.jobs?.adoptOrphans(live);
        void this.opts.jobs?.compact();
      }
    } finally {
      this.ticking = false;
    }
  }

  private async renewPresence(): Promise<void> {
    const kv = this.presenceKv;
    const nc = this.nc;
    if (kv === undefined || nc === undefined) return;
    const presence: PrimaryPresence = {
      ...this.opts.presence(),
      name: this.opts.name,
      at: this.opts.clock.now(),
      leader: this.isLeader,
    };
    try {
      this.rttMs = await nc.rtt();
      await kv.put(this.presenceKey(this.opts.name), JSON.stringify(presence));
    } catch (err) {
      this.opts.log.debug("presence not renewed", { err: describeError(err) });
    }
  }

  private async renewLease(): Promise<void> {
    const kv = this.leaderKv;
    if (kv === undefined) return;
    const now = this.opts.clock.now();
    const me = this.opts.name;
    if (this.leaseRevision !== undefined) {
      try {
        this.leaseRevision = await kv.update(LEADER_KEY, me, this.leaseRevision);
        this.renewedAt = now;
        return;
      } catch (err) {
        // Taken by another (it expired while we could not renew) or unreachable.
        if (now - this.renewedAt > this.opts.config.lease || !isUnreachable(err)) {
          this.opts.log.warn("leadership lost", { err: describeError(err) });
          this.leaseRevision = undefined;
          this.setLeader(false);
        }
        return;
      }
    }
    try {
      this.leaseRevision = await kv.create(LEADER_KEY, me);
      this.renewedAt = now;
      this.leaderName = me;
      this.setLeader(true);
      return;
    } catch {
      // Held by another: who?
    }
    try {
      const entry = await kv.get(LEADER_KEY);
      this.leaderName = entry !== null && entry.operation === "PUT" ? entry.string() : null;
    } catch (err) {
      this.opts.log.debug("cannot read the leader", { err: describeError(err) });
    }
  }

  private wasLeader = false;

  private setLeader(leader: boolean): void {
    if (leader === this.wasLeader) return;
    this.wasLeader = leader;
    if (leader) this.opts.log.info("leader of the primaries now", { name: this.opts.name });
    else if (this.leaderName === this.opts.name) this.leaderName = null;
    this.opts.alertGate?.setLeader(leader);
  }
}

/** Why a sample cannot be acknowledged before this primary has joined the others. */
export function notJoined(): StoreError {
  return new StoreError(
    "E_CLUSTER_UNAVAILABLE",
    "the other primaries cannot be told (NATS JetStream): not joined yet; the sample stays with its agent",
  );
}

function isUnreachable(err: unknown): boolean {
  const text = describeError(err).toLowerCase();
  return text.includes("timeout") || text.includes("disconnect") || text.includes("closed");
}
