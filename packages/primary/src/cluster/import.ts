/**
 * `picluster cluster import`: an embedded primary's store copied into the
 * scale-out cluster (docs/scale-out.md, "Moving an embedded install").
 *
 * - credentials and join tokens into the credentials bucket, and node
 *   records into the nodes bucket, each only where the cluster has no entry
 *   for it (the cluster's word stands: a credential revoked there is not
 *   brought back);
 * - vitals history (raw samples, 1-minute and 1-hour rollups), and the
 *   nodes' own series and their containers' with theirs, onto the vitals stream, in messages of a few hundred rows each, which every
 *   primary's consumer stores (a row a store has is kept once), as it does
 *   the samples of the others' agents.
 *
 * Run it with the primary of that store stopped or running: the file is
 * only read. Running it twice adds nothing the first run added.
 */

import { existsSync } from "node:fs";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { type Clock, type Config, describeError, type Logger } from "@picluster/common";
import Database from "better-sqlite3";
import { CredentialStore, credentialJson, tokenJson } from "../credentials.js";
import { sharedPart } from "../registry.js";
import { StoreReads } from "../store/reads.js";
import { BUCKETS, bucket, ClusterError, connectNats, replicasFor } from "./nats.js";
import { type ImportedHistory, VITALS_STREAM } from "./vitals-stream.js";

export type ImportPhase = "credentials" | "nodes" | "raw" | "1m" | "1h" | "custom";

export interface ImportProgress {
  phase: ImportPhase;
  done: number;
  total: number;
}

export interface ImportSummary {
  store: string;
  /** Entries put into a bucket, and those the cluster already had (left as they were). */
  credentials: { added: number; present: number };
  nodes: { added: number; present: number };
  /** Rows published, by kind (custom: the nodes' own series and containers', raw and rollups). */
  rows: { raw: number; minute: number; hour: number; custom: number };
  messages: number;
  durationMs: number;
}

export interface ImportOptions {
  config: Config;
  /** The store file to copy (`storeFile(config, dataDir)`). */
  storeFile: string;
  clock: Clock;
  log: Logger;
  onProgress?: (p: ImportProgress) => void;
}

/** Rows of one message are cut below this many bytes of JSON. */
const MESSAGE_BYTES = 192 * 1024;
/** Publishes awaiting their acknowledgement at once. */
const WINDOW = 32;

export async function importIntoCluster(opts: ImportOptions): Promise<ImportSummary> {
  const { config, storeFile, clock } = opts;
  if (config.cluster.nats.length === 0)
    throw new ClusterError(
      "E_CONFIG",
      "[cluster] nats is not set: name the NATS servers of the cluster to import into",
    );
  if (!existsSync(storeFile))
    throw new ClusterError("E_NOT_FOUND", `no store to import at ${storeFile}`);
  const started = clock.now();
  const nc = await connectNats(config.cluster, "import").catch((err: unknown) => {
    throw new ClusterError(
      "E_CLUSTER_UNAVAILABLE",
      `cannot reach NATS (${config.cluster.nats.join(", ")}): ${describeError(err)}`,
    );
  });
  const db = new Database(storeFile, { readonly: true, fileMustExist: true });
  try {
    const jsm = await jetstreamManager(nc);
    try {
      await jsm.streams.info(VITALS_STREAM);
    } catch {
      throw new ClusterError(
        "E_CLUSTER_UNAVAILABLE",
        `no primary of the cluster has started yet (no stream ${VITALS_STREAM}): start one with [cluster] nats, then import`,
      );
    }
    const replicas = replicasFor(config.cluster);
    const credentials = await importCredentials(
      opts,
      await bucket(nc, BUCKETS.credentials, { history: 1, replicas }),
    );
    const nodes = await importNodes(
      opts,
      db,
      await bucket(nc, BUCKETS.nodes, { history: 1, replicas }),
    );
    const history = await importHistory(opts, db, nc);
    return {
      store: storeFile,
      credentials,
      nodes,
      rows: history.rows,
      messages: history.messages,
      durationMs: clock.now() - started,
    };
  } finally {
    db.close();
    await nc.close();
  }
}

/** Create `key` unless the bucket has it; true when created. */
async function createIfAbsent(kv: KV, key: string, value: string): Promise<boolean> {
  try {
    await kv.create(key, value);
    return true;
  } catch (err) {
    const existing = await kv.get(key);
    if (existing !== null && existing.operation === "PUT") return false;
    throw err;
  }
}

async function importCredentials(
  opts: ImportOptions,
  kv: KV,
): Promise<{ added: number; present: number }> {
  const store = new CredentialStore(opts.storeFile, opts.clock, { log: opts.log }).load();
  const entries: Array<[string, string]> = [];
  try {
    const { tokens, credentials } = store.records();
    for (const t of tokens) entries.push([`t.${t.id}`, tokenJson(t) as string]);
    for (const c of credentials) entries.push([`c.${c.identity}`, credentialJson(c) as string]);
  } finally {
    store.close();
  }
  const tally = { added: 0, present: 0 };
  for (const [key, value] of entries) {
    if (await createIfAbsent(kv, key, value)) tally.added++;
    else tally.present++;
    opts.onProgress?.({
      phase: "credentials",
      done: tally.added + tally.present,
      total: entries.length,
    });
  }
  return tally;
}

