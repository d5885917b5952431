/**
 * GET /api/stream: server-sent events, so a page stays live without polling.
 * - `event: <kind>` with `id:` for every stored event (state changes,
 *   throttling, joins…); a client reconnecting with Last-Event-ID gets what
 *   it missed from the store first, up to `stream_resume_bytes`; past that,
 *   `event: resync` tells it to reload instead. While the store cannot
 *   write (a full disk), events come at once without an `id:`.
 * - `event: vitals` once a second with the latest figures of every node that
 *   reported since the last one (coalesced: one entry per node).
 * Task output is not here: it carries what nodes print, so it has its own
 * route behind the token (GET /api/tasks/:id/output).
 *
 * Every stream holds a slot (`StreamSlots`): a total and a per-address cap,
 * so a thousand clients that connect and never read cost a bounded amount.
 */

import type { Clock, Logger } from "@picluster/common";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { EventBus } from "../events.js";
import type { Registry } from "../registry.js";
import { METRICS } from "../store/metrics.js";
import type { LiveEvent, Store } from "../store/store.js";
import { inScope } from "./access.js";
import { errorBody } from "./guard.js";

const VITALS_EVERY_MS = 1_000;
const KEEPALIVE_MS = 15_000;
/**
 * A hard ceiling on one client's unsent backlog. A client that stops
 * reading is normally cut by the stall timer first; this bounds what a
 * burst of events can pile up before that (a thousand nodes changing state
 * at once is ~300 KiB, which a reading client must survive).
 */
const MAX_BACKLOG_BYTES = 1024 * 1024;
const RESUME_LIMIT = 1_000;
const RESUME_PAGE = 100;

export interface StreamLimits {
  /** Streams open at most, and from one client address. */
  maxStreams: number;
  maxPerAddress: number;
  /** What one Last-Event-ID resume may replay, in bytes. */
  resumeBytes: number;
  /** A client whose socket does not drain within this is cut. */
  stallMs: number;
}

/** Open things (streams, connections) counted by client address. */
export class AddressCounts {
  private readonly counts = new Map<string, number>();

  of(address: string): number {
    return this.counts.get(address) ?? 0;
  }

  /** One more open for `address`; the function returned gives it back (once). */
  add(address: string): () => void {
    this.counts.set(address, this.of(address) + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const left = this.of(address) - 1;
      if (left <= 0) this.counts.delete(address);
      else this.counts.set(address, left);
    };
  }
}

/** Counts open streams, in total and by client address. */
export class StreamSlots {
  private total = 0;
  private readonly byAddress = new AddressCounts();

  constructor(readonly limits: StreamLimits) {}

  get open(): number {
    return this.total;
  }

  /** A slot for `address` (give it back with the function returned), or why not. */
  take(address: string): (() => void) | { status: 429 | 503; message: string } {
    const mine = this.byAddress.of(address);
    if (this.total >= this.limits.maxStreams)
      return {
        status: 503,
        message: `the primary has ${this.total} event streams open, its most ([http] max_streams); try again later`,
      };
    if (mine >= this.limits.maxPerAddress)
      return {
        status: 429,
        message: `${address} has ${mine} event streams open, the most one address may ([http] max_streams_per_address)`,
      };
    this.total += 1;
    const release = this.byAddress.add(address);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.total -= 1;
      release();
    };
  }
}

export interface SseWriter {
  /** Queue text; false once the client is gone or was cut. */
  write(text: string): boolean;
  /** Called once when the stream ends for any reason. */
  onClose(fn: () => void): void;
  end(): void;
  readonly open: boolean;
}

/**
 * Start an event stream on `reply`: take a slot or answer 429/503, then
 * hijack the socket and return a writer that cuts a client which stops
 * reading (its backlog past MAX_BACKLOG_BYTES, or no drain within stallMs).
 */
export function openSse(
  req: FastifyRequest,
  reply: FastifyReply,
  deps: { slots: StreamSlots; clock: Clock; log: Logger },
): SseWriter | undefined {
  const address = req.ip;
  const slot = deps.slots.take(address);
  if (typeof slot !== "function") {
    void reply
      .code(slot.status)
      .header("retry-after", "10")
      // Closed, not kept alive: a refused client must not hold a connection slot.
      .header("connection", "close")
      .send(errorBody("E_TOO_MANY_STREAMS", slot.message));
    return undefined;
  }
  reply.hijack();
  const res = reply.raw;
  // Streams are quiet between keep-alives: the idle timeout is not for them
  // (a client that stops reading is cut by the stall timer below instead).
  req.raw.socket.setTimeout(0);
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  const closers: Array<() => void> = [];
  let open = true;
  let cancelStall: (() => void) | undefined;
  const close = () => {
    if (!open) return;
    open = false;
    slot();
    cancelStall?.();
    for (const fn of closers) fn();
  };
  const cut = (why: string, fields: Record<string, unknown>) => {
    deps.log.warn(why, { client: address, ...fields });
    close();
    res.destroy();
  };
  res.on("close", close);
  res.on("drain", () => {
    cancelStall?.();
    cancelStall = undefined;
  });
  return {
    get open() {
      return open;
    },
    write(text) {
      if (!open) return false;
      const flushed = res.write(text);
      if (res.writableLength > MAX_BACKLOG_BYTES) {
        cut("stream client is not reading, closing it", { backlog: res.writableLength });
        return false;
      }
      if (!flushed && cancelStall === undefined) {
        cancelStall = deps.clock.after(deps.slots.limits.stallMs, () =>
          cut("stream client did not drain in time, closing it", {
            stallMs: deps.slots.limits.stallMs,
            backlog: res.writableLength,
          }),
        );
      }
      return open;
    },
    onClose(fn) {
      if (open) closers.push(fn);
      else fn();
    },
    end() {
      if (!open) return;
      close();
      res.end();
    },
  };
}

