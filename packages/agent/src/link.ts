/**
 * The agent's side of the link: dial, handshake, heartbeats, sending the
 * outbox, answering the primary's requests, and reconnecting with
 * exponential backoff and full jitter when the link drops.
 */
import type { Duplex } from "node:stream";
import {
  type Clock,
  DecodeError,
  describeError,
  type Envelope,
  isResponse,
  type Logger,
  type MessageMap,
  NdjsonDecoder,
  NdjsonEncoder,
  PROTOCOL_VERSION,
  type RequestType,
  type ResponseMap,
} from "@picluster/common";
import type { DialTarget } from "./dial.js";
import type { Outbox } from "./outbox.js";
import { TaskError, type TaskExecutor } from "./tasks/executor.js";

/** Task output is sent in pieces of at most this many characters (the schema allows 64 Ki). */
const OUTPUT_PIECE = 16 * 1024;
/** Log follows open at once; more are refused with E_BUSY. */
const MAX_FOLLOWS = 4;

export const RECONNECT_BASE_MS = 500;
export const WELCOME_TIMEOUT_MS = 5_000;
/** How long `stop()` waits for the primary to take our `bye` before cutting the socket. */
export const BYE_GRACE_MS = 1_500;
/** Vitals intervals without any acknowledgement before the link is presumed dead. */
export const UNACKED_LIMIT_INTERVALS = 3;

export type LinkState = "connecting" | "handshake" | "ready" | "stopped";

export interface LinkOptions {
  clock: Clock;
  log: Logger;
  outbox: Outbox;
  /** Where and how to connect; asked again before every attempt (a joined node's credential changes). */
  target(): DialTarget;
  /** The primary in `target()` could not be reached or was lost: the next attempt goes to another, if any. */
  nextTarget?(): void;
  dial(target: DialTarget, signal: AbortSignal): Promise<Duplex>;
  hello(): MessageMap["hello"];
  details(): Promise<MessageMap["details"]>;
  /** A joining node received its own credential: keep it. */
  onCredential(credential: MessageMap["credential"]): void;
  onWelcome(welcome: MessageMap["welcome"]): void;
  /** Runs the tasks the primary asks for (absent: every task.run is refused). */
  tasks?: TaskExecutor;
  /** Answers `logs.tail` and `processes.top` (absent: refused as unsupported). */
  logsTail?(
    request: MessageMap["logs.tail"],
    follow: { signal: AbortSignal; output(data: string): void },
  ): Promise<ResponseMap["logs.tail"]>;
  processesTop?(request: MessageMap["processes.top"]): Promise<ResponseMap["processes.top"]>;
  reconnectMaxMs: number;
  maxFrameBytes: number;
  /**
   * A dial failed: "retry" as usual, "refused" (the primary said no: wait
   * the longest backoff at once), or "give-up" (stop the link).
   */
  onDialError?(err: unknown): "retry" | "refused" | "give-up";
}

/** Full jitter: a uniform wait between 0 and the capped exponential step. */
export function backoffMs(
  attempt: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const step = Math.min(maxMs, RECONNECT_BASE_MS * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * step);
}

export class AgentLink {
  state: LinkState = "connecting";
  private socket: Duplex | undefined;
  private readonly encoder: NdjsonEncoder;
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private stopHeartbeat: () => void = () => {};
  private heartbeatMs = 1_000;
  /** The details last sent on this connection, to send them again only when they change. */
  private lastDetails: string | undefined;
  /** Open `logs.tail` follows by request id; they end with the connection. */
  private readonly following = new Map<number, AbortController>();
  /** Log follows open now. */
  get follows(): number {
    return this.following.size;
  }
  /** Connection attempts since the last welcome. */
  attempts = 0;

  constructor(private readonly opts: LinkOptions) {
    this.encoder = new NdjsonEncoder(opts.maxFrameBytes);
  }

  start(): void {
    this.running = this.loop();
  }

  /** Queue a vitals sample; it is sent now if the link is up, else on reconnect. */
  enqueueVitals(payload: MessageMap["vitals"]): void {
    const { entry, droppedOldest } = this.opts.outbox.push(
      "vitals",
      payload,
      this.opts.clock.now(),
    );
    if (droppedOldest) {
      this.opts.log.warn("outbox full, dropped oldest sample", {
        dropped: this.opts.outbox.dropped,
        capacity: this.opts.outbox.capacity,
      });
    }
    if (this.state === "ready")
      this.write({ v: 1, type: "vitals", ts: entry.ts, seq: entry.seq, payload: entry.payload });
  }

