/**
 * A store's records mirrored both ways through a JetStream key-value
 * bucket, each record one key with its JSON: credentials and join tokens
 * (`t.<token id>`, `c.<identity>`) and named API tokens (`a.<name>`, their
 * hash, never a secret).
 *
 * Each primary keeps its own copy in its SQLite store (lookups on the TLS
 * handshake and on every API request stay local and in memory). A change
 * made here (`node add` or `token add` on this machine, a redemption, a
 * revocation) is put to the bucket; a change another primary put is written
 * here, and the primary is told (so that a revoked node is cut, or a revoked
 * token refused, wherever it is used). The bucket is the truth once
 * connected: at start, what it holds is taken in first, then what only this
 * store has (made before the scale-out mode, or while NATS was out) is
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
import { watchAll } from "./nats.js";

/** What a mirrored store offers: its records by key, and a way to take in others'. */
export interface MirroredStore {
  /** What this store has now: key → JSON. */
  entries(): Map<string, string>;
  /** Take in what another primary put (undefined: deleted); true when something changed here. */
  applyRemote(key: string, json: string | undefined): boolean;
  /** Told after every change this store makes or reads from its file. */
  onChange: (() => void) | undefined;
}

/** The credential store as a mirrored store. */
export function credentialRecords(store: CredentialStore): MirroredStore {
  return {
    entries() {
      const { tokens, credentials } = store.records();
      const mine = new Map<string, string>();
      for (const t of tokens) mine.set(`t.${t.id}`, tokenJson(t) as string);
      for (const c of credentials) mine.set(`c.${c.identity}`, credentialJson(c) as string);
      return mine;
    },
    applyRemote(key, json) {
      if (key.startsWith("t.")) {
        const record = json === undefined ? undefined : (JSON.parse(json) as TokenRecord);
        return store.applyRemote({ kind: "token", id: key.slice(2), record });
      }
      if (key.startsWith("c.")) {
        const record = json === undefined ? undefined : (JSON.parse(json) as CredentialRecord);
        return store.applyRemote({ kind: "credential", id: key.slice(2), record });
      }
      return false;
    },
    get onChange() {
      return store.onChange;
    },
    set onChange(fn) {
      store.onChange = fn;
    },
  };
}

export interface KvMirrorOptions {
  kv: KV;
  store: MirroredStore;
  /** What the records are, for the logs ("credentials", "API tokens"). */
  what: string;
  log: Logger;
  /** Something another primary changed was written here. */
  onRemoteChange: () => void;
}

export class KvMirror {
  /** What the bucket holds, as far as this primary knows: key → JSON. */
  private readonly known = new Map<string, string>();
  /** What this store held at the last publish. */
  private lastMine = new Map<string, string>();
  private stopWatch: (() => void) | undefined;
  private publishing = false;
  private again = false;
  private stopped = false;

  constructor(private readonly opts: KvMirrorOptions) {}

  async start(): Promise<void> {
    const { kv, store } = this.opts;
    // Everything the bucket holds now, then every change as it is made.
    this.stopWatch = await watchAll(kv, ">", (e) => this.take(e));
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
      changed = this.opts.store.applyRemote(e.key, json);
    } catch (err) {
      this.opts.log.error(`cannot take in ${this.opts.what} from the cluster`, {
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
    const mine = this.opts.store.entries();
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
      log.warn(`cannot publish ${this.opts.what} to the cluster`, { err: describeError(err) });
    }
  }
}
