/**
 * Routes every message from an agent to exactly one handler. The things
 * every handler would otherwise repeat live here once: the handshake gate,
 * who may send what, seq de-duplication, acknowledgement after the handler
 * is done, and the error reply for what cannot be handled.
 */

import {
  type Clock,
  describeError,
  type Envelope,
  isResponse,
  type Logger,
  type Message,
  type MessageMap,
  type MessageType,
  PiclusterError,
} from "@picluster/common";
import { MESSAGES } from "@picluster/common/schema";
import type { CredentialStore } from "./credentials.js";
import type { LivenessDetector } from "./liveness.js";
import type { Registry } from "./registry.js";
import type { Session } from "./session.js";
import type { SessionRegistry } from "./sessions.js";
import { type Store, StoreError } from "./store/store.js";

export interface HandlerContext {
  registry: Registry;
  liveness: LivenessDetector;
  /** Absent when the listener runs without TLS (debugging only). */
  credentials: CredentialStore | undefined;
  clock: Clock;
  log: Logger;
  /** Where samples and events are kept; absent in tests that need no history. */
  store: Store | undefined;
  /** The live session of each node; a newer connection replaces an older one. */
  sessions: SessionRegistry;
  settings: { heartbeatMs: number; vitalsMs: number; primaryVersion: string };
  /**
   * The scale-out mode: hand a sample to the other primaries; its ack waits
   * for this too. Absent when embedded.
   */
  shareVitals?: (
    nodeId: string,
    ts: number,
    seq: number,
    vitals: MessageMap["vitals"],
  ) => Promise<void>;
}

/** A handler for messages of type T; a returned promise delays the ack until it settles. */
export type Handler<T extends MessageType> = (
  ctx: HandlerContext,
  session: Session,
  msg: Message<T>,
) => void | Promise<void>;
export type HandlerTable = { [T in MessageType]?: Handler<T> };

export class Dispatcher {
  constructor(
    private readonly ctx: HandlerContext,
    private readonly handlers: HandlerTable,
  ) {}

  dispatch(session: Session, env: Envelope): void {
    if (isResponse(env)) {
      if (session.nodeId === undefined) {
        session.strike("E_HANDSHAKE_REQUIRED", "send hello first");
        return;
      }
      this.ctx.registry.seen(session.nodeId, this.ctx.clock.now());
      session.resolveResponse(env);
      return;
    }
    const msg = env;
    const reply = msg.id === undefined ? {} : { re: msg.id, type: msg.type };
    if (MESSAGES[msg.type].from !== "agent") {
      session.strike("E_WRONG_DIRECTION", `"${msg.type}" is sent by the primary, not to it`, reply);
      return;
    }
    if (session.nodeId === undefined ? msg.type !== "hello" : msg.type === "hello") {
      const message =
        msg.type === "hello"
          ? "hello was already received on this connection"
          : `send hello before "${msg.type}"`;
      session.strike("E_HANDSHAKE_REQUIRED", message, reply);
      return;
    }
    const handler = this.handlers[msg.type] as Handler<typeof msg.type> | undefined;
    if (handler === undefined) {
      session.strike("E_UNSUPPORTED", `"${msg.type}" is not handled by this primary`, reply);
      return;
    }
    const nodeId = session.nodeId;
    if (nodeId !== undefined) {
      this.ctx.registry.seen(nodeId, this.ctx.clock.now());
      const node = this.ctx.registry.get(nodeId);
      if (msg.seq !== undefined && node !== undefined && msg.seq <= node.lastSeq) {
        // A replay of something already stored: acknowledge again, store nothing.
        session.send("ack", { seq: node.lastSeq });
        return;
      }
    }
    let result: void | Promise<void>;
    try {
      result = handler(this.ctx, session, msg as never);
    } catch (err) {
      this.failed(session, msg, err);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        () => this.done(session, msg),
        (err: unknown) => this.failed(session, msg, err),
      );
    } else {
      this.done(session, msg);
    }
  }

  private done(session: Session, msg: Message): void {
    // Ack after the handler is done: an acked seq is stored. Not after a
    // seq the store refused: the ack would cover it too.
    if (msg.seq !== undefined && !session.isClosed && session.unstoredSeq === undefined)
      session.send("ack", { seq: msg.seq });
  }

  private failed(session: Session, msg: Message, err: unknown): void {
    if (msg.seq !== undefined && err instanceof StoreError) {
      // Not stored, so not acknowledged; the agent keeps it. Said once per
      // connection: a full disk refuses every sample, and the store has
      // said why in its own log.
      if (session.unstoredSeq !== undefined) return;
      session.unstoredSeq = msg.seq;
      session.log.warn("sample not stored; nothing more is acknowledged on this connection", {
        seq: msg.seq,
        code: err.code,
      });
      session.sendError(err.code, describeError(err));
      return;
    }
    const code = err instanceof PiclusterError ? err.code : "E_INTERNAL";
    const log: Logger = session.log;
    log.error("handler failed", { type: msg.type, code, err: describeError(err) });
    session.sendError(
      code,
      describeError(err),
      msg.id === undefined ? {} : { re: msg.id, type: msg.type },
    );
  }
}
