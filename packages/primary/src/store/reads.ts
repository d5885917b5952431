/**
 * What the API reads from the store: the nodes as they were, a metric's
 * series at the resolution a span needs, and the events. Statements are
 * prepared once, when the store opens (a series' SQL once per metric and
 * table, on first use).
 */
import type { Clock, StoredEvent } from "@picluster/common";
import type Database from "better-sqlite3";
import type { NodeRecord } from "../registry.js";
import { StoreError } from "./failure.js";
import { isMetric, METRIC_NAMES } from "./metrics.js";
import { nodeFromRow, type Row } from "./node-rows.js";

export type { SeriesPoint, StoredEvent } from "@picluster/common";

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
export const MAX_POINTS = 1_000;
/** A metric name for one of a node's own series: `custom.` and the series' key. */
export const CUSTOM_PREFIX = "custom.";
/** A container's figure: `container.cpu{name="web"}` (cpu, mem, rx, tx). */
export const CONTAINER_PREFIX = "container.";

/** How long each resolution is kept (`[store]` retention keys). */
export interface Retention {
  rawMs: number;
  minuteMs: number;
  hourMs: number;
}

export interface Series {
  metric: string;
  /** Which table answered: raw samples or a rollup. */
  resolution: "raw" | "1m" | "1h";
  stepMs: number;
  points: import("@picluster/common").SeriesPoint[];
}

export interface EventQuery {
  node?: string | undefined;
  kind?: string | undefined;
  since?: number | undefined;
  /** Events with an id greater than this (stream resume). */
  afterId?: number | undefined;
  limit: number;
}

export class StoreReads {
  private readonly st;
  private readonly seriesSql = new Map<string, Database.Statement>();

  constructor(
    private readonly db: Database.Database,
    private readonly clock: Clock,
    private readonly retention: Retention,
  ) {
    this.st = {
      // The primary key (node_id, seq) answers it without a scan.
      lastSeq: db.prepare("SELECT max(seq) AS seq FROM vitals_raw WHERE node_id = ?"),
      nodes: db.prepare("SELECT * FROM nodes"),
      events: db.prepare(
        `SELECT id, ts, kind, node_id, data FROM events
         WHERE (@node IS NULL OR node_id = @node) AND (@kind IS NULL OR kind = @kind)
           AND ts >= @since AND id > @afterId
         ORDER BY id DESC LIMIT @limit`,
      ),
      // Containers' figures share the tables; their keys start with "container.".
      customSeries: db.prepare(
        `SELECT series FROM custom_raw WHERE node_id = @node AND ts >= @since AND series NOT LIKE 'container.%'
         UNION SELECT series FROM custom_1m WHERE node_id = @node AND bucket >= @since
           AND series NOT LIKE 'container.%' ORDER BY series`,
      ),
      eventsAfter: db.prepare(
        "SELECT id, ts, kind, node_id, data FROM events WHERE id > ? ORDER BY id ASC LIMIT ?",
      ),
    };
  }

  /** A series statement, prepared on first use for its metric and table. */
  private seriesStatement(metric: string, resolution: string, sql: string): Database.Statement {
    const key = `${metric}/${resolution}`;
    let st = this.seriesSql.get(key);
    if (st === undefined) {
      st = this.db.prepare(sql);
      this.seriesSql.set(key, st);
    }
    return st;
  }

  /**
   * The highest seq stored for a node, from its raw samples: a node removed
   * with its history kept that joins again continues after it, so its new
   * samples are not taken for replays of the old ones.
   */
  lastStoredSeq(nodeId: string): number {
    const row = this.st.lastSeq.get(nodeId) as { seq: number | null };
    return row.seq ?? 0;
  }

  loadNodes(): NodeRecord[] {
    return (this.st.nodes.all() as Row[]).map(nodeFromRow);
  }

