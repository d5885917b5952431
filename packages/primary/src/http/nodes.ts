/**
 * The read routes of the cluster: totals, the nodes (full or summary), one
 * node, a node's stored series and the events. Open to whoever can reach
 * the API (see docs/security.md); nothing here changes state.
 */
import {
  type Clock,
  type ClusterStatus,
  type ContainerList,
  type CustomSeriesList,
  errorMessage,
  NODE_STATES,
  type NodeDetail,
  type NodeList,
  type NodeSummary,
  type NodeSummaryList,
  type NodeView,
  parseSelector,
  SelectorError,
  type SeriesView,
  selectNodes,
} from "@picluster/common";
import {
  ClusterSchema,
  ContainerListSchema,
  CustomSeriesListSchema,
  ErrorBodySchema,
  EventListSchema,
  NodeDetailSchema,
  NodeListSchema,
  NodeSummaryListSchema,
  SeriesSchema,
} from "@picluster/common/schema";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import Type from "typebox";
import { clusterTotals } from "../cluster-totals.js";
import type { NodeState } from "../events.js";
import { lookupNode, type NodeRecord, type Registry } from "../registry.js";
import { METRIC_NAMES, METRICS } from "../store/metrics.js";
import type { Store } from "../store/store.js";
import { inScope } from "./access.js";
import { sendError } from "./guard.js";

const NodeParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });
const VitalsQuery = Type.Object(
  {
    metric: Type.Union([
      ...METRIC_NAMES.map((m) => Type.Literal(m)),
      // A node's own series: `custom.` and its key (`name` or `name{label="v",…}`).
      Type.String({ pattern: "^custom\\.[A-Za-z_:][A-Za-z0-9_:]*(\\{.*\\})?$", maxLength: 263 }),
      // A container's figure: `container.cpu{name="web"}` (cpu, mem, rx, tx).
      Type.String({ pattern: '^container\\.(cpu|mem|rx|tx)\\{name=".*"\\}$', maxLength: 300 }),
    ]),
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
export function nodeView(n: NodeRecord): NodeView {
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
export function nodeSummary(n: NodeRecord): NodeSummary {
  const { vitals, ...rest } = nodeView(n);
  return {
    ...rest,
    vitals: null,
    figures:
      vitals === null
        ? null
        : (Object.fromEntries(
            METRICS.map((m) => [m.name, m.from(vitals) ?? null]),
          ) as NodeSummary["figures"]),
    uptimeS: vitals?.uptimeS ?? null,
    // For the dashboard's table and totals: power flags, cores and memory.
    throttling: vitals?.throttling ?? null,
    cores: n.details?.cpu.cores ?? null,
    memoryBytes: n.details?.memory.totalBytes ?? null,
  };
}

export interface NodeRoutesDeps {
  registry: Registry;
  store: Store;
  clock: Clock;
  version: string;
  /** The scale-out mode's primaries, leader and NATS health; absent when embedded. */
  scaleOut?: () => ClusterStatus["scaleOut"];
}

const SUMMARY_LIST = NodeSummaryListSchema as unknown as Record<string, unknown>;

export function registerNodeRoutes(app: FastifyInstance, opts: NodeRoutesDeps): void {
  /** The nodes a `?on=` selector picks (every node without one) within the token's scope, or the 400 it earns. */
  const pick = (on: string | undefined, req: FastifyRequest) => {
    const all = opts.registry.list().filter((n) => inScope(req, n));
    if (on === undefined) return { nodes: all, unknownNames: [] as string[] };
    try {
      return selectNodes(all, parseSelector(on));
    } catch (err) {
      if (err instanceof SelectorError) return { error: err.message };
      throw err;
    }
  };
  /** The node a route names, by id or name; outside a scoped token's nodes, as if there were none. */
  const visibleNode = (req: FastifyRequest<{ Params: { id: string } }>) => {
    const node = findNode(opts.registry, req.params.id);
    return node !== undefined && inScope(req, node) ? node : undefined;
  };
  const noSuchNode = (reply: FastifyReply, id: string) =>
    sendError(reply, "E_NO_SUCH_NODE", errorMessage("E_NO_SUCH_NODE", id));
  const OnQuery = Type.Optional(Type.String({ maxLength: 4096 }));

  app.get<{ Querystring: { on?: string } }>(
    "/api/cluster",
    {
      schema: {
        querystring: Type.Object({ on: OnQuery }, { additionalProperties: false }),
        response: { 200: ClusterSchema, "4xx": ErrorBodySchema },
      },
    },
    async (req, reply): Promise<ClusterStatus | FastifyReply> => {
      const picked = pick(req.query.on, req);
      if ("error" in picked) return sendError(reply, "E_BAD_REQUEST", `on: ${picked.error}`, "on");
      const counts = Object.fromEntries(NODE_STATES.map((s) => [s, 0])) as Record<
        NodeState,
        number
      >;
      for (const n of picked.nodes) counts[n.state] += 1;
      const scaleOut = opts.scaleOut?.();
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
        ...(scaleOut === undefined ? {} : { scaleOut }),
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
        // The full list by this schema; the summary by its own (below), as
        // one answer cannot be told from the other without trying both.
        response: { 200: NodeListSchema, "4xx": ErrorBodySchema },
      },
    },
    async (req, reply) => {
      const picked = pick(req.query.on, req);
      if ("error" in picked) return sendError(reply, "E_BAD_REQUEST", `on: ${picked.error}`, "on");
      const nodes = picked.nodes.sort((a, b) => a.name.localeCompare(b.name));
      const unknown = req.query.on === undefined ? {} : { unknownNames: picked.unknownNames };
      // `summary`: the figures a dashboard tile shows instead of the whole
      // vitals (a tenth of the bytes for a thousand nodes).
      if (req.query.view === "summary") {
        const body: NodeSummaryList = { nodes: nodes.map(nodeSummary), ...unknown };
        return reply
          .type("application/json; charset=utf-8")
          .serializer((payload) =>
            reply.serializeInput(payload as Record<string, unknown>, SUMMARY_LIST),
          )
          .send(body);
      }
      const body: NodeList = { nodes: nodes.map(nodeView), ...unknown };
      return body;
    },
  );

  app.get<{ Params: { id: string } }>(
    "/api/nodes/:id",
    {
      schema: { params: NodeParams, response: { 200: NodeDetailSchema, "4xx": ErrorBodySchema } },
    },
    async (req, reply): Promise<NodeDetail | FastifyReply> => {
      const node = visibleNode(req);
      if (node === undefined) return noSuchNode(reply, req.params.id);
      return { ...nodeView(node), details: node.details ?? null };
    },
  );

  app.get<{
    Params: { id: string };
    Querystring: { metric: string; from?: number; to?: number; step?: number };
  }>(
    "/api/nodes/:id/vitals",
    {
      schema: {
        params: NodeParams,
        querystring: VitalsQuery,
        response: { 200: SeriesSchema, "4xx": ErrorBodySchema },
      },
    },
    async (req, reply): Promise<SeriesView | FastifyReply> => {
      const node = visibleNode(req);
      if (node === undefined) return noSuchNode(reply, req.params.id);
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

  app.get<{ Params: { id: string } }>(
    "/api/nodes/:id/containers",
    {
      schema: {
        params: NodeParams,
        response: { 200: ContainerListSchema, "4xx": ErrorBodySchema },
      },
    },
    async (req, reply): Promise<ContainerList | FastifyReply> => {
      const node = visibleNode(req);
      if (node === undefined) return noSuchNode(reply, req.params.id);
      return {
        node: node.id,
        at: node.vitals === undefined ? null : (node.vitalsAt ?? null),
        containers: node.vitals?.containers ?? [],
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    "/api/nodes/:id/custom",
    {
      schema: {
        params: NodeParams,
        response: { 200: CustomSeriesListSchema, "4xx": ErrorBodySchema },
      },
    },
    async (req, reply): Promise<CustomSeriesList | FastifyReply> => {
      const node = visibleNode(req);
      if (node === undefined) return noSuchNode(reply, req.params.id);
      const current = new Map((node.vitals?.custom ?? []).map((c) => [c.series, c.value]));
      const stored = opts.store.customSeries(node.id, opts.clock.now() - 86_400_000);
      const names = [...new Set([...current.keys(), ...stored])].sort();
      return {
        node: node.id,
        series: names.map((series) => {
          const value = current.get(series);
          return value === undefined
            ? { series, value: null, at: null }
            : { series, value, at: node.vitalsAt ?? null };
        }),
      };
    },
  );

  app.get<{ Querystring: { node?: string; kind?: string; since?: number; limit?: number } }>(
    "/api/events",
    { schema: { querystring: EventsQuery, response: { 200: EventListSchema } } },
    async (req) => {
      const node =
        req.query.node === undefined
          ? undefined
          : (findNode(opts.registry, req.query.node)?.id ?? req.query.node);
      const limit = req.query.limit ?? 100;
      const query = { node, kind: req.query.kind, since: req.query.since };
      if (req.principal?.scope === undefined)
        return { events: opts.store.events({ ...query, limit }) };
      // A scoped token sees its nodes' events only (and none about the cluster as a whole).
      const visible = (id: string | null | undefined) => {
        const n = id === null || id === undefined ? undefined : opts.registry.get(id);
        return n !== undefined && inScope(req, n);
      };
      return {
        events: opts.store
          .events({ ...query, limit: Math.min(10_000, limit * 10) })
          .filter((e) => visible(e.nodeId))
          .slice(0, limit),
      };
    },
  );
}

/** A node by id, or by name (names are what people type). */
export function findNode(registry: Registry, idOrName: string): NodeRecord | undefined {
  return lookupNode(registry, idOrName);
}
