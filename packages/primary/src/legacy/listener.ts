/**
 * The tutorial's own nodes, unchanged: a plaintext listener speaking its
 * DataPackager format (`{"type","payload"}` objects each followed by `\r`).
 * Opt-in ([legacy] port), unauthenticated, and its nodes are labelled
 * `legacy=true` and never sent tasks. A node is keyed by its hostname, so it
 * stays the same node across reconnects.
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
import type { Store } from "../store/store.js";
import { type LegacyBaseinfo, parseDetails, parseVitals, toDetails, toVitals } from "./payloads.js";
import { primaryBaseinfo } from "./primary-info.js";

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
  nodeId: string | undefined;
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
          this.log.warn("invalid details from a tutorial node", {
            type: msg.type,
            error: parsed.error,
          });
          return;
        }
        this.baseinfo = parsed.value;
        this.identify(parsed.value.hostname, now);
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
          this.log.warn("invalid vitals from a tutorial node", { error: parsed.error });
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
          (err: unknown) =>
            this.log.error("cannot store a tutorial node's sample", { err: describeError(err) }),
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

  private identify(hostname: string, now: number): void {
    if (this.nodeId !== undefined) return;
    const id = `legacy-${hostname}`;
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
    this.log.info("tutorial node connected");
  }

  close(): void {
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

  constructor(private readonly opts: LegacyOptions) {}

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
    // The tutorial has no goodbye: a closed connection is a node gone down
    // (unless we are the ones shutting down).
    if (!this.closing)
      this.opts.registry.setState(id, "down", "connection lost", this.opts.clock.now());
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
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sessions) s.close();
    await closed;
  }
}