export interface StreamDeps {
  events: EventBus;
  registry: Registry;
  store: Store;
  clock: Clock;
  log: Logger;
  slots: StreamSlots;
}

export function openStream(req: FastifyRequest, reply: FastifyReply, deps: StreamDeps): void {
  const sse = openSse(req, reply, deps);
  if (sse === undefined) return;
  // A scoped token (a share link) hears its nodes only: events without a node are left out too.
  const scoped = req.principal?.scope !== undefined;
  const visible = (nodeId: string | null | undefined) => {
    if (!scoped) return true;
    const node = nodeId === null || nodeId === undefined ? undefined : deps.registry.get(nodeId);
    return node !== undefined && inScope(req, node);
  };
  // An event the store could not write yet has no id: the browser's
  // Last-Event-ID stays at the last stored one, so a resume replays from there.
  const sendEvent = (e: LiveEvent) =>
    sse.write(
      `${e.id === null ? "" : `id: ${e.id}\n`}event: ${e.kind}\ndata: ${JSON.stringify(e)}\n\n`,
    );

  sse.write("retry: 2000\n\n");
  const header = req.headers["last-event-id"];
  const lastId = Number(Array.isArray(header) ? header[0] : header);
  if (Number.isSafeInteger(lastId) && lastId > 0) {
    // Oldest first, a page at a time, bounded in bytes: a thousand large
    // events to each of many resuming clients is how a stream fills the
    // primary's memory. Past the budget the client reloads instead.
    let budget = deps.slots.limits.resumeBytes;
    let after = lastId;
    replay: for (let sent = 0; sent < RESUME_LIMIT; ) {
      const page = deps.store.eventsAfter(after, RESUME_PAGE);
      for (const e of page) {
        after = e.id;
        if (scoped && !visible((JSON.parse(e.json) as { nodeId?: string }).nodeId)) continue;
        const text = `id: ${e.id}\nevent: ${e.kind}\ndata: ${e.json}\n\n`;
        budget -= Buffer.byteLength(text);
        if (budget < 0 || ++sent > RESUME_LIMIT) {
          sse.write(`event: resync\ndata: {"reason":"too much to replay; reload"}\n\n`);
          break replay;
        }
        if (!sse.write(text)) return;
      }
      if (page.length < RESUME_PAGE) break;
    }
  }

  const offStored = deps.store.onEvents((events) => {
    for (const e of events) if (visible(e.nodeId)) sendEvent(e);
  });
  const updated = new Set<string>();
  const offVitals = deps.events.on((e) => {
    if (e.kind === "node.vitals") {
      if (visible(e.nodeId)) updated.add(e.nodeId);
    }
    // Stream-only, not stored: told as it happens (at most once a second per job).
    else if (e.kind === "job.progress" && !scoped)
      sse.write(`event: job.progress\ndata: ${JSON.stringify(e)}\n\n`);
  });
  const stopVitals = deps.clock.every(VITALS_EVERY_MS, () => {
    if (updated.size === 0) return;
    const batch = [];
    for (const id of updated) {
      const node = deps.registry.get(id);
      if (node?.vitals === undefined) continue;
      const v = node.vitals;
      const figures = Object.fromEntries(METRICS.map((m) => [m.name, m.from(v) ?? null]));
      batch.push({ nodeId: id, name: node.name, at: node.vitalsAt ?? null, figures });
    }
    updated.clear();
    sse.write(`event: vitals\ndata: ${JSON.stringify(batch)}\n\n`);
  });
  const stopKeepalive = deps.clock.every(KEEPALIVE_MS, () => sse.write(": keep-alive\n\n"));
  sse.onClose(() => {
    offStored();
    offVitals();
    stopVitals();
    stopKeepalive();
  });
}

/** GET /api/stream: the live events (Server-Sent Events), one slot per open stream. */
export function registerStreamRoute(app: FastifyInstance, deps: StreamDeps): void {
  app.get("/api/stream", (req, reply) => {
    openStream(req, reply, deps);
  });
}
