/**
 * The HTTP face of the primary: the JSON API, the live event stream,
 * Prometheus metrics and health. Readers only: routes read the registry,
 * the store and the event bus, and never reach back into sessions.
 */

import {
  AuthError,
  type Clock,
  errorMessage,
  type Logger,
  NODE_STATES,
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
import Type from "typebox";
import { clusterTotals } from "../cluster-totals.js";
import { type CredentialStore, DEFAULT_TOKEN_TTL_MS } from "../credentials.js";
import type { ClusterEvent, EventBus, NodeState } from "../events.js";
import { lookupNode, type NodeRecord, type Registry } from "../registry.js";
import { METRIC_NAMES, METRICS } from "../store/metrics.js";
import type { Store } from "../store/store.js";
import type { TaskService } from "../tasks/service.js";
import { type AlertsView, registerAlertRoutes } from "./alerts.js";
import { registerDashboard } from "./dashboard.js";
import {
  clientErrorCode,
  errorBody,
  HostCheck,
  SECURITY_HEADERS,
  sendError,
  tokenGuard,
} from "./guard.js";
import { installScript, type JoinSettings, joinCommand, manualJoinCommand } from "./join.js";
import { type ProcessStats, renderMetrics } from "./metrics.js";
import { type NodeAdmin, registerNodeAdminRoutes } from "./nodes-admin.js";
import { STATUS_PAGE, STATUS_PAGE_CSP } from "./status-page.js";
import { openStream, type StreamLimits, StreamSlots } from "./stream.js";
import { registerTaskRoutes } from "./tasks.js";

/** What the HTTP server allows a client: see the `[http]` keys of the same names. */
export interface HttpLimits {
  /** Host names answered besides loopback names, addresses and this machine's names. */
  allowedHosts: readonly string[];
  bodyLimit: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  maxConnections: number;
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
  streams: { maxStreams: 128, maxPerAddress: 16, resumeBytes: 256 * 1024, stallMs: 5_000 },
};

/** Idle keep-alive connections between two requests are closed after this. */
const KEEP_ALIVE_MS = 10_000;

export interface HttpOptions {
  registry: Registry;
  store: Store;
  events: EventBus;
  clock: Clock;
  log: Logger;
  version: string;
  /** Bearer token for routes that change state; empty means such routes answer 403. */
  token: string;
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
  alerts?: AlertsView;
  /** Removing nodes; absent in tests of the read-only routes. */
  nodes?: NodeAdmin;
  /** What joining nodes download; absent when the agent bundle was not built. */
  join?: { settings: JoinSettings; bundle: Buffer };
  /** Where nodes reach the agent listener, for the lines a join token is handed out with. */
  agentAddress?: { host: string; port: number };
}

const NodeParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });
const VitalsQuery = Type.Object(
  {
    metric: Type.Union(METRIC_NAMES.map((m) => Type.Literal(m))),
    from: Type.Optional(Type.Integer({ minimum: 0 })),
    to: Type.Optional(Type.Integer({ minimum: 0 })),
    step: Type.Optional(Type.Integer({ minimum: 1_000 })),
  },
  { additionalProperties: false },
);
const EventsQuery = Type.Object(
  {
    node: Type.Optional(Type.String({ maxLength: 128 })),
    kind: Type.Optional(Type.String({ maxLength: 64 })),
    since: Type.Optional(Type.Integer({ minimum: 0 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000 })),
  },
  { additionalProperties: false },
);

/** A node as the API shows it: everything but internals. */
export function nodeView(n: NodeRecord) {
  return {
    id: n.id,
    name: n.name,
    state: n.state,
    stateSince: n.stateSince,
    stateReason: n.stateReason,
    labels: n.labels,
    address: n.address,
    legacy: n.legacy,
    agentVersion: n.agentVersion,
    firstSeen: n.firstSeen,
    lastSeen: n.lastSeen,
    vitalsAt: n.vitalsAt ?? null,
    vitals: n.vitals ?? null,
    dropped: n.dropped,
  };
}

