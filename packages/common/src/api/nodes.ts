/**
 * The HTTP API's answers about nodes and the cluster, declared once: TypeBox
 * schemas the primary's routes declare as their response schemas (fastify
 * serialises by them), and the types inferred from them, which the CLI and
 * the dashboard import (types only: `@picluster/common/shared`).
 *
 * A field a route returns but a schema does not list is dropped on the way
 * out; the contract test (primary/test/http-contract.test.ts) compares each
 * answer with what the route built, so such a field fails it.
 */
import Type, { type Static, type TSchema } from "typebox";
import { METRIC_NAMES } from "../metrics.js";
import { NODE_STATES } from "../nodes.js";
import { Details, Throttling, Vitals } from "../protocol/messages.js";

/**
 * `T` or null, as a type list (`["object", "null"]`) rather than `anyOf`:
 * fast-json-stringify then serialises by a type check instead of trying
 * each branch with a validator, and TypeBox checks it all the same.
 */
function Nullable<T extends TSchema>(schema: T) {
  const { type } = schema as unknown as { type: string };
  return Type.Unsafe<Static<T> | null>({ ...schema, type: [type, "null"] });
}

const Ms = Type.Number();
const Count = Type.Integer({ minimum: 0 });

/** A string from `values` (typed as their union; `Type.Union` of a mapped list loses it). */
function OneOf<const T extends readonly string[]>(values: T) {
  return Type.Unsafe<T[number]>({ type: "string", enum: [...values] });
}

export const NodeStateSchema = OneOf(NODE_STATES);

/** Why the store cannot write. */
export const STORE_FAILURE_CAUSES = [
  "disk_full",
  "read_only",
  "io_error",
  "busy",
  "other",
] as const;
export type StoreFailureCause = (typeof STORE_FAILURE_CAUSES)[number];

/** A node as `GET /api/nodes` and `/api/nodes/:id` show it. */
export const NodeViewSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  state: NodeStateSchema,
  stateSince: Ms,
  stateReason: Type.String(),
  labels: Type.Record(Type.String(), Type.String()),
  /** `address:port` the node connected from. */
  address: Type.String(),
  /** A tutorial (legacy protocol) node. */
  legacy: Type.Boolean(),
  agentVersion: Type.String(),
  firstSeen: Ms,
  /** When the primary last heard from the node (any message). */
  lastSeen: Ms,
  vitalsAt: Nullable(Ms),
  vitals: Nullable(Vitals),
  /** Samples the agent reports it dropped from a full outbox. */
  dropped: Count,
});
export type NodeView = Static<typeof NodeViewSchema>;

/** `GET /api/nodes/:id`: the view and the node's details (null until they arrive). */
export const NodeDetailSchema = Type.Object({
  ...NodeViewSchema.properties,
  details: Nullable(Details),
});
export type NodeDetail = Static<typeof NodeDetailSchema>;

/** The latest stored figures of a node, by metric name (metrics.ts); null where it reports none. */
export const FiguresSchema = Type.Object(
  Object.fromEntries(METRIC_NAMES.map((m) => [m, Nullable(Type.Number())])) as Record<
    (typeof METRIC_NAMES)[number],
    ReturnType<typeof Nullable<ReturnType<typeof Type.Number>>>
  >,
);

/** A node as `?view=summary` sends it: the figures a tile or a row shows, not the whole vitals. */
export const NodeSummarySchema = Type.Object({
  ...NodeViewSchema.properties,
  vitals: Type.Null(),
  figures: Nullable(FiguresSchema),
  uptimeS: Nullable(Count),
  throttling: Nullable(Throttling),
  /** From the node's details: null until they arrive. */
  cores: Nullable(Count),
  memoryBytes: Nullable(Count),
});
export type NodeSummary = Static<typeof NodeSummarySchema>;

/** Names in `?on=` that matched no node (present when `on` was given). */
const UnknownNames = Type.Optional(Type.Array(Type.String()));

export const NodeListSchema = Type.Object({
  nodes: Type.Array(NodeViewSchema),
  unknownNames: UnknownNames,
});
export const NodeSummaryListSchema = Type.Object({
  nodes: Type.Array(NodeSummarySchema),
  unknownNames: UnknownNames,
});
export type NodeList = Static<typeof NodeListSchema>;
export type NodeSummaryList = Static<typeof NodeSummaryListSchema>;

/** Whether the primary's store writes (a full disk stops it). */
export const StoreHealthSchema = Type.Object({
  ok: Type.Boolean(),
  since: Type.Optional(Ms),
  cause: Type.Optional(OneOf(STORE_FAILURE_CAUSES)),
  code: Type.Optional(Type.String()),
  /** SQLite's words for the first failure. */
  error: Type.Optional(Type.String()),
  /** Events waiting for the next commit, and those dropped because too many waited. */
  eventsWaiting: Type.Optional(Count),
  eventsDropped: Type.Optional(Count),
});

/** `GET /api/cluster`. */
/** One primary of the scale-out mode, as it announces itself to the others. */
export const PrimaryPresenceSchema = Type.Object({
  name: Type.String(),
  /** Its dashboard and API. */
  httpUrl: Type.String(),
  /** Where agents reach it (`host:port`). */
  agentAddress: Type.String(),
  version: Type.String(),
  startedAt: Ms,
  /** Agents connected to it now. */
  sessions: Count,
  leader: Type.Boolean(),
  /** When it said so (its clock). */
  at: Ms,
});
export type PrimaryPresence = Static<typeof PrimaryPresenceSchema>;

