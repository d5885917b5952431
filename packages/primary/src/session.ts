/**
 * One agent connection: framing, strikes, the handshake deadline, requests
 * with deadlines, and what its end means for the node. What a message
 * *means* is the dispatcher's and the handlers' business, not the session's.
 */
import type { Duplex } from "node:stream";
import {
  type Clock,
  DecodeError,
  type Envelope,
  type ErrorCode,
  type ForeignCode,
  FrameTooLargeError,
  foreignCode,
  type Logger,
  type MessageMap,
  type MessageType,
  NdjsonDecoder,
  NdjsonEncoder,
  PiclusterError,
  type RequestType,
  type Response,
  type ResponseMap,
} from "@picluster/common";
import { parseEnvelopeCompiled } from "@picluster/common/schema";
import type { PskLookup } from "./credentials.js";

/** How the peer authenticated at the TLS layer. */
export type SessionAuth = PskLookup | { kind: "insecure" };

export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** A peer that does not read what we send is cut before its backlog grows past this. */
const MAX_WRITE_BACKLOG_BYTES = 8 * 1024 * 1024;

/** The `[primary]` limits a session enforces. */
export interface SessionLimits {
  maxFrameBytes: number;
  handshakeTimeoutMs: number;
  strikeLimit: number;
}

/** Everything a session is made with. */
export interface SessionOptions {
  socket: Duplex & { remoteAddress?: string | undefined; remotePort?: number | undefined };
  auth: SessionAuth;
  limits: SessionLimits;
  clock: Clock;
  events: SessionEvents;
  log: Logger;
  /** A request id unique across the process's sessions (SessionRegistry.requestId). */
  requestId(): number;
}

export interface SessionEvents {
  /** A decoded, valid message; the dispatcher's entry point. */
  onMessage(session: Session, msg: Envelope): void;
  /** The connection ended; `nodeId` is set when the peer had identified itself. */
  onClose(session: Session, reason: string): void;
}

export class RequestError extends PiclusterError {
  constructor(
    code: ErrorCode | ForeignCode,
    message: string,
    /** JSON pointer of the field the node refused, when it named one. */
    readonly path?: string,
  ) {
    super(code, message);
  }
}

interface Pending {
  type: string;
  resolve(response: Response): void;
  reject(err: Error): void;
  cancel(): void;
  /** Output the peer streams for this request (task.output) before it answers. */
  onOutput?: (output: MessageMap["task.output"]) => void;
}

/** Requests a session has in flight at most; more are refused with E_BUSY. */
export const MAX_REQUESTS_IN_FLIGHT = 64;

export interface RequestOptions {
  /** Aborting sends `cancel` for the request; its (error) response still settles the promise. */
  signal?: AbortSignal;
  onOutput?: (output: MessageMap["task.output"]) => void;
  /**
   * Given, once the request is sent, a function that sends `cancel` for it
   * while it is unanswered: for callers that stop many requests one by one
   * (a job's items), cheaper than an AbortController each.
   */
  onSent?: (cancel: () => void) => void;
}

export class Session {
  readonly peer: string;
  /** Set by the hello handler once the node is known. */
  nodeId: string | undefined;
  /** The TLS-PSK identity this session stands for (issued one, for a join). */
  credentialIdentity: string | undefined;
  /** Set when the node said `bye`: its end is `left`, not `down`. */
  saidBye = false;
  /**
   * The first seq on this connection that the store could not keep (a full
   * disk). Acks are cumulative, so nothing after it is acknowledged here:
   * the agent sends it all again on its next connection.
   */
  unstoredSeq: number | undefined;
  /** Set when the primary ends the node's membership (revoked): its end is `left` with this reason. */
  leftReason: string | undefined;
  private strikes = 0;
  /** Writes of this tick are gathered and sent together (one TLS record, one syscall). */
  private corked = false;
  private closed = false;
  private closing = false;
  private closeReason = "";
  private readonly pending = new Map<number, Pending>();
  private readonly decoder: NdjsonDecoder;
  private readonly encoder: NdjsonEncoder;
  private cancelHandshakeTimer: (() => void) | undefined;
  /** Frees this connection's slot in the listener's per-address handshake cap. */
  releaseHandshake: () => void = () => {};
  log: Logger;

  readonly auth: SessionAuth;
  private readonly socket: SessionOptions["socket"];
  private readonly opts: SessionLimits;
  private readonly clock: Clock;
  private readonly events: SessionEvents;
  private readonly requestId: () => number;

  constructor(options: SessionOptions) {
    const { socket, limits } = options;
    this.socket = socket;
    this.auth = options.auth;
    this.opts = limits;
    this.clock = options.clock;
    this.events = options.events;
    this.requestId = options.requestId;
    this.peer = `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0}`;
    this.log = options.log.child({ peer: this.peer });
    this.decoder = new NdjsonDecoder(limits.maxFrameBytes, parseEnvelopeCompiled);
    this.encoder = new NdjsonEncoder(limits.maxFrameBytes);
  }

  start(): void {
    this.cancelHandshakeTimer = this.clock.after(this.opts.handshakeTimeoutMs, () => {
      if (this.nodeId === undefined)
        this.close(`no hello within ${this.opts.handshakeTimeoutMs} ms`);
    });
    this.socket.on("data", (chunk: Buffer) => this.onData(chunk));
    this.socket.on("error", (err: NodeJS.ErrnoException) => {
      this.closeReason ||= `connection lost (${err.code ?? err.message})`;
    });
    this.socket.on("close", () => this.onClosed());
  }

  /** The handshake is done: the session belongs to `nodeId`. */
  identified(nodeId: string, log: Logger): void {
    this.nodeId = nodeId;
    this.log = log;
    this.cancelHandshakeTimer?.();
    this.releaseHandshake();
  }

