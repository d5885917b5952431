/**
 * The tutorial's own nodes, unchanged: a plaintext listener speaking its
 * DataPackager format (`{"type","payload"}` objects each followed by `\r`).
 * Opt-in ([legacy] port), unauthenticated, and its nodes are labelled
 * `legacy=true` and never sent tasks. A node is keyed by its hostname, so it
 * stays the same node across reconnects. Being unauthenticated, it is
 * bounded: how many tutorial nodes there may be, how fast one address may
 * add them, and never under the name of a node with credentials (see
 * admission.ts); every figure they send is range-checked (payloads.ts).
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import {
  type Clock,
  DecodeError,
  describeError,
  FrameTooLargeError,
  LegacyDecoder,
  LegacyEncoder,
  type LegacyMessage,
  type Logger,
} from "@picluster/common";
import { listen } from "../listen.js";
import type { LivenessDetector } from "../liveness.js";
import type { Registry } from "../registry.js";
import { type Store, StoreError } from "../store/store.js";
import { type Admission, clientAddress, LegacyAdmission, type RefusalReason } from "./admission.js";
import { type LegacyBaseinfo, parseDetails, parseVitals, toDetails, toVitals } from "./payloads.js";
import { primaryBaseinfo } from "./primary-info.js";
import { RefusalLog } from "./refusals.js";

/** The tutorial's secondary sends a keep-alive every 5 s. */
export const LEGACY_KEEPALIVE_MS = 5_000;
const MAX_WRITE_BACKLOG_BYTES = 1024 * 1024;

export interface LegacyOptions {
  host: string;
  port: number;
  maxFrameBytes: number;
  /** Frames that are not JSON objects a connection survives. */
  strikeLimit: number;
  /** Close a connection that has not said who it is (node_baseinfo) within this time. */
  identifyTimeoutMs: number;
  /** heartbeat_interval of the primary: legacy thresholds are scaled by 5 s over it. */
  heartbeatMs: number;
  /** Tutorial nodes kept in all ([legacy] max_nodes). */
  maxNodes: number;
  /** New tutorial nodes one address may add a minute ([legacy] new_nodes_per_minute). */
  newNodesPerMinute: number;
  /** Whether a node with credentials (or a pending join token) is called `name`. */
  nameTaken(name: string): boolean;
  registry: Registry;
  /** Where tutorial nodes' samples are kept too; absent in tests that need no history. */
  store: Store | undefined;
  liveness: LivenessDetector;
  clock: Clock;
  log: Logger;
}

class LegacySession {
  /** Handed out on `info uuid`, one per connection, as the tutorial's primary does. */
  readonly uuid = randomBytes(16).toString("hex");
  readonly peer: string;
  /** The client's address without its port: what the new-node rate is counted by. */
  readonly address: string;
  nodeId: string | undefined;
  /** Why we closed it on purpose (its name now belongs to a node with credentials). */
  closedBecause: string | undefined;
  baseinfo: LegacyBaseinfo | undefined;
  unknownTypes = 0;
  private lastSeq = 0;
  private strikes = 0;
  private readonly decoder: LegacyDecoder;
  private readonly encoder = new LegacyEncoder();
  private log: Logger;

  constructor(
    private readonly socket: Socket,
    private readonly owner: LegacyListener,
    private readonly opts: LegacyOptions,
  ) {
    this.peer = `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0}`;
    this.address = clientAddress(socket.remoteAddress);
    this.log = opts.log.child({ peer: this.peer, legacy: true });
    this.decoder = new LegacyDecoder(opts.maxFrameBytes);
  }

  start(): void {
    const cancel = this.opts.clock.after(this.opts.identifyTimeoutMs, () => {
      if (this.nodeId === undefined) {
        this.log.warn("tutorial node never sent its details, closing", {
          afterMs: this.opts.identifyTimeoutMs,
        });
        this.socket.destroy();
      }
    });
    this.socket.on("data", (chunk: Buffer) => this.onData(chunk));
    this.socket.on("error", (err: NodeJS.ErrnoException) =>
      this.log.debug("legacy socket error", { code: err.code }),
    );
    this.socket.on("close", () => {
      cancel();
      this.owner.closed(this);
    });
  }

  send(type: string, payload: unknown): void {
    if (this.socket.writableEnded) return;
    this.socket.write(this.encoder.encode({ type, payload }));
    // A peer that asks and never reads must not grow our memory.
    if (this.socket.writableLength > MAX_WRITE_BACKLOG_BYTES) {
      this.log.warn("tutorial node is not reading its answers, closing", {
        backlog: this.socket.writableLength,
      });
      this.socket.destroy();
    }
  }

