/**
 * The HTTP face of the primary: the JSON API, the live event stream,
 * Prometheus metrics and health. Readers only: routes read the registry,
 * the store and the event bus, and never reach back into sessions.
 */

import type { Socket } from "node:net";
import {
  type Clock,
  type ClusterStatus,
  errorMessage,
  type Logger,
  PiclusterError,
  parseSelector,
  SelectorError,
  selectNodes,
} from "@picluster/common";
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from "fastify";
import type { ApiTokens } from "../api-tokens.js";
import type { CredentialStore } from "../credentials.js";
import type { ClusterEvent, EventBus } from "../events.js";
import type { JobService } from "../jobs/service.js";
import type { NodeRecord, Registry } from "../registry.js";
import type { Store } from "../store/store.js";
import type { TaskService } from "../tasks/service.js";
import { accessControl, ROUTE_ACCESS, TICKET_MS } from "./access.js";
import { type AlertsView, registerAlertRoutes } from "./alerts.js";
import { registerCheckRoutes } from "./checks.js";
import { registerDashboard } from "./dashboard.js";
import { clientErrorCode, errorBody, HostCheck, SECURITY_HEADERS, sendError } from "./guard.js";
import { registerJobRoutes } from "./jobs.js";
import type { JoinSettings } from "./join.js";
import { registerJoinRoutes } from "./join-routes.js";
import { type ProcessStats, registerMetricsRoute } from "./metrics.js";
import { findNode, registerNodeRoutes } from "./nodes.js";
import { type NodeAdmin, registerNodeAdminRoutes } from "./nodes-admin.js";
import { AddressCounts, registerStreamRoute, type StreamLimits, StreamSlots } from "./stream.js";
import { registerTaskRoutes } from "./tasks.js";
import { registerTokenRoutes } from "./tokens.js";

/** What the HTTP server allows a client: see the `[http]` keys of the same names. */
export interface HttpLimits {
  /** Host names answered besides loopback names, addresses and this machine's names. */
  allowedHosts: readonly string[];
  bodyLimit: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  maxConnections: number;
  maxConnectionsPerAddress: number;
  streams: StreamLimits;
}

/** The defaults of the `[http]` keys, for tests that build the server alone. */
export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  allowedHosts: [],
  bodyLimit: 64 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
  maxConnections: 512,
  maxConnectionsPerAddress: 64,
  streams: { maxStreams: 128, maxPerAddress: 16, resumeBytes: 256 * 1024, stallMs: 5_000 },
};

/** Idle keep-alive connections between two requests are closed after this. */
const KEEP_ALIVE_MS = 10_000;
/** A connection over `[http] max_connections_per_address` is closed if no request comes within this. */
const OVER_LIMIT_WAIT_MS = 1_000;

export interface HttpOptions {
  registry: Registry;
  store: Store;
  events: EventBus;
  clock: Clock;
  log: Logger;
  version: string;
  /** `[http] token`: the admin token; empty (and no named token) means changes answer 403. */
  token: string;
  /** Named tokens with roles (`picluster token add`); absent in tests of the read-only routes. */
  apiTokens?: ApiTokens;
  /** `[http] status_page = on`: the checks `/status` shows (`[http] status_checks`); absent when off. */
  statusChecks?: readonly string[];
  /** Reads without a token: bound to loopback, or `[http] public_read` (default true). */
  readsOpen?: boolean;
  /** `[http] token_rate`. */
  tokenRate?: number;
  /** A line in the audit log (tokens made and revoked). */
  audit?: (record: Record<string, unknown>) => void;
  limits: HttpLimits;
  /** storeFingerprint() of the store file, shown by /healthz. */
  storeId?: string;
  stats(): ProcessStats;
  /** Who may join; absent when the listener runs without TLS. */
  credentials?: CredentialStore;
  /** The built dashboard (packages/dashboard/dist/web); absent or missing: a status page at /. */
  dashboardDir?: string;
  /** Task runs and pings; absent in tests of the read-only routes. */
  tasks?: TaskService;
  /** Jobs, once the primary has started them; absent in tests of the read-only routes. */
  jobs?: () => JobService;
  alerts?: AlertsView;
  /** Removing nodes; absent in tests of the read-only routes. */
  nodes?: NodeAdmin;
  /** What joining nodes download; absent when the agent bundle was not built. */
  join?: { settings: JoinSettings; bundle: Buffer };
  /** Where nodes reach the agent listener, for the lines a join token is handed out with. */
  agentAddress?: { host: string; port: number };
  /** The scale-out mode's primaries, leader and NATS health; absent when embedded. */
  scaleOut?: () => ClusterStatus["scaleOut"];
  /** Scale-out: the other primaries' agent addresses, for join lines. */
  otherPrimaries?: () => string[];
}