  send<T extends MessageType>(
    type: T,
    payload: MessageMap[T],
    extra: { id?: number; seq?: number } = {},
  ): void {
    this.write({ v: 1, type, ts: this.clock.now(), ...extra, payload } as Envelope);
  }

  /** Tell the peer what was wrong with what it sent (as a response when it was a request). */
  sendError(
    code: string,
    message: string,
    opts: { path?: string; re?: number; type?: string } = {},
  ): void {
    const error = {
      code,
      message: message.slice(0, 4096),
      ...(opts.path === undefined ? {} : { path: opts.path }),
    };
    if (opts.re !== undefined && opts.type !== undefined) {
      this.write({ v: 1, type: opts.type, ts: this.clock.now(), re: opts.re, error } as Envelope);
    } else {
      this.send("error", error);
    }
  }

  /** Count a bad message; past the strike limit the session ends. */
  strike(
    code: string,
    message: string,
    opts: { path?: string; re?: number; type?: string } = {},
  ): void {
    this.strikes += 1;
    this.sendError(code, message, opts);
    this.log.warn("bad message from peer", {
      code,
      error: message,
      strikes: this.strikes,
      node: this.nodeId,
    });
    if (this.strikes > this.opts.strikeLimit) this.close(`too many bad messages (${this.strikes})`);
  }

  /** Send a request; resolves with the response or rejects at the deadline. */
  request<T extends RequestType>(
    type: T,
    payload: MessageMap[T],
    timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS,
    opts: RequestOptions = {},
  ): Promise<ResponseMap[T]> {
    const id = this.requestId();
    if (this.closed || this.socket.writableEnded) {
      return Promise.reject(
        new RequestError("E_DISCONNECTED", `${type}: the node is not connected`),
      );
    }
    if (this.pending.size >= MAX_REQUESTS_IN_FLIGHT) {
      return Promise.reject(
        new RequestError(
          "E_BUSY",
          `${type}: ${this.pending.size} requests to this node are already waiting`,
        ),
      );
    }
    return new Promise<ResponseMap[T]>((resolve, reject) => {
      const onAbort = () => this.send("cancel", { id });
      const cancelTimer = this.clock.after(timeoutMs, () => {
        this.pending.delete(id);
        opts.signal?.removeEventListener("abort", onAbort);
        // The node may still be working on it: tell it to stop.
        this.send("cancel", { id });
        reject(new RequestError("E_TIMEOUT", `${type} got no answer within ${timeoutMs} ms`));
      });
      this.pending.set(id, {
        type,
        resolve: (response) => {
          if ("error" in response)
            reject(
              new RequestError(
                foreignCode(response.error.code),
                response.error.message,
                response.error.path,
              ),
            );
          else resolve(response.payload as ResponseMap[T]);
        },
        reject,
        cancel: () => {
          cancelTimer();
          opts.signal?.removeEventListener("abort", onAbort);
        },
        ...(opts.onOutput === undefined ? {} : { onOutput: opts.onOutput }),
      });
      this.send(type, payload, { id });
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      opts.onSent?.(() => {
        if (this.pending.has(id)) onAbort();
      });
    });
  }

  /** Hand streamed output to the request it belongs to. */
  routeOutput(output: MessageMap["task.output"]): void {
    const pending = this.pending.get(output.run);
    if (pending?.onOutput === undefined) {
      this.log.debug("output for no pending request", { run: output.run });
      return;
    }
    pending.onOutput(output);
  }

  /** Route a response to the request waiting for it. */
  resolveResponse(response: Response): void {
    const pending = this.pending.get(response.re);
    if (pending === undefined || pending.type !== response.type) {
      this.log.debug("response to no pending request", { re: response.re, type: response.type });
      return;
    }
    this.pending.delete(response.re);
    pending.cancel();
    pending.resolve(response);
  }

  close(reason: string): void {
    if (this.closed || this.closing) return;
    this.closing = true;
    this.closeReason ||= reason;
    this.socket.end();
    // A peer that never reads would hold the socket open; don't wait for it.
    const cancel = this.clock.after(1_000, () => this.socket.destroy());
    this.socket.once("close", cancel);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private write(env: Envelope): void {
    if (this.closed || this.socket.writableEnded) return;
    let frame: Buffer;
    try {
      frame = this.encoder.encode(env);
    } catch (err) {
      // Our own message too large: a bug on this side, not the peer's fault.
      this.log.error("cannot send message", { type: env.type, err: String(err) });
      return;
    }
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(frame);
    if (this.socket.writableLength > MAX_WRITE_BACKLOG_BYTES) {
      this.close(`peer is not reading (${this.socket.writableLength} bytes waiting)`);
      this.socket.destroy();
    }
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    for (const item of this.decoder.feed(chunk)) {
      if (this.closed || this.socket.writableEnded) return;
      if (item instanceof FrameTooLargeError) {
        this.sendError(item.code, item.message);
        this.log.warn("frame too large, closing", { limit: item.limit, node: this.nodeId });
        this.close(item.message);
        return;
      }
      if (item instanceof DecodeError) {
        this.strike(item.code, item.message, {
          ...(item.path === undefined ? {} : { path: item.path }),
          ...(item.id === undefined || item.messageType === undefined
            ? {}
            : { re: item.id, type: item.messageType }),
        });
        continue;
      }
      this.events.onMessage(this, item);
    }
  }

  private onClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.cancelHandshakeTimer?.();
    for (const [id, pending] of this.pending) {
      pending.cancel();
      pending.reject(
        new RequestError("E_DISCONNECTED", `connection closed before request ${id} was answered`),
      );
    }
    this.pending.clear();
    this.events.onClose(this, this.closeReason || "connection closed by peer");
  }
}