export const ClusterSchema = Type.Object({
  nodes: Count,
  states: Type.Object(
    Object.fromEntries(NODE_STATES.map((s) => [s, Count])) as Record<
      (typeof NODE_STATES)[number],
      typeof Count
    >,
  ),
  /** Each machine once: a tutorial node on an agent's machine adds nothing. */
  totals: Type.Object({ cores: Count, memoryBytes: Count }),
  /** Tutorial nodes left out of the totals as the same machine as an agent node. */
  sameMachine: Count,
  unknownNames: UnknownNames,
  version: Type.String(),
  now: Ms,
  primary: Type.Object({ store: StoreHealthSchema }),
  /** The scale-out mode (`[cluster] nats`): the primaries, the leader, NATS health. Absent when embedded. */
  scaleOut: Type.Optional(
    Type.Object({
      self: Type.String(),
      leader: Nullable(Type.String()),
      primaries: Type.Array(PrimaryPresenceSchema),
      nats: Type.Object({
        connected: Type.Boolean(),
        server: Nullable(Type.String()),
        rttMs: Nullable(Type.Number()),
        reconnects: Count,
      }),
      /** This primary's replica of the job log (`picluster-jobs`), once it has joined. */
      jobLog: Type.Optional(
        Type.Object({
          /** The last stream sequence applied. */
          seq: Count,
          /** The newest snapshot this primary took or started from (0: none yet). */
          snapshotSeq: Count,
          /** The snapshot its replica was last loaded from (0: replayed from the start). */
          loadedAt: Count,
          /** Times it found a hole in the log and reloaded from a snapshot. */
          reloads: Count,
        }),
      ),
    }),
  ),
});
export type ClusterStatus = Static<typeof ClusterSchema>;

export const SeriesPointSchema = Type.Object({
  ts: Ms,
  avg: Nullable(Type.Number()),
  min: Nullable(Type.Number()),
  max: Nullable(Type.Number()),
});
export type SeriesPoint = Static<typeof SeriesPointSchema>;

/** `GET /api/nodes/:id/vitals?metric=`: about one point per `stepMs`. */
export const SeriesSchema = Type.Object({
  node: Type.String(),
  from: Ms,
  to: Ms,
  metric: Type.String(),
  /** Which table answered: raw samples or a rollup. */
  resolution: Type.Union([Type.Literal("raw"), Type.Literal("1m"), Type.Literal("1h")]),
  stepMs: Ms,
  points: Type.Array(SeriesPointSchema),
});
export type SeriesView = Static<typeof SeriesSchema>;

/**
 * `GET /api/nodes/:id/custom`: the node's own series (`[metrics.NAME]`),
 * each with its current value (from the last vitals sample, null when it
 * sent none) and when that sample was taken; series stored in the last
 * day but no longer sent are listed with a null value.
 */
export const CustomSeriesListSchema = Type.Object({
  node: Type.String(),
  series: Type.Array(
    Type.Object({
      series: Type.String(),
      value: Nullable(Type.Number()),
      at: Nullable(Ms),
    }),
  ),
});
export type CustomSeriesList = Static<typeof CustomSeriesListSchema>;

/**
 * `GET /api/nodes/:id/containers`: the node's containers as its last
 * vitals sample had them (`at`, null before any), from its Docker or
 * Podman API. Figures are absent for a container not running.
 */
export const ContainerListSchema = Type.Object({
  node: Type.String(),
  at: Nullable(Ms),
  containers: Type.Array(
    Type.Object({
      id: Type.String(),
      name: Type.String(),
      image: Type.String(),
      state: Type.String(),
      health: Type.Optional(Type.String()),
      restarts: Type.Number(),
      recentRestarts: Type.Optional(Type.Number()),
      exitCode: Type.Optional(Type.Number()),
      cpuPct: Type.Optional(Type.Number()),
      memBytes: Type.Optional(Type.Number()),
      memLimitBytes: Type.Optional(Type.Number()),
      rxBps: Type.Optional(Type.Number()),
      txBps: Type.Optional(Type.Number()),
    }),
  ),
});
export type ContainerList = Static<typeof ContainerListSchema>;

export const StoredEventSchema = Type.Object({
  id: Count,
  ts: Ms,
  kind: Type.String(),
  nodeId: Nullable(Type.String()),
  /** The event's own fields (see docs/protocol.md, events). */
  data: Type.Record(Type.String(), Type.Unknown()),
});
export type StoredEvent = Static<typeof StoredEventSchema>;

export const EventListSchema = Type.Object({ events: Type.Array(StoredEventSchema) });

/** Every error answer: a stable code (docs/errors.md), a message, the field when one was wrong. */
export const ErrorBodySchema = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    field: Type.Optional(Type.String()),
  }),
});
export type ErrorBody = Static<typeof ErrorBodySchema>;

/** `DELETE /api/nodes/:name`: what removing a node did. */
export const RemovedNodeSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  keepHistory: Type.Boolean(),
  /** Credential identities revoked (none for a tutorial node or with TLS off). */
  revoked: Type.Array(Type.String()),
  /** Connections cut. */
  sessionsCut: Count,
  /** Alerts that were firing and resolved without a message. */
  alertsResolved: Count,
  /** Sample rows (raw and rollups) and events deleted; 0 with keepHistory. */
  vitalsRows: Count,
  events: Count,
});
export type RemovedNode = Static<typeof RemovedNodeSchema>;