  private onData(chunk: Buffer): void {
    for (const item of this.decoder.feed(chunk)) {
      // Closed by an earlier message of this chunk (refused, past its strikes): read no further.
      if (this.socket.destroyed) return;
      if (item instanceof FrameTooLargeError) {
        this.log.warn("frame too large from a tutorial node, closing", { limit: item.limit });
        this.socket.destroy();
        return;
      }
      if (item instanceof DecodeError) {
        this.strikes += 1;
        this.log.warn("bad frame from a tutorial node", {
          code: item.code,
          error: item.message,
          strikes: this.strikes,
        });
        if (this.strikes > this.opts.strikeLimit) {
          this.socket.destroy();
          return;
        }
        continue;
      }
      this.onMessage(item);
    }
  }

  private onMessage(msg: LegacyMessage): void {
    const now = this.opts.clock.now();
    if (this.nodeId !== undefined) this.opts.registry.seen(this.nodeId, now);
    switch (msg.type) {
      case "message":
        // The tutorial's keep-alive ("I am still alive, client: …"): being seen is all it means.
        return;
      case "info":
        this.answerInfo(msg.payload);
        return;
      case "machine_details":
      case "node_baseinfo": {
        const parsed = parseDetails(msg.type, msg.payload);
        if (!parsed.ok) {
          this.invalid("invalid details from a tutorial node, ignored", msg.type, parsed.error);
          return;
        }
        if (!this.identify(parsed.value.hostname, now)) return;
        this.baseinfo = parsed.value;
        if (this.nodeId !== undefined)
          this.opts.registry.setDetails(this.nodeId, toDetails(parsed.value), now);
        return;
      }
      case "vitals": {
        if (this.nodeId === undefined) {
          this.log.warn("vitals from a tutorial node before its details, ignored");
          return;
        }
        const parsed = parseVitals(msg.payload);
        if (!parsed.ok) {
          this.invalid("invalid vitals from a tutorial node, ignored", msg.type, parsed.error);
          return;
        }
        const id = this.nodeId;
        const vitals = toVitals(parsed.value, this.baseinfo);
        this.opts.registry.setVitals(id, vitals, undefined, now);
        const node = this.opts.registry.get(id);
        if (this.opts.store === undefined || node === undefined) return;
        // The tutorial numbers nothing: we do, continuing after what is stored.
        this.lastSeq = Math.max(this.lastSeq, node.lastSeq) + 1;
        const seq = this.lastSeq;
        this.opts.store.addVitals(node, now, seq, vitals).then(
          () => this.opts.registry.markStored(id, seq),
          // A store that cannot write (a full disk) says so once, itself; a line per sample would
          // only flood the console. Tutorial nodes keep nothing to send again: the sample is lost.
          (err: unknown) =>
            (err instanceof StoreError ? this.log.debug : this.log.error).call(
              this.log,
              "cannot store a tutorial node's sample",
              { err: describeError(err) },
            ),
        );
        return;
      }
      default:
        this.unknownTypes += 1;
        this.owner.unknownTypes += 1;
        this.log.info("unknown message type from a tutorial node, ignored", {
          type: msg.type.slice(0, 64),
          count: this.unknownTypes,
        });
    }
  }

  /**
   * A message whose payload failed its check (a field out of range, say):
   * nothing of it is kept, the field is named, and it is a strike.
   */
  private invalid(what: string, type: string, error: string): void {
    this.strikes += 1;
    this.log.warn(what, { type, error, strikes: this.strikes });
    if (this.strikes > this.opts.strikeLimit) this.socket.destroy();
  }

  private answerInfo(what: unknown): void {
    switch (what) {
      case "uuid":
        this.send("uuid", this.uuid);
        return;
      case "node_baseinfo":
        this.send("primary_info", this.owner.baseinfo());
        return;
      case "secondary_details":
        this.send("secondary_details", this.owner.secondaryDetails());
        return;
      default:
        this.send("bad_message", "unknown");
    }
  }

  /** Become the node `hostname`, if it may be one; false when refused (the connection is closed). */
  private identify(hostname: string, now: number): boolean {
    if (this.nodeId !== undefined) return true;
    const verdict = this.owner.admit(hostname, this.address, now);
    if (!verdict.ok) {
      this.owner.refused(verdict, hostname, this.address);
      this.socket.destroy();
      return false;
    }
    const id = verdict.id;
    this.owner.claim(id, this);
    this.nodeId = id;
    this.log = this.log.child({ node: hostname, nodeId: id });
    this.opts.registry.connected(
      {
        id,
        name: hostname,
        labels: { legacy: "true" },
        address: this.peer,
        agentVersion: "tutorial",
        legacy: true,
      },
      now,
    );
    // Its keep-alive comes every 5 s, not every heartbeat_interval.
    this.opts.liveness.watch(id, LEGACY_KEEPALIVE_MS / this.opts.heartbeatMs);
    this.log.info("tutorial node connected", { new: verdict.isNew });
    return true;
  }