  /**
   * A metric of one node between `from` and `to`, about one point per
   * `stepMs`: raw samples for steps under a minute (within raw retention),
   * else the 1-minute rollup, else the 1-hour one. At most MAX_POINTS points.
   */
  series(nodeId: string, metric: string, from: number, to: number, stepMs: number): Series {
    // A node's own series (`custom.` and its key), or a container's figure (its key as stored).
    const custom = metric.startsWith(CUSTOM_PREFIX)
      ? metric.slice(CUSTOM_PREFIX.length)
      : metric.startsWith(CONTAINER_PREFIX)
        ? metric
        : undefined;
    if (custom === undefined && !isMetric(metric))
      throw new StoreError(
        "E_BAD_METRIC",
        `unknown metric "${metric}"; one of ${METRIC_NAMES.join(", ")}, or custom.SERIES`,
      );
    const span = Math.max(1, to - from);
    let step = Math.max(1_000, stepMs, Math.ceil(span / MAX_POINTS));
    const now = this.clock.now();
    let resolution: Series["resolution"] = "raw";
    if (step >= HOUR_MS || from < now - this.retention.minuteMs) resolution = "1h";
    else if (step >= MINUTE_MS || from < now - this.retention.rawMs) resolution = "1m";
    if (resolution === "1m") step = Math.ceil(step / MINUTE_MS) * MINUTE_MS;
    if (resolution === "1h") step = Math.ceil(step / HOUR_MS) * HOUR_MS;
    let sql: string;
    if (custom !== undefined) {
      // One statement per table for every custom series: the series is a parameter.
      sql =
        resolution === "raw"
          ? `SELECT ts - ts % @step AS b, avg(value) AS avg, min(value) AS min, max(value) AS max
             FROM custom_raw WHERE node_id = @node AND series = @series AND ts >= @from AND ts < @to
             GROUP BY b ORDER BY b`
          : `SELECT bucket - bucket % @step AS b, total(sum) / nullif(sum(n), 0) AS avg,
               min(min) AS min, max(max) AS max
             FROM custom_${resolution} WHERE node_id = @node AND series = @series
               AND bucket >= @from AND bucket < @to GROUP BY b ORDER BY b`;
    } else {
      sql =
        resolution === "raw"
          ? `SELECT ts - ts % @step AS b, avg(${metric}) AS avg, min(${metric}) AS min, max(${metric}) AS max
           FROM vitals_raw WHERE node_id = @node AND ts >= @from AND ts < @to GROUP BY b ORDER BY b`
          : `SELECT bucket - bucket % @step AS b, total(${metric}_sum) / nullif(sum(${metric}_n), 0) AS avg,
             min(${metric}_min) AS min, max(${metric}_max) AS max
           FROM vitals_${resolution} WHERE node_id = @node AND bucket >= @from AND bucket < @to GROUP BY b ORDER BY b`;
    }
    // `metric` is checked against METRICS above, so it is safe in the SQL text.
    // `x - x % step` rounds down in integers even though numbers bind as REAL.
    const rows = this.seriesStatement(
      custom === undefined ? metric : CUSTOM_PREFIX,
      resolution,
      sql,
    ).all({
      step,
      node: nodeId,
      from,
      to,
      ...(custom === undefined ? {} : { series: custom }),
    }) as Array<{
      b: number;
      avg: number | null;
      min: number | null;
      max: number | null;
    }>;
    return {
      metric,
      resolution,
      stepMs: step,
      points: rows.map((r) => ({ ts: r.b, avg: r.avg, min: r.min, max: r.max })),
    };
  }

  /** The custom series a node has stored since `since` (newest raw or 1-minute rows), sorted. */
  customSeries(nodeId: string, since: number): string[] {
    const rows = this.st.customSeries.all({ node: nodeId, since }) as Array<{ series: string }>;
    return rows.map((r) => r.series);
  }

  events(q: EventQuery): StoredEvent[] {
    const rows = this.st.events.all({
      node: q.node ?? null,
      kind: q.kind ?? null,
      since: q.since ?? 0,
      afterId: q.afterId ?? 0,
      limit: q.limit,
    }) as Row[];
    return rows.map((r) => ({
      id: Number(r.id),
      ts: Number(r.ts),
      kind: String(r.kind),
      nodeId: r.node_id === null ? null : String(r.node_id),
      data: JSON.parse(String(r.data)) as Record<string, unknown>,
    }));
  }

  /**
   * Events after `afterId`, oldest first, each as the JSON text of its
   * StoredEvent, built from the stored text without parsing it: what a
   * resuming stream replays, for many clients at once.
   */
  eventsAfter(afterId: number, limit: number): Array<{ id: number; kind: string; json: string }> {
    const rows = this.st.eventsAfter.all(afterId, limit) as Row[];
    return rows.map((r) => {
      const id = Number(r.id);
      const kind = String(r.kind);
      const nodeId = r.node_id === null ? "null" : JSON.stringify(String(r.node_id));
      return {
        id,
        kind,
        json: `{"id":${id},"ts":${Number(r.ts)},"kind":${JSON.stringify(kind)},"nodeId":${nodeId},"data":${String(r.data)}}`,
      };
    });
  }
}
