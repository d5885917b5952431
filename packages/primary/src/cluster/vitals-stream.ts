/**
 * Vitals shared through a JetStream stream, so that every primary stores
 * every node's history and any of them answers any history query.
 *
 * The primary that receives a sample from its agent stores it and publishes
 * it (subject `picluster.vitals.<node id>`, message id `<node id>:<seq>`);
 * the agent's ack waits for both, so an acknowledged sample is in this
 * primary's SQLite and in the stream (on `replicas` servers). A sample the
 * agent sends again to another primary (its first one died before the ack)
 * is published with the same id, and JetStream's duplicate window drops it.
 *
 * Each primary's durable consumer takes the other primaries' samples into
 * its own SQLite and acknowledges each only after its commit, so a primary
 * that was down catches up from where it stopped (within the stream's
 * max age, `[store] raw_retention`). Samples are kept once per store: the
 * raw table's key is (node, seq).
 */

import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  type JetStreamClient,
  type JsMsg,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  type Clock,
  describeError,
  type Logger,
  METRIC_NAMES,
  type MessageMap,
} from "@picluster/common";
import type { MemoryRegistry } from "../registry.js";
import { StoreError } from "../store/failure.js";
import type { Store } from "../store/store.js";

export const VITALS_STREAM = "picluster-vitals";
const SUBJECT = "picluster.vitals";
/** How long a publish is tried again (a stream electing a new leader) before the sample is refused. */
const PUBLISH_TRY_MS = 20_000;

interface SharedSample {
  origin: string;
  node: string;
  ts: number;
  seq: number;
  vitals: MessageMap["vitals"];
}

/**
 * History copied from an embedded store by `picluster cluster import`
 * (cluster/import.ts), on the node's subject: raw samples as
 * `[seq, ts, ...values]`, rollups as `[bucket, samples, ...min, max, sum, n
 * per metric]`, the metrics named in `metrics` (the store's columns when
 * it was written; matched by name here).
 */
/** Rows of an embedded store's history, published by `picluster cluster import`. */
export type ImportedHistory =
  | {
      origin: "import";
      node: string;
      kind: "raw" | "1m" | "1h";
      /** The store's vitals columns, in its order (an older store may have fewer). */
      metrics: string[];
      rows: Array<Array<number | null>>;
    }
  | {
      origin: "import";
      node: string;
      /** A node's own series (and its containers'): [series, ts, value] or [series, bucket, min, max, sum, n]. */
      kind: CustomKind;
      rows: Array<Array<number | string | null>>;
    };

export type CustomKind = "custom_raw" | "custom_1m" | "custom_1h";

export interface VitalsStreamOptions {
  nc: NatsConnection;
  self: string;
  replicas: number;
  maxAgeMs: number;
  store: Store;
  registry: MemoryRegistry;
  clock: Clock;
  log: Logger;
}

function millisToNanos(ms: number): number {
  return ms * 1_000_000;
}

export class VitalsStream {
  private readonly js: JetStreamClient;
  /** Each node's publishes, in order: an ack is cumulative, so seq n+1 waits for n. */
  private readonly chains = new Map<string, Promise<void>>();
  private stopConsumer: (() => void) | undefined;
  private stopped = false;
  /** The newest sample's time per node, as taken from the stream. */
  private readonly newest = new Map<string, number>();
  /** Samples from other primaries stored here (for tests and /metrics). */
  taken = 0;

  constructor(private readonly opts: VitalsStreamOptions) {
    this.js = jetstream(opts.nc);
  }