  close(because?: string): void {
    this.closedBecause ??= because;
    this.socket.destroy();
  }
}

export class LegacyListener {
  private server: Server | undefined;
  private readonly sessions = new Set<LegacySession>();
  /** The live session of each legacy node id. */
  private readonly byNode = new Map<string, LegacySession>();
  /** Messages of types the tutorial format does not define, over all connections. */
  unknownTypes = 0;
  private closing = false;
  private primaryInfo: Record<string, string | number | null> | undefined;
  private readonly admission: LegacyAdmission;
  private readonly refusals: RefusalLog;

  constructor(private readonly opts: LegacyOptions) {
    this.admission = new LegacyAdmission({
      registry: opts.registry,
      maxNodes: opts.maxNodes,
      newNodesPerMinute: opts.newNodesPerMinute,
      nameTaken: opts.nameTaken,
    });
    this.refusals = new RefusalLog(opts.clock, opts.log);
  }

  async start(): Promise<number> {
    this.opts.log.warn(
      "legacy listener for tutorial nodes is ON: it is plaintext and unauthenticated; bind it only on a trusted network",
      {
        host: this.opts.host || "(all interfaces)",
        port: this.opts.port,
      },
    );
    const server = createServer((socket) => {
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 15_000);
      const session = new LegacySession(socket, this, this.opts);
      this.sessions.add(session);
      session.start();
    });
    this.server = server;
    return (await listen(server, this.opts.host, this.opts.port)).port;
  }

  /** Tutorial nodes connected now. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Tutorial nodes refused since start, by reason. */
  get refusedTotals(): Readonly<Record<RefusalReason, number>> {
    return this.refusals.totals;
  }

  admit(hostname: string, address: string, now: number): Admission {
    return this.admission.admit(hostname, address, now);
  }

  refused(verdict: Admission & { ok: false }, host: string, address: string): void {
    this.refusals.refused({ reason: verdict.reason, host, address, limit: verdict.limit });
  }

  /**
   * A node with credentials may have been given the name of a connected
   * tutorial node since it connected (`node add`): the name is the real
   * node's, so the tutorial one is cut off, `left`, and refused from now on.
   */
  recheckNames(): void {
    for (const [id, session] of this.byNode) {
      const node = this.opts.registry.get(id);
      if (node === undefined || !this.opts.nameTaken(node.name)) continue;
      this.refusals.refused({
        reason: "name_taken",
        host: node.name,
        address: session.address,
        limit: undefined,
      });
      session.close("its name now belongs to a node with credentials");
    }
  }

  /** A session now speaks for `id`; an older connection of the same node is closed. */
  claim(id: string, session: LegacySession): void {
    const previous = this.byNode.get(id);
    this.byNode.set(id, session);
    if (previous !== undefined && previous !== session) previous.close();
  }

  closed(session: LegacySession): void {
    this.sessions.delete(session);
    const id = session.nodeId;
    if (id === undefined || this.byNode.get(id) !== session) return;
    this.byNode.delete(id);
    this.opts.liveness.unwatch(id);
    if (this.closing) return;
    const now = this.opts.clock.now();
    // Cut off on purpose: gone, not down (nobody is to be told it failed).
    if (session.closedBecause !== undefined)
      this.opts.registry.setState(id, "left", session.closedBecause, now);
    // The tutorial has no goodbye: a closed connection is a node gone down.
    else this.opts.registry.setState(id, "down", "connection lost", now);
  }

  /** What `info node_baseinfo` answers: read once, it does not change while we run. */
  baseinfo(): Record<string, string | number | null> {
    this.primaryInfo ??= primaryBaseinfo();
    return this.primaryInfo;
  }

  /** What `info secondary_details` answers: every connected tutorial node by uuid. */
  secondaryDetails(): Record<string, { uuid: string; address: string }> {
    const out: Record<string, { uuid: string; address: string }> = {};
    for (const s of this.sessions) out[s.uuid] = { uuid: s.uuid, address: s.peer };
    return out;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    this.closing = true;
    this.refusals.close();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sessions) s.close();
    await closed;
  }
}
