/**
 * Credentials and join tokens shared through a JetStream key-value bucket:
 * `t.<token id>` and `c.<identity>`, each the record as JSON.
 *
 * Each primary keeps its own copy in its SQLite store (lookups on the TLS
 * handshake stay local and in memory). A change made here (`node add` on
 * this machine, a redemption, a revocation) is put to the bucket; a change
 * another primary put is written here, and the primary is told (so that a
 * revoked node is cut wherever it is connected). The bucket is the truth
 * once connected: at start, what it holds is taken in first, then what only
 * this store has (made before the scale-out mode, or while NATS was out) is
 * published.
 */

import type { KV, KvWatchEntry } from "@nats-io/kv";
import { describeError, type Logger } from "@picluster/common";
import {
  type CredentialRecord,
  type CredentialStore,
  credentialJson,
  type TokenRecord,
  tokenJson,
} from "../credentials.js";

export interface CredentialSyncOptions {
  kv: KV;
  store: CredentialStore;
  log: Logger;
  /** Something another primary changed was written here. */
  onRemoteChange: () => void;
}

export class CredentialSync {
  /** What the bucket holds, as far as this primary knows: key → JSON. */
  private readonly known = new Map<string, string>();
  /** What this store held at the last publish. */
  private lastMine = new Map<string, string>();
  private stopWatch: (() => void) | undefined;
  private publishing = false;
  private again = false;
  private stopped = false;

  constructor(private readonly opts: CredentialSyncOptions) {}

  async start(): Promise<void> {
    const { kv, store } = this.opts;
    // Everything the bucket holds now, then every change as it is made.
    const iter = await kv.watch({ key: ">" });
    this.stopWatch = () => iter.stop();
    let initial = true;
    let caughtUp: () => void = () => {};
    const ready = new Promise<void>((resolve) => {
      caughtUp = resolve;
    });
    void (async () => {
      for await (const e of iter) {
        this.take(e);
        if (initial && e.delta === 0) {
          initial = false;
          caughtUp();
        }
      }
    })();
    // An empty bucket sends nothing: no initial entries to wait for.
    const status = await kv.status();
    if (status.values === 0) caughtUp();
    await ready;
    store.onChange = () => {
      void this.publish();
    };
    await this.publish();
  }

  stop(): void {
    this.stopped = true;
    this.stopWatch?.();
    this.opts.store.onChange = undefined;
  }

  /** An entry from the bucket: write it here unless it is what this store has. */
  private take(e: KvWatchEntry): void {
    const deleted = e.operation !== "PUT";
    const json = deleted ? undefined : e.string();
    if (json === undefined) this.known.delete(e.key);
    else this.known.set(e.key, json);
    let changed = false;
    try {
      if (e.key.startsWith("t.")) {
        const record = json === undefined ? undefined : (JSON.parse(json) as TokenRecord);
        changed = this.opts.store.applyRemote({ kind: "token", id: e.key.slice(2), record });
      } else if (e.key.startsWith("c.")) {
        const record = json === undefined ? undefined : (JSON.parse(json) as CredentialRecord);
        changed = this.opts.store.applyRemote({ kind: "credential", id: e.key.slice(2), record });
      }
    } catch (err) {
      this.opts.log.error("cannot take in a credential from the cluster", {
        key: e.key,
        err: describeError(err),
      });
      return;
    }
    if (changed) this.opts.onRemoteChange();
  }

  /** Put what this store has and the bucket does not; delete what this store deleted. */
  private async publish(): Promise<void> {
    if (this.publishing) {
      this.again = true;
      return;
    }
    this.publishing = true;
    try {
      do {
        this.again = false;
        await this.publishOnce();
      } while (this.again && !this.stopped);
    } finally {
      this.publishing = false;
    }
  }

  private async publishOnce(): Promise<void> {
    const { tokens, credentials } = this.opts.store.records();
    const mine = new Map<string, string>();
    for (const t of tokens) mine.set(`t.${t.id}`, tokenJson(t) as string);
    for (const c of credentials) mine.set(`c.${c.identity}`, credentialJson(c) as string);
    // Deleted here means: this store had it at the last publish and has it no more. (Not
    // "the bucket has it and this store not": a key put meanwhile by another primary
    // would be deleted before this store took it in.)
    const deleted = [...this.lastMine.keys()].filter(
      (key) => !mine.has(key) && this.known.has(key),
    );
    this.lastMine = mine;
    const { kv, log } = this.opts;
    try {
      for (const [key, json] of mine) {
        if (this.known.get(key) === json) continue;
        await kv.put(key, json);
        this.known.set(key, json);
      }
      for (const key of deleted) {
        await kv.delete(key);
        this.known.delete(key);
      }
    } catch (err) {
      // Published at the next change or start; the local store is unaffected.
      log.warn("cannot publish credentials to the cluster", { err: describeError(err) });
    }
  }
}