async function importNodes(
  opts: ImportOptions,
  db: Database.Database,
  kv: KV,
): Promise<{ added: number; present: number }> {
  const { store } = opts.config;
  const nodes = new StoreReads(db, opts.clock, {
    rawMs: store.raw_retention,
    minuteMs: store.minute_retention,
    hourMs: store.hour_retention,
  })
    .loadNodes()
    .filter((n) => !n.legacy);
  const tally = { added: 0, present: 0 };
  for (const node of nodes) {
    // Held by nobody: the leader judges it (suspect, then down) until its agent connects to a primary.
    const value = JSON.stringify({ holder: null, node: sharedPart(node) });
    if (await createIfAbsent(kv, `n.${node.id}`, value)) tally.added++;
    else tally.present++;
    opts.onProgress?.({ phase: "nodes", done: tally.added + tally.present, total: nodes.length });
  }
  return tally;
}

const TABLES = [
  { kind: "raw", table: "vitals_raw", key: "seq", cols: (ms: string[]) => ["seq", "ts", ...ms] },
  {
    kind: "1m",
    table: "vitals_1m",
    key: "bucket",
    cols: (ms: string[]) => [
      "bucket",
      "samples",
      ...ms.flatMap((m) => [`${m}_min`, `${m}_max`, `${m}_sum`, `${m}_n`]),
    ],
  },
  {
    kind: "1h",
    table: "vitals_1h",
    key: "bucket",
    cols: (ms: string[]) => [
      "bucket",
      "samples",
      ...ms.flatMap((m) => [`${m}_min`, `${m}_max`, `${m}_sum`, `${m}_n`]),
    ],
  },
] as const;

const CUSTOM_TABLES = [
  { kind: "custom_raw", cols: ["series", "ts", "value"] },
  { kind: "custom_1m", cols: ["series", "bucket", "min", "max", "sum", "n"] },
  { kind: "custom_1h", cols: ["series", "bucket", "min", "max", "sum", "n"] },
] as const;

async function importHistory(
  opts: ImportOptions,
  db: Database.Database,
  nc: NatsConnection,
): Promise<{ rows: ImportSummary["rows"]; messages: number }> {
  const js = jetstream(nc);
  // The metrics as this store has them (an older store may have fewer; matched by name).
  const metrics = (db.prepare("PRAGMA table_info(vitals_raw)").all() as Array<{ name: string }>)
    .map((c) => c.name)
    .filter((n) => n !== "node_id" && n !== "seq" && n !== "ts");
  const rows = { raw: 0, minute: 0, hour: 0, custom: 0 };
  let messages = 0;
  const pending = new Set<Promise<unknown>>();
  const sent: Array<Promise<unknown>> = [];
  /** Publish without waiting for its acknowledgement, but with at most WINDOW unacknowledged. */
  const publish = async (h: ImportedHistory, id: string): Promise<void> => {
    const p = js.publish(`picluster.vitals.${h.node}`, JSON.stringify(h), { msgID: id });
    // A refused publish fails the import: checked at the end (Promise.all below).
    sent.push(p);
    pending.add(p);
    const settled = () => pending.delete(p);
    p.then(settled, settled);
    messages++;
    if (pending.size >= WINDOW) await Promise.race(pending).catch(() => {});
  };
  /** Publish `select`'s rows (node_id first, then `columns`) per node, in messages of MESSAGE_BYTES. */
  const publishTable = async (
    phase: ImportPhase,
    table: string,
    select: string,
    columns: readonly string[],
    message: (node: string, rows: Array<Array<number | string | null>>) => ImportedHistory,
  ): Promise<number> => {
    const total = (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    let node = "";
    let batch: Array<Array<number | string | null>> = [];
    let bytes = 0;
    let done = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      const h = message(node, batch);
      // A batch's id: its first row's key (a seq or bucket; a series and its time).
      const first = batch[0] ?? [];
      const key = typeof first[0] === "string" ? `${first[0]}:${first[1]}` : `${first[0]}`;
      batch = [];
      bytes = 0;
      await publish(h, `import:${h.node}:${h.kind}:${key}`);
      opts.onProgress?.({ phase, done, total });
    };
    for (const r of db.prepare(select).iterate() as IterableIterator<
      Record<string, number | string | null>
    >) {
      const nodeId = String(r.node_id);
      if (nodeId !== node) {
        await flush();
        node = nodeId;
      }
      const row = columns.map((c) => {
        const v = r[c];
        return typeof v === "number" || typeof v === "string" ? v : null;
      });
      batch.push(row);
      bytes += 20 * row.length + (typeof row[0] === "string" ? row[0].length : 0);
      done++;
      if (bytes >= MESSAGE_BYTES) await flush();
    }
    await flush();
    return done;
  };
  for (const spec of TABLES) {
    const columns = spec.cols(metrics);
    const done = await publishTable(
      spec.kind,
      spec.table,
      `SELECT node_id, ${columns.join(", ")} FROM ${spec.table} ORDER BY node_id, ${spec.key}`,
      columns,
      (node, batch) => ({
        origin: "import",
        node,
        kind: spec.kind,
        metrics,
        rows: batch as Array<Array<number | null>>,
      }),
    );
    if (spec.kind === "raw") rows.raw = done;
    else if (spec.kind === "1m") rows.minute = done;
    else rows.hour = done;
  }
  // The nodes' own series and their containers' (a store from before migration 8 has none).
  const hasCustom =
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'custom_raw'").get() !==
    undefined;
  if (hasCustom)
    for (const spec of CUSTOM_TABLES)
      rows.custom += await publishTable(
        "custom",
        spec.kind,
        `SELECT node_id, ${spec.cols.join(", ")} FROM ${spec.kind} ORDER BY node_id, series, ${spec.cols[1]}`,
        spec.cols,
        (node, batch) => ({ origin: "import", node, kind: spec.kind, rows: batch }),
      );
  await Promise.all(sent).catch((err: unknown) => {
    throw new ClusterError(
      "E_CLUSTER_UNAVAILABLE",
      `the vitals stream did not take the history: ${describeError(err)}`,
    );
  });
  return { rows, messages };
}