/** A node with its latest figures (the stored metrics) instead of its raw vitals. */
export function nodeSummary(n: NodeRecord) {
  const { vitals, ...rest } = nodeView(n);
  return {
    ...rest,
    vitals: null,
    figures:
      vitals === null
        ? null
        : Object.fromEntries(METRICS.map((m) => [m.name, m.from(vitals) ?? null])),
    uptimeS: vitals?.uptimeS ?? null,
    // For the dashboard's table and totals: power flags, cores and memory.
    throttling: vitals?.throttling ?? null,
    cores: n.details?.cpu.cores ?? null,
    memoryBytes: n.details?.memory.totalBytes ?? null,
  };
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
  if (!registerDashboard(app, opts.dashboardDir)) {
    app.get("/", async (_req, reply) => {
      reply
        .header("content-type", "text/html; charset=utf-8")
        .header("cache-control", "no-cache")
        .header("content-security-policy", STATUS_PAGE_CSP);
      return STATUS_PAGE;
    });
  }

  /**
   * Routes that change state, or show what nodes print, need
   * `Authorization: Bearer <[http] token>`, checked before the body is read.
   * With no token configured they are refused: the API never changes
   * anything for whoever can merely reach it.
   */
  const { guard: requireToken, valid: hasToken } = tokenGuard(opts.token);
  const slots = new StreamSlots(limits.streams);

  // What joining nodes download: the install script and the agent bundle.
  const joinFiles: Array<
    [string, string, (j: NonNullable<HttpOptions["join"]>) => string | Buffer]
  > = [
    ["/join.sh", "text/x-shellscript; charset=utf-8", (j) => installScript(j.settings)],
    ["/join/agent.cjs", "text/javascript; charset=utf-8", (j) => j.bundle],
  ];
  for (const [path, type, body] of joinFiles) {
    app.get(path, async (_req, reply) => {
      if (opts.join === undefined) {
        return sendError(reply, "E_NO_BUNDLE", errorMessage("E_NO_BUNDLE"));
      }
      reply.header("content-type", type).header("cache-control", "no-store");
      return body(opts.join);
    });
  }

  const NameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 63 }) });
  const authFailure = (err: unknown, reply: FastifyReply) => {
    if (!(err instanceof AuthError)) throw err;
    return sendError(reply, err.code, err.message);
  };

  app.post<{ Params: { name: string }; Querystring: { ttl?: number } }>(
    "/api/nodes/:name/join-token",
    {
      schema: {
        params: NameParams,
        querystring: Type.Object(
          { ttl: Type.Optional(Type.Integer({ minimum: 60_000, maximum: 30 * 86_400_000 })) },
          { additionalProperties: false },
        ),
      },
      onRequest: requireToken,
    },
    async (req, reply) => {
      if (opts.credentials === undefined)
        return sendError(
          reply,
          "E_NO_TLS",
          "this primary runs without TLS: nodes join without tokens",
        );
      try {
        const { name } = req.params;
        const validForMs = req.query.ttl ?? DEFAULT_TOKEN_TTL_MS;
        const token = opts.credentials.addToken(name, validForMs);
        // The lines `picluster node add` prints, for a client (the dashboard) that cannot build them.
        const at = opts.agentAddress;
        return reply.code(201).send({
          name,
          token,
          validForMs,
          command: opts.join === undefined ? null : joinCommand(opts.join.settings, token, name),
          manual: at === undefined ? null : manualJoinCommand(at.host, at.port, token),
        });
      } catch (err) {
        return authFailure(err, reply);
      }
    },
  );

  app.post<{ Params: { name: string } }>(
    "/api/nodes/:name/revoke",
    { schema: { params: NameParams }, onRequest: requireToken },
    async (req, reply) => {
      if (opts.credentials === undefined)
        return sendError(
          reply,
          "E_NO_TLS",
          "this primary runs without TLS: there is nothing to revoke",
        );
      try {
        return { name: req.params.name, revoked: opts.credentials.revoke(req.params.name) };
      } catch (err) {
        return authFailure(err, reply);
      }
    },
  );

  if (opts.tasks !== undefined)
    registerTaskRoutes(app, {
      tasks: opts.tasks,
      requireToken,
      hasToken,
      errorBody,
      events: opts.events,
      slots,
      clock: opts.clock,
      log: opts.log,
      findNode: (idOrName) => findNode(opts.registry, idOrName)?.id,
    });

  if (opts.alerts !== undefined) registerAlertRoutes(app, { alerts: opts.alerts, requireToken });

  if (opts.nodes !== undefined) registerNodeAdminRoutes(app, { nodes: opts.nodes, requireToken });

  /** The nodes a `?on=` selector picks (every node without one), or the 400 it earns. */
  const pick = (on: string | undefined) => {
    const all = opts.registry.list();
    if (on === undefined) return { nodes: all, unknownNames: [] as string[] };
    try {
      return selectNodes(all, parseSelector(on));
    } catch (err) {
      if (err instanceof SelectorError) return { error: err.message };
      throw err;
    }
  };
  const OnQuery = Type.Optional(Type.String({ maxLength: 4096 }));

  app.get<{ Querystring: { on?: string } }>(
    "/api/cluster",
    { schema: { querystring: Type.Object({ on: OnQuery }, { additionalProperties: false }) } },
    async (req, reply) => {
      const picked = pick(req.query.on);
      if ("error" in picked) return sendError(reply, "E_BAD_REQUEST", `on: ${picked.error}`, "on");
      const counts = Object.fromEntries(NODE_STATES.map((s) => [s, 0])) as Record<
        NodeState,
        number
      >;
      for (const n of picked.nodes) counts[n.state] += 1;
      return {
        nodes: picked.nodes.length,
        states: counts,
        // Each machine once: a tutorial node beside an agent adds nothing
        // (`sameMachine` says how many were left out for that).
        ...clusterTotals(picked.nodes),
        ...(req.query.on === undefined ? {} : { unknownNames: picked.unknownNames }),
        version: opts.version,
        now: opts.clock.now(),
        // Whether what happens is being stored: a full disk stops it, not the rest.
        primary: { store: opts.store.health },
      };
    },
  );

  app.get<{ Querystring: { view?: "full" | "summary"; on?: string } }>(
    "/api/nodes",
    {
      schema: {
        querystring: Type.Object(
          {
            view: Type.Optional(Type.Union([Type.Literal("full"), Type.Literal("summary")])),
            on: OnQuery,
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      const picked = pick(req.query.on);
      if ("error" in picked) return sendError(reply, "E_BAD_REQUEST", `on: ${picked.error}`, "on");
      const nodes = picked.nodes.sort((a, b) => a.name.localeCompare(b.name));
      const unknown = req.query.on === undefined ? {} : { unknownNames: picked.unknownNames };
      // `summary`: the figures a dashboard tile shows instead of the whole
      // vitals (a tenth of the bytes for a thousand nodes).
      if (req.query.view === "summary") return { nodes: nodes.map(nodeSummary), ...unknown };
      return { nodes: nodes.map(nodeView), ...unknown };
    },
  );

  app.get<{ Params: { id: string } }>(
    "/api/nodes/:id",
    { schema: { params: NodeParams } },
    async (req, reply) => {
      const node = findNode(opts.registry, req.params.id);
      if (node === undefined)
        return sendError(reply, "E_NO_SUCH_NODE", errorMessage("E_NO_SUCH_NODE", req.params.id));
      return { ...nodeView(node), details: node.details ?? null };
    },
  );

  app.get<{
    Params: { id: string };
    Querystring: { metric: string; from?: number; to?: number; step?: number };
  }>(
    "/api/nodes/:id/vitals",
    { schema: { params: NodeParams, querystring: VitalsQuery } },
    async (req, reply) => {
      const node = findNode(opts.registry, req.params.id);
      if (node === undefined)
        return sendError(reply, "E_NO_SUCH_NODE", errorMessage("E_NO_SUCH_NODE", req.params.id));
      const to = req.query.to ?? opts.clock.now();
      const from = req.query.from ?? to - 3_600_000;
      if (from >= to) return sendError(reply, "E_BAD_REQUEST", "from: must be before to", "from");
      const step = req.query.step ?? Math.max(1_000, Math.ceil((to - from) / 1_000));
      return {
        node: node.id,
        from,
        to,
        ...opts.store.series(node.id, req.query.metric, from, to, step),
      };
    },
  );

  app.get<{ Querystring: { node?: string; kind?: string; since?: number; limit?: number } }>(
    "/api/events",
    { schema: { querystring: EventsQuery } },
    async (req) => {
      const node =
        req.query.node === undefined
          ? undefined
          : (findNode(opts.registry, req.query.node)?.id ?? req.query.node);
      return {
        events: opts.store.events({
          node,
          kind: req.query.kind,
          since: req.query.since,
          limit: req.query.limit ?? 100,
        }),
      };
    },
  );

  app.get("/api/stream", (req, reply) => {
    openStream(req, reply, {
      events: opts.events,
      registry: opts.registry,
      store: opts.store,
      clock: opts.clock,
      log: opts.log,
      slots,
    });
  });

  app.get("/metrics", async (_req, reply) => {
    reply.header("content-type", "text/plain; version=0.0.4; charset=utf-8");
    return renderMetrics(
      opts.registry.list(),
      { ...opts.stats(), httpStreams: slots.open },
      opts.version,
      opts.alerts?.states() ?? [],
    );
  });

  return app;
}

/** A node by id, or by name (names are what people type). */
export function findNode(registry: Registry, idOrName: string): NodeRecord | undefined {
  return lookupNode(registry, idOrName);
}

export type { ClusterEvent };