/**
 * One client address holds at most `max` connections, so one client cannot
 * take all of `max_connections`: one more is answered 429 with
 * `Connection: close` at its first request (an ordinary answer, which the
 * client reads before the close), and closed after a second if it sends none.
 */
function capConnectionsPerAddress(app: FastifyInstance, max: number): void {
  const open = new AddressCounts();
  const over = new WeakSet<Socket>();
  app.server.on("connection", (socket: Socket) => {
    const address = socket.remoteAddress ?? "";
    if (open.of(address) >= max) {
      over.add(socket);
      socket.setTimeout(OVER_LIMIT_WAIT_MS, () => socket.destroy());
      return;
    }
    socket.once("close", open.add(address));
  });
  app.addHook("onRequest", async (request, reply) => {
    if (!over.has(request.raw.socket)) return;
    const address = request.raw.socket.remoteAddress ?? "";
    reply.header("connection", "close").header("retry-after", "10");
    return sendError(
      reply,
      "E_TOO_MANY_CONNECTIONS",
      `${address} has ${open.of(address)} connections open, the most one address may ([http] max_connections_per_address)`,
    );
  });
}

export function buildHttp(opts: HttpOptions): FastifyInstance {
  const { limits } = opts;
  const app = Fastify({
    logger: false,
    // Close open connections on shutdown, event streams included: a
    // dashboard left open must not hold the primary's stop.
    forceCloseConnections: true,
    bodyLimit: limits.bodyLimit,
    // A request (headers and body) must arrive whole in time: a body
    // trickled a byte at a time no longer holds a socket for minutes.
    requestTimeout: limits.requestTimeoutMs,
    connectionTimeout: limits.idleTimeoutMs,
    keepAliveTimeout: KEEP_ALIVE_MS,
    // Node checks both timeouts on this interval (default 30 s), and
    // ignores requestTimeout when headersTimeout is the larger.
    http: {
      headersTimeout: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs),
      connectionsCheckingInterval: 1_000,
    },
    ajv: { customOptions: { coerceTypes: true, allErrors: false, removeAdditional: false } },
  });
  app.server.maxConnections = limits.maxConnections;
  capConnectionsPerAddress(app, limits.maxConnectionsPerAddress);
  // Every route must have an access rule (http/access.ts): checked as each is added.
  app.addHook("onRoute", (route) => {
    for (const method of [route.method].flat()) {
      if (method === "HEAD" || method === "OPTIONS") continue;
      if (ROUTE_ACCESS[`${method} ${route.url}`] === undefined)
        throw new Error(`${method} ${route.url} has no access rule in http/access.ts`);
    }
  });

  const hosts = new HostCheck(limits.allowedHosts);
  app.addHook("onRequest", async (req, reply) => {
    // On the raw response, so streams (which hijack the reply) have them too.
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) reply.raw.setHeader(name, value);
    if (!hosts.allows(req.headers.host)) {
      const host = HostCheck.hostOf(req.headers.host ?? "");
      return sendError(
        reply.header("connection", "close"),
        "E_BAD_HOST",
        errorMessage("E_BAD_HOST", host),
      );
    }
  });

  app.setErrorHandler((err: FastifyError, _req: FastifyRequest, reply: FastifyReply) => {
    if (err.validation !== undefined) {
      // Name the field: `limit` for a bad value, `metric` for a missing one, `foo` for an unknown one.
      const first = err.validation[0];
      const params = (first?.params ?? {}) as {
        missingProperty?: string;
        additionalProperty?: string;
      };
      const extra =
        params.additionalProperty === undefined ? "" : ` (${params.additionalProperty})`;
      const path = [
        first?.instancePath.replace(/^\//, ""),
        params.missingProperty ?? params.additionalProperty,
      ]
        .filter((p) => p !== undefined && p !== "")
        .join("/");
      const field = path || (err.validationContext ?? "request");
      return sendError(
        reply,
        "E_BAD_REQUEST",
        `${field}: ${first?.message ?? "invalid"}${extra}`,
        field,
      );
    }
    // A query the store refuses is the client's; a write it cannot do (a full disk) is ours, for now.
    // Each code's status is the catalogue's (E_STORE_FULL 503, E_BAD_METRIC 400).
    if (err instanceof PiclusterError) return sendError(reply, err.code, err.message);
    // A client's mistake (too large, wrong type, bad JSON, too slow) has its own code.
    const clientCode = clientErrorCode(err);
    // Closed after the answer: otherwise Node drains the rest of a refused
    // body (up to a megabyte a client announced) before the socket is free.
    if (clientCode !== undefined)
      return reply
        .code(err.statusCode ?? 400)
        .header("connection", "close")
        .send(errorBody(clientCode, err.message));
    opts.log.error("HTTP handler failed", { err: String(err) });
    return sendError(reply, "E_INTERNAL", "internal error");
  });
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, "E_NOT_FOUND", `no route ${req.method} ${req.url.split("?")[0]}`),
  );

  app.get("/healthz", async () => ({
    ok: true,
    version: opts.version,
    ...(opts.storeId === undefined ? {} : { store: opts.storeId }),
  }));

  // The dashboard when it was built; else a small live status page.
  registerDashboard(app, opts.dashboardDir);

  /**
   * Every route's need (http/access.ts: public, read, operate, admin) is
   * checked before its body is read. With no token at all, changes are
   * refused: the API never changes anything for whoever can merely reach it.
   */
  const access = accessControl({
    token: opts.token,
    ...(opts.apiTokens === undefined ? {} : { apiTokens: opts.apiTokens }),
    readsOpen: opts.readsOpen ?? true,
    ratePerSecond: opts.tokenRate ?? 20,
    clock: opts.clock,
    log: opts.log,
  });
  app.addHook("onRequest", access.hook);
  const slots = new StreamSlots(limits.streams);

  app.get("/api/whoami", async (req) => {
    const p = req.principal;
    return {
      name: p?.name ?? "anonymous",
      role: p?.role ?? "anonymous",
      ...(p?.scopeText === undefined ? {} : { scope: p.scopeText }),
      ...(p?.refused === undefined ? {} : { refused: p.refused }),
    };
  });

  app.post("/api/stream/ticket", async (req) => ({
    ticket: access.ticket(req),
    expiresInMs: TICKET_MS,
  }));

  registerJoinRoutes(app, opts);

  if (opts.tasks !== undefined)
    registerTaskRoutes(app, {
      tasks: opts.tasks,
      errorBody,
      events: opts.events,
      slots,
      clock: opts.clock,
      log: opts.log,
      findNode: (idOrName) => findNode(opts.registry, idOrName)?.id,
      nodeOf: (idOrName) => findNode(opts.registry, idOrName),
      nodesFor: (on) => nodesFor(opts.registry, on),
    });

  if (opts.jobs !== undefined)
    registerJobRoutes(app, { jobs: opts.jobs, nodesFor: (on) => nodesFor(opts.registry, on) });

  if (opts.alerts !== undefined) registerAlertRoutes(app, { alerts: opts.alerts });

  if (opts.nodes !== undefined) registerNodeAdminRoutes(app, { nodes: opts.nodes });

  if (opts.apiTokens !== undefined) registerTokenRoutes(app, opts.apiTokens, opts.audit);

  registerNodeRoutes(app, opts);
  registerCheckRoutes(app, {
    registry: opts.registry,
    clock: opts.clock,
    ...(opts.statusChecks === undefined ? {} : { statusChecks: opts.statusChecks }),
  });
  registerStreamRoute(app, { ...opts, slots });
  registerMetricsRoute(app, {
    registry: opts.registry,
    version: opts.version,
    stats: () => ({ ...opts.stats(), httpStreams: slots.open }),
    alertStates: () => opts.alerts?.states() ?? [],
  });

  return app;
}

/** The nodes a selector picks; undefined when it does not parse (the service then says why). */
function nodesFor(registry: Registry, on: string): NodeRecord[] | undefined {
  try {
    return selectNodes(registry.list(), parseSelector(on)).nodes;
  } catch (err) {
    if (err instanceof SelectorError) return undefined;
    throw err;
  }
}

export type { ClusterEvent };