  async start(): Promise<void> {
    const { nc, self, replicas, maxAgeMs } = this.opts;
    const jsm = await jetstreamManager(nc);
    const config = {
      name: VITALS_STREAM,
      subjects: [`${SUBJECT}.>`],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      num_replicas: replicas,
      max_age: millisToNanos(maxAgeMs),
      duplicate_window: millisToNanos(120_000),
    };
    try {
      await jsm.streams.info(VITALS_STREAM);
      await jsm.streams.update(VITALS_STREAM, { max_age: config.max_age });
    } catch {
      await jsm.streams.add(config);
    }
    const durable = `vitals-${self}`;
    try {
      await jsm.consumers.info(VITALS_STREAM, durable);
    } catch {
      await jsm.consumers.add(VITALS_STREAM, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: millisToNanos(30_000),
        max_ack_pending: 10_000,
      });
    }
    const consumer = await this.js.consumers.get(VITALS_STREAM, durable);
    // Pull requests of 5 s (default 30): after the loss of a NATS server the consumer is
    // asked again within seconds, not half a minute.
    const messages = await consumer.consume({ max_messages: 1_000, expires: 5_000 });
    this.stopConsumer = () => {
      void messages.close();
    };
    void (async () => {
      for await (const m of messages) this.take(m);
    })().catch((err: unknown) => {
      if (!this.stopped)
        this.opts.log.error("vitals from the other primaries stopped", { err: describeError(err) });
    });
  }

  stop(): void {
    this.stopped = true;
    this.stopConsumer?.();
  }

  /** Publish a sample this primary received from its agent; resolves once the stream has it. */
  publish(nodeId: string, ts: number, seq: number, vitals: MessageMap["vitals"]): Promise<void> {
    const before = this.chains.get(nodeId) ?? Promise.resolve();
    const sample: SharedSample = { origin: this.opts.self, node: nodeId, ts, seq, vitals };
    // A sample refused stays with its agent; the next ones of this node wait for nothing.
    const next = before.catch(() => {}).then(() => this.send(sample));
    this.chains.set(nodeId, next);
    void next
      .catch(() => {})
      .finally(() => {
        if (this.chains.get(nodeId) === next) this.chains.delete(nodeId);
      });
    return next;
  }

  /**
   * Resolves at the end of this turn of the event loop, once for every
   * sample received in it: their publishes then leave in one socket write
   * (the NATS client flushes what a microtask run queued together; one
   * write per sample cost 6 % of a primary's CPU in the scaleout bench).
   */
  private turn(): Promise<void> {
    this.nextTurn ??= new Promise<void>((resolve) =>
      setImmediate(() => {
        this.nextTurn = undefined;
        resolve();
      }),
    );
    return this.nextTurn;
  }

  private nextTurn: Promise<void> | undefined;
  private ownAcks: JsMsg[] = [];

  private async send(sample: SharedSample): Promise<void> {
    const body = JSON.stringify(sample);
    await this.turn();
    const until = this.opts.clock.now() + PUBLISH_TRY_MS;
    for (let wait = 100; ; wait = Math.min(2_000, wait * 2)) {
      try {
        await this.js.publish(`${SUBJECT}.${sample.node}`, body, {
          msgID: `${sample.node}:${sample.seq}`,
        });
        return;
      } catch (err) {
        if (this.stopped || this.opts.clock.now() + wait > until)
          throw new StoreError(
            "E_CLUSTER_UNAVAILABLE",
            `the other primaries cannot be told (NATS JetStream): ${describeError(err)}; the sample stays with its agent`,
          );
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  /** History from `picluster cluster import`: stored by every primary (a row it has is kept once). */
  private takeImported(m: JsMsg, h: ImportedHistory): void {
    const { store, log } = this.opts;
    if (!("metrics" in h)) {
      try {
        store.importCustom(h.kind, h.node, h.rows);
        m.ack();
      } catch (err) {
        log.debug("imported series not stored yet", { err: describeError(err) });
        m.nak(5_000);
      }
      return;
    }
    this.takeImportedVitals(m, h);
  }

  private takeImportedVitals(m: JsMsg, h: Extract<ImportedHistory, { metrics: string[] }>): void {
    const { store, log } = this.opts;
    const fixed = 2;
    const perMetric = h.kind === "raw" ? 1 : 4;
    // Each of this store's metrics: where its value(s) are in a row, if the importing store had it.
    const at = METRIC_NAMES.map((name) => {
      const i = h.metrics.indexOf(name);
      return i < 0 ? -1 : fixed + i * perMetric;
    });
    const reorder = (row: Array<number | null>) => [
      ...row.slice(0, fixed),
      ...at.flatMap((i) =>
        i < 0 ? Array<null>(perMetric).fill(null) : row.slice(i, i + perMetric),
      ),
    ];
    try {
      if (h.kind !== "raw") {
        store.importRollups(h.kind, h.node, h.rows.map(reorder));
        m.ack();
        return;
      }
    } catch (err) {
      log.debug("imported rollups not stored yet", { err: describeError(err) });
      m.nak(5_000);
      return;
    }
    Promise.all(
      h.rows.map((row) => {
        const [seq, ts, ...values] = reorder(row);
        return store.addValues(h.node, ts ?? 0, seq ?? 0, values);
      }),
    ).then(
      () => m.ack(),
      (err: unknown) => {
        log.debug("imported samples not stored yet", { err: describeError(err) });
        m.nak(5_000);
      },
    );
  }

  /** A sample from the stream: stored here unless this primary published it; acknowledged after commit. */
  private take(m: JsMsg): void {
    let sample: SharedSample | ImportedHistory;
    try {
      sample = m.json<SharedSample | ImportedHistory>();
    } catch (err) {
      this.opts.log.warn("unreadable sample in the vitals stream, dropped", {
        seq: m.seq,
        err: describeError(err),
      });
      m.term();
      return;
    }
    if ("kind" in sample) {
      this.takeImported(m, sample);
      return;
    }
    if (sample.origin === this.opts.self) {
      // Its own samples (stored before they were published): acknowledged together at the
      // end of the turn, in one write (one each cost a write per sample).
      this.ownAcks.push(m);
      if (this.ownAcks.length === 1)
        setImmediate(() => {
          const acks = this.ownAcks;
          this.ownAcks = [];
          for (const a of acks) a.ack();
        });
      return;
    }
    const { registry, store } = this.opts;
    // The newest sample is the node's current figures (at the time this primary learned them);
    // an older one caught up from the stream is only stored.
    if (sample.ts >= (this.newest.get(sample.node) ?? 0)) {
      this.newest.set(sample.node, sample.ts);
      registry.setVitals(sample.node, sample.vitals, sample.seq, this.opts.clock.now());
    }
    store.addVitals({ id: sample.node }, sample.ts, sample.seq, sample.vitals).then(
      () => {
        registry.markStored(sample.node, sample.seq);
        this.taken++;
        m.ack();
      },
      (err: unknown) => {
        // The store cannot write (a full disk): JetStream delivers it again later.
        this.opts.log.debug("sample from the stream not stored yet", { err: describeError(err) });
        m.nak(5_000);
      },
    );
  }
}