  /** Say `bye` if connected, close, and stop reconnecting. Resolves within BYE_GRACE_MS. */
  async stop(reason = "agent stopping"): Promise<void> {
    if (this.state === "stopped") return;
    const wasReady = this.state === "ready";
    this.state = "stopped";
    this.abort.abort();
    this.stopHeartbeat();
    const socket = this.socket;
    if (socket !== undefined && !socket.destroyed) {
      if (wasReady)
        this.write({ v: 1, type: "bye", ts: this.opts.clock.now(), payload: { reason } });
      socket.end();
      await new Promise<void>((resolve) => {
        const cancel = this.opts.clock.after(BYE_GRACE_MS, () => {
          socket.destroy();
          resolve();
        });
        socket.once("close", () => {
          cancel();
          resolve();
        });
      });
    }
    await this.running;
  }

  private async loop(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      this.state = "connecting";
      const target = this.opts.target();
      let socket: Duplex;
      try {
        socket = await this.opts.dial(target, signal);
      } catch (err) {
        const verdict = this.opts.onDialError?.(err) ?? "retry";
        if (verdict === "give-up") break;
        if (verdict === "refused") {
          // Asking again soon changes nothing: straight to the longest wait
          // (in its upper half, still jittered so a fleet does not align).
          const max = this.opts.reconnectMaxMs;
          await this.sleep(Math.floor(max / 2 + (Math.random() * max) / 2));
          continue;
        }
        this.opts.nextTarget?.();
        const waitMs = backoffMs(this.attempts++, this.opts.reconnectMaxMs);
        this.opts.log.warn("cannot reach the primary", {
          err: describeError(err),
          retryInMs: waitMs,
          attempt: this.attempts,
        });
        await this.sleep(waitMs);
        continue;
      }
      if (signal.aborted) {
        socket.destroy();
        break;
      }
      const reason = await this.session(socket);
      if (signal.aborted) break;
      this.opts.nextTarget?.();
      const waitMs = backoffMs(this.attempts++, this.opts.reconnectMaxMs);
      this.opts.log.warn("link to the primary lost", { reason, retryInMs: waitMs });
      await this.sleep(waitMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    const signal = this.abort.signal;
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const cancel = this.opts.clock.after(ms, () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      });
      const onAbort = () => {
        cancel();
        resolve();
      };
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Run one connection until it closes; resolves with why it closed. */
  private session(socket: Duplex): Promise<string> {
    this.socket = socket;
    this.state = "handshake";
    const decoder = new NdjsonDecoder(this.opts.maxFrameBytes);
    let reason = "closed by the primary";
    return new Promise((resolve) => {
      const cancelWelcome = this.opts.clock.after(WELCOME_TIMEOUT_MS, () => {
        if (this.state === "handshake") {
          reason = `no welcome within ${WELCOME_TIMEOUT_MS} ms`;
          socket.destroy();
        }
      });
      socket.on("data", (chunk: Buffer) => {
        for (const item of decoder.feed(chunk)) {
          if (item instanceof DecodeError) {
            this.onBadMessage(item);
            continue;
          }
          this.onMessage(item);
        }
      });
      socket.on("error", (err: NodeJS.ErrnoException) => {
        reason = `connection error (${err.code ?? err.message})`;
      });
      socket.on("close", () => {
        cancelWelcome();
        this.stopHeartbeat();
        if (this.socket === socket) this.socket = undefined;
        // Follows belong to the connection that asked for them.
        for (const follow of this.following.values()) follow.abort();
        this.following.clear();
        if (this.state !== "stopped") this.state = "connecting";
        resolve(reason);
      });
      this.write({ v: 1, type: "hello", ts: this.opts.clock.now(), payload: this.opts.hello() });
    });
  }

  /**
   * A frame we cannot use. A request among them (a newer primary asking for
   * something this agent does not know, or a payload it cannot read) is
   * answered with the error at once: the primary would otherwise wait for
   * its deadline with nobody working on the request.
   */
  private onBadMessage(err: DecodeError): void {
    this.opts.log.warn("bad message from the primary", {
      code: err.code,
      error: err.message,
      type: err.messageType,
    });
    if (err.id === undefined || err.messageType === undefined) return;
    const message =
      err.code === "E_UNKNOWN_TYPE"
        ? `this agent (picluster ${this.opts.hello().version}) does not know "${err.messageType.slice(0, 64)}"; update picluster on this node`
        : err.message;
    this.respondError(err.messageType.slice(0, 64), err.id, err.code, message, err.path);
  }

  /** A request this agent knows the type of but has no handler for. */
  private unsupported(type: string, id: number): void {
    this.respondError(
      type,
      id,
      "E_UNSUPPORTED",
      `this agent (picluster ${this.opts.hello().version}) does not answer "${type}"`,
    );
  }

  private onMessage(env: Envelope): void {
    if (isResponse(env)) {
      this.opts.log.debug("response to no request of ours", { type: env.type, re: env.re });
      return;
    }
    switch (env.type) {
      case "welcome":
        this.onWelcome(env.payload);
        return;
      case "ack":
        this.opts.outbox.ack(env.payload.seq);
        return;
      case "credential":
        this.opts.onCredential(env.payload);
        return;
      case "error":
        (["E_REVOKED", "E_REMOVED"].includes(env.payload.code)
          ? this.opts.log.error
          : this.opts.log.warn
        ).call(this.opts.log, "the primary reported an error", {
          code: env.payload.code,
          error: env.payload.message,
          path: env.payload.path,
        });
        return;
      case "ping":
        if (env.id !== undefined) this.respond("ping", env.id, { time: this.opts.clock.now() });
        return;
      case "details.get":
        if (env.id !== undefined) {
          const id = env.id;
          this.opts.details().then(
            (details) => this.respond("details.get", id, details),
            (err: unknown) => this.respondError("details.get", id, "E_COLLECT", describeError(err)),
          );
        }
        return;
      case "task.run":
        if (env.id !== undefined) this.runTask(env.id, env.payload);
        return;
      case "logs.tail":
        if (env.id !== undefined && this.opts.logsTail !== undefined) {
          const id = env.id;
          if (env.payload.follow === true && this.following.size >= MAX_FOLLOWS) {
            this.respondError(
              "logs.tail",
              id,
              "E_BUSY",
              `already following the log ${MAX_FOLLOWS} times`,
            );
            return;
          }
          const ac = new AbortController();
          if (env.payload.follow === true) this.following.set(id, ac);
          const work = this.opts.logsTail(env.payload, {
            signal: ac.signal,
            output: (data) => this.sendOutput(id, "stdout", data),
          });
          this.answer(
            "logs.tail",
            id,
            work.finally(() => this.following.delete(id)),
          );
        } else if (env.id !== undefined)
          this.respondError(
            "logs.tail",
            env.id,
            "E_NO_LOG_FILE",
            "this agent logs to the console only",
          );
        return;
      case "processes.top":
        if (env.id === undefined) return;
        if (this.opts.processesTop === undefined) this.unsupported(env.type, env.id);
        else this.answer("processes.top", env.id, this.opts.processesTop(env.payload));
        return;
      case "cancel": {
        const follow = this.following.get(env.payload.id);
        if (follow !== undefined) {
          follow.abort();
          return;
        }
        if (this.opts.tasks?.cancel(env.payload.id) !== true)
          this.opts.log.debug("cancel for no running request", { id: env.payload.id });
        return;
      }
      default:
        if (env.id !== undefined) {
          this.unsupported(env.type, env.id);
        } else {
          this.opts.log.warn("unexpected message from the primary", { type: env.type });
        }
    }
  }

  private onWelcome(welcome: MessageMap["welcome"]): void {
    if (welcome.protocol !== PROTOCOL_VERSION) {
      this.opts.log.error("the primary speaks another protocol version", {
        theirs: welcome.protocol,
        ours: PROTOCOL_VERSION,
      });
      this.socket?.destroy();
      return;
    }
    this.state = "ready";
    this.attempts = 0;
    this.opts.outbox.welcome(welcome.lastSeq);
    this.opts.onWelcome(welcome);
    this.opts.log.info("connected to the primary", {
      primaryVersion: welcome.primaryVersion,
      replaying: this.opts.outbox.size,
    });
    this.heartbeatMs = welcome.heartbeatMs;
    this.stopHeartbeat();
    const readySince = this.opts.clock.now();
    const silenceLimitMs = UNACKED_LIMIT_INTERVALS * welcome.vitalsMs;
    this.stopHeartbeat = this.opts.clock.every(this.heartbeatMs, () => {
      const now = this.opts.clock.now();
      // Heartbeats keep bytes in flight, so TCP keepalive never notices a
      // primary that vanished (power cut, partition). Samples it does not
      // acknowledge for several intervals do.
      const oldest = this.opts.outbox.oldest();
      if (
        oldest !== undefined &&
        now - readySince > silenceLimitMs &&
        now - oldest.ts > silenceLimitMs
      ) {
        this.opts.log.warn("the primary acknowledges nothing, reconnecting", {
          oldestUnackedMs: now - oldest.ts,
        });
        this.socket?.destroy();
        return;
      }
      this.write({
        v: 1,
        type: "heartbeat",
        ts: now,
        payload: { dropped: this.opts.outbox.dropped },
      });
    });
    this.lastDetails = undefined;
    this.refreshDetails();
    for (const entry of this.opts.outbox.pending()) {
      this.write({ v: 1, type: entry.type, ts: entry.ts, seq: entry.seq, payload: entry.payload });
    }
  }

  /** Collect details and send them if they differ from what this connection last sent. */
  refreshDetails(): void {
    if (this.state !== "ready") return;
    this.opts.details().then(
      (details) => {
        const text = JSON.stringify(details);
        if (this.state !== "ready" || text === this.lastDetails) return;
        this.lastDetails = text;
        this.write({ v: 1, type: "details", ts: this.opts.clock.now(), payload: details });
      },
      (err: unknown) => this.opts.log.error("cannot collect details", { err: describeError(err) }),
    );
  }

  /** Send what `work` resolves with as the response to request `id`, or its failure as an error. */
  private answer<T extends RequestType>(type: T, id: number, work: Promise<ResponseMap[T]>): void {
    work.then(
      (payload) => this.respond(type, id, payload),
      (err: unknown) => this.respondError(type, id, "E_FAILED", describeError(err)),
    );
  }

  /** Output of request `id` (a task, a followed log), in pieces the schema allows. */
  private sendOutput(id: number, stream: "stdout" | "stderr", data: string): void {
    for (let i = 0; i < data.length; i += OUTPUT_PIECE) {
      this.write({
        v: 1,
        type: "task.output",
        ts: this.opts.clock.now(),
        payload: { run: id, stream, data: data.slice(i, i + OUTPUT_PIECE) },
      });
    }
  }

  private runTask(id: number, request: MessageMap["task.run"]): void {
    const tasks = this.opts.tasks;
    if (tasks === undefined) {
      this.respondError("task.run", id, "E_NOT_ALLOWED", "this agent runs no tasks");
      return;
    }
    tasks
      .run(id, request, (stream, data) => this.sendOutput(id, stream, data))
      .then(
        (result) => this.respond("task.run", id, result),
        (err: unknown) => {
          if (err instanceof TaskError) {
            this.opts.log.warn("task refused", {
              task: request.task,
              code: err.code,
              error: err.message,
            });
            this.respondError("task.run", id, err.code, err.message, err.path);
          } else {
            this.opts.log.error("task failed", { task: request.task, err: describeError(err) });
            this.respondError("task.run", id, "E_TASK", describeError(err));
          }
        },
      );
  }

  private respond<T extends RequestType>(type: T, re: number, payload: ResponseMap[T]): void {
    this.write({ v: 1, type, ts: this.opts.clock.now(), re, payload } as Envelope);
  }

  private respondError(
    /** Possibly a type we do not know: an unknown request is answered under its own type. */
    type: string,
    re: number,
    code: string,
    message: string,
    path?: string,
  ): void {
    const error = { code, message, ...(path === undefined ? {} : { path }) };
    this.write({ v: 1, type, ts: this.opts.clock.now(), re, error } as Envelope);
  }

  private write(env: Envelope): void {
    const socket = this.socket;
    if (socket === undefined || socket.destroyed || socket.writableEnded) return;
    try {
      socket.write(this.encoder.encode(env));
    } catch (err) {
      this.opts.log.error("cannot send message", { type: env.type, err: describeError(err) });
    }
  }
}
