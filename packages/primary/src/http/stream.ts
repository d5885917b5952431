/**
 * GET /api/stream: server-sent events, so a page stays live without polling.
 * - `event: <kind>` with `id:` for every stored event (state changes,
 *   throttling, joins…); a client reconnecting with Last-Event-ID gets what
 *   it missed from the store first.
 * - `event: task.output` (no id) for each piece of a running task's output.
 * - `event: vitals` once a second with the latest figures of every node that
 *   reported since the last one (coalesced: one entry per node).
 */

import type { Clock, Logger } from "@picluster/common";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { EventBus } from "../events.js";
import type { Registry } from "../registry.js";
import { METRICS } from "../store/metrics.js";
import type { Store, StoredEvent } from "../store/store.js";

const VITALS_EVERY_MS = 1_000;
const KEEPALIVE_MS = 15_000;
/** A client that stops reading is dropped before its backlog passes this. */
const MAX_BACKLOG_BYTES = 1024 * 1024;
const RESUME_LIMIT = 1_000;

export interface StreamDeps {
  events: EventBus;
  registry: Registry;
  store: Store;
  clock: Clock;
  log: Logger;
}

export function openStream(req: FastifyRequest, reply: FastifyReply, deps: StreamDeps): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  let open = true;
  const write = (text: string) => {
    if (!open) return;
    res.write(text);
    if (res.writableLength > MAX_BACKLOG_BYTES) {
      deps.log.warn("stream client is not reading, closing it", { backlog: res.writableLength });
      close();
      res.destroy();
    }
  };
  const sendEvent = (e: StoredEvent) =>
    write(`id: ${e.id}\nevent: ${e.kind}\ndata: ${JSON.stringify(e)}\n\n`);

  write("retry: 2000\n\n");
  const header = req.headers["last-event-id"];
  const lastId = Number(Array.isArray(header) ? header[0] : header);
  if (Number.isSafeInteger(lastId) && lastId > 0) {
    for (const e of deps.store.events({ afterId: lastId, limit: RESUME_LIMIT }).reverse())
      sendEvent(e);
  }

  const offStored = deps.store.onEvents((events) => {
    for (const e of events) sendEvent(e);
  });
  const updated = new Set<string>();
  const offVitals = deps.events.on((e) => {
    if (e.kind === "node.vitals") updated.add(e.nodeId);
    // Task output as it comes, without an id: a resumed stream gets the
    // node's output from GET /api/tasks/:id instead.
    else if (e.kind === "task.output") write(`event: task.output\ndata: ${JSON.stringify(e)}\n\n`);
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
    write(`event: vitals\ndata: ${JSON.stringify(batch)}\n\n`);
  });
  const stopKeepalive = deps.clock.every(KEEPALIVE_MS, () => write(": keep-alive\n\n"));

  const close = () => {
    if (!open) return;
    open = false;
    offStored();
    offVitals();
    stopVitals();
    stopKeepalive();
  };
  res.on("close", close);
}
