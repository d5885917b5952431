/**
 * The primary's list of who may connect: one-time join tokens and the
 * per-node pre-shared keys they are exchanged for. Kept in the store's
 * SQLite file (mode 0600), so that `picluster node add` and `node revoke`
 * can change it while the primary runs, each change one transaction; a
 * generation counter in the same file tells either side that the other
 * changed something (reloadIfChanged). Lookups on the TLS handshake path
 * are served from memory.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, renameSync } from "node:fs";
import {
  AuthError,
  type Clock,
  decodeKey,
  encodeKey,
  formatJoinToken,
  JOIN_IDENTITY_PREFIX,
  type Logger,
  newJoinToken,
  randomKey,
  silentLogger,
} from "@picluster/common";
import type Database from "better-sqlite3";
import { openDatabase } from "./store/database.js";

export const DEFAULT_TOKEN_TTL_MS = 24 * 3_600_000;

export interface TokenRecord {
  id: string;
  secret: string;
  name: string;
  createdAt: number;
  expiresAt: number;
  /** The node that redeemed it, and the credential it got. */
  usedBy?: string;
  identity?: string;
}

export interface CredentialRecord {
  identity: string;
  key: string;
  name: string;
  nodeId?: string;
  createdAt: number;
  revokedAt?: number;
}

interface Snapshot {
  tokens: TokenRecord[];
  credentials: CredentialRecord[];
}

interface TokenRow {
  id: string;
  secret: string;
  name: string;
  created_at: number;
  expires_at: number;
  used_by: string | null;
  identity: string | null;
}

interface CredentialRow {
  identity: string;
  key: string;
  name: string;
  node_id: string | null;
  created_at: number;
  revoked_at: number | null;
}

export interface CredentialStoreOptions {
  /**
   * A credentials.json of an earlier picluster: imported into the database
   * when it holds no credentials yet, then renamed to `*.imported`.
   */
  importFrom?: string;
  log?: Logger;
}

export type PskLookup =
  | { kind: "join"; tokenId: string; name: string; key: Buffer }
  | { kind: "node"; identity: string; name: string; nodeId: string | undefined; key: Buffer };

export interface CredentialSummary {
  name: string;
  status: "active" | "revoked" | "pending";
  identity?: string;
  nodeId?: string;
  createdAt: number;
  /** A pending token's end. */
  expiresAt?: number;
}

/** What a redeemed join token gives: the node's new credential. */
export interface Redeemed {
  identity: string;
  key: Buffer;
  name: string;
  /** The credential an earlier redemption of the same token issued, now deleted. */
  superseded?: string;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** A token as JSON with its fields in one order (what the scale-out mode publishes and compares). */
export function tokenJson(t: TokenRecord | undefined): string | undefined {
  if (t === undefined) return undefined;
  const { id, secret, name, createdAt, expiresAt, usedBy, identity } = t;
  return JSON.stringify({ id, secret, name, createdAt, expiresAt, usedBy, identity });
}

/** A credential as JSON with its fields in one order. */
export function credentialJson(c: CredentialRecord | undefined): string | undefined {
  if (c === undefined) return undefined;
  const { identity, key, name, nodeId, createdAt, revokedAt } = c;
  return JSON.stringify({ identity, key, name, nodeId, createdAt, revokedAt });
}

export class CredentialStore {
  private data: Snapshot = { tokens: [], credentials: [] };
  // Looked up on every TLS handshake: keep it O(1) for thousands of nodes.
  private byIdentity = new Map<string, CredentialRecord>();
  private confirmed = new Set<string>();
  private db: Database.Database | undefined;
  /** credential_generation as last read or written; -1 before the first load. */
  private seen = -1;
  /** Bumped on every change seen or made, so a poller can tell it missed none. */
  generation = 0;
  /** Told after every change this store makes or reads from the file (the scale-out mode publishes it). */
  onChange: (() => void) | undefined;

  /** `file` is the store's SQLite file (see storeFile). */
  constructor(
    readonly file: string,
    private readonly clock: Clock,
    private readonly opts: CredentialStoreOptions = {},
  ) {}

  /** Open the database (creating and migrating it if needed) and read it. */
  load(): this {
    if (this.db === undefined) {
      this.db = openDatabase(this.file, this.opts.log ?? silentLogger());
      if (this.opts.importFrom !== undefined) this.importJson(this.opts.importFrom);
    }
    this.reloadIfChanged();
    return this;
  }

  close(): void {
    this.db?.close();
    this.db = undefined;
  }

  private get conn(): Database.Database {
    if (this.db === undefined) throw new Error("CredentialStore used before load()");
    return this.db;
  }

  /** Re-read the tables if another connection changed them; true when one did. */
  reloadIfChanged(): boolean {
    const { n } = this.conn.prepare("SELECT n FROM credential_generation").get() as { n: number };
    if (n === this.seen) return false;
    const tokens = this.conn.prepare("SELECT * FROM join_tokens").all() as TokenRow[];
    const creds = this.conn.prepare("SELECT * FROM credentials").all() as CredentialRow[];
    this.data = {
      tokens: tokens.map((t) => ({
        id: t.id,
        secret: t.secret,
        name: t.name,
        createdAt: t.created_at,
        expiresAt: t.expires_at,
        ...(t.used_by === null ? {} : { usedBy: t.used_by }),
        ...(t.identity === null ? {} : { identity: t.identity }),
      })),
      credentials: creds.map((c) => ({
        identity: c.identity,
        key: c.key,
        name: c.name,
        ...(c.node_id === null ? {} : { nodeId: c.node_id }),
        createdAt: c.created_at,
        ...(c.revoked_at === null ? {} : { revokedAt: c.revoked_at }),
      })),
    };
    this.index();
    this.seen = n;
    this.generation += 1;
    this.onChange?.();
    return true;
  }

  private index(): void {
    this.byIdentity = new Map(this.data.credentials.map((c) => [c.identity, c]));
  }

  /**
   * Run `change` in one write transaction that first takes in whatever
   * another process committed, then bumps the generation. `change` returns
   * its result and how memory follows, applied only after the commit: if the
   * write fails (disk full), memory still matches the file and the caller
   * sees the error. (Memory is patched, not re-read: a fleet's first boot
   * redeems thousands of tokens.)
   */
  private write<T>(change: (db: Database.Database) => { result: T; apply?: () => void }): T {
    const db = this.conn;
    const out = db
      .transaction(() => {
        this.reloadIfChanged();
        const done = change(db);
        db.prepare("UPDATE credential_generation SET n = n + 1").run();
        const { n } = db.prepare("SELECT n FROM credential_generation").get() as { n: number };
        return { ...done, n };
      })
      .immediate();
    out.apply?.();
    this.seen = out.n;
    this.generation += 1;
    this.onChange?.();
    return out.result;
  }

  /** Every token and credential as stored (copies), for the scale-out mode to publish. */
  records(): { tokens: TokenRecord[]; credentials: CredentialRecord[] } {
    return structuredClone(this.data);
  }

  /**
   * Take in a record another primary published (undefined: it deleted it),
   * as one write. Returns whether anything changed here.
   */
  applyRemote(
    change:
      | { kind: "token"; id: string; record: TokenRecord | undefined }
      | { kind: "credential"; id: string; record: CredentialRecord | undefined },
  ): boolean {
    if (change.kind === "token") {
      const now = this.data.tokens.find((t) => t.id === change.id);
      if (tokenJson(now) === tokenJson(change.record)) return false;
      const record = change.record;
      this.write((db) => {
        db.prepare("DELETE FROM join_tokens WHERE id = ?").run(change.id);
        if (record !== undefined)
          db.prepare(
            "INSERT INTO join_tokens (id, secret, name, created_at, expires_at, used_by, identity) VALUES (@id, @secret, @name, @createdAt, @expiresAt, @usedBy, @identity)",
          ).run({ usedBy: null, identity: null, ...record });
        return {
          result: undefined,
          apply: () => {
            this.data.tokens = this.data.tokens.filter((t) => t.id !== change.id);
            if (record !== undefined) this.data.tokens.push(record);
          },
        };
      });
      return true;
    }
    const now = this.byIdentity.get(change.id);
    if (credentialJson(now) === credentialJson(change.record)) return false;
    const record = change.record;
    this.write((db) => {
      db.prepare("DELETE FROM credentials WHERE identity = ?").run(change.id);
      if (record !== undefined)
        db.prepare(
          "INSERT INTO credentials (identity, key, name, node_id, created_at, revoked_at) VALUES (@identity, @key, @name, @nodeId, @createdAt, @revokedAt)",
        ).run({ nodeId: null, revokedAt: null, ...record });
      return {
        result: undefined,
        apply: () => {
          this.data.credentials = this.data.credentials.filter((c) => c.identity !== change.id);
          this.byIdentity.delete(change.id);
          if (record !== undefined) {
            this.data.credentials.push(record);
            this.byIdentity.set(record.identity, record);
          }
        },
      };
    });
    return true;
  }

  /** Kept for `picluster init`: the database is created by load(). */
  init(): void {
    this.load();
  }

  /** Import an earlier version's credentials.json once, then rename it out of the way. */
  private importJson(file: string): void {
    if (!existsSync(file)) return;
    let parsed: Partial<Snapshot & { version: number }>;
    try {
      parsed = JSON.parse(readFileSync(file, "utf8")) as Partial<Snapshot & { version: number }>;
    } catch (err) {
      throw new AuthError("E_BAD_CREDENTIALS_FILE", `credential file ${file} is not valid JSON`, {
        cause: err,
      });
    }
    if (parsed.version !== 1 || !Array.isArray(parsed.tokens) || !Array.isArray(parsed.credentials))
      throw new AuthError("E_BAD_CREDENTIALS_FILE", `credential file ${file}: unknown format`);
    const { tokens, credentials } = parsed as Snapshot;
    const db = this.conn;
    const imported = this.write(() => {
      const { c } = db.prepare("SELECT count(*) AS c FROM credentials").get() as { c: number };
      const { t } = db.prepare("SELECT count(*) AS t FROM join_tokens").get() as { t: number };
      if (c + t > 0) return { result: false };
      const addToken = db.prepare(
        "INSERT INTO join_tokens VALUES (@id, @secret, @name, @createdAt, @expiresAt, @usedBy, @identity)",
      );
      for (const t of tokens) addToken.run({ usedBy: null, identity: null, ...t });
      const addCred = db.prepare(
        "INSERT INTO credentials VALUES (@identity, @key, @name, @nodeId, @createdAt, @revokedAt)",
      );
      for (const c of credentials) addCred.run({ nodeId: null, revokedAt: null, ...c });
      return { result: true };
    });
    this.seen = -1;
    this.reloadIfChanged();
    if (imported) {
      renameSync(file, `${file}.imported`);
      this.opts.log?.info("credentials imported into the store", {
        from: file,
        credentials: credentials.length,
        tokens: tokens.length,
      });
    } else {
      this.opts.log?.warn("credentials.json left alone: the store already has credentials", {
        file,
      });
    }
  }

  /** A one-time join token for a new node called `name`. */
  addToken(name: string, ttlMs = DEFAULT_TOKEN_TTL_MS): string {
    if (!NAME_RE.test(name)) {
      throw new AuthError(
        "E_BAD_NAME",
        `node name "${name}": use letters, digits, '.', '_' or '-' (at most 63)`,
      );
    }
    const now = this.clock.now();
    const token = newJoinToken();
    this.write((db) => {
      if (this.data.credentials.some((c) => c.name === name && c.revokedAt === undefined)) {
        throw new AuthError(
          "E_NODE_EXISTS",
          `node "${name}" already has a credential; revoke it first to join it again`,
        );
      }
      // Earlier unused tokens for the same name stop working: only the newest counts.
      db.prepare("DELETE FROM join_tokens WHERE name = ? AND used_by IS NULL").run(name);
      const record: TokenRecord = {
        id: token.id,
        secret: encodeKey(token.secret),
        name,
        createdAt: now,
        expiresAt: now + ttlMs,
      };
      db.prepare(
        "INSERT INTO join_tokens (id, secret, name, created_at, expires_at) VALUES (@id, @secret, @name, @createdAt, @expiresAt)",
      ).run(record);
      return {
        result: undefined,
        apply: () => {
          this.data.tokens = this.data.tokens.filter(
            (t) => t.name !== name || t.usedBy !== undefined,
          );
          this.data.tokens.push(record);
        },
      };
    });
    return formatJoinToken(token);
  }

  /**
   * The key for a TLS-PSK identity, if it may connect now. An identity not
   * found may have been added by the CLI a moment ago: look once more after
   * re-reading the file (a stat when nothing changed).
   */
  lookup(identity: string): PskLookup | undefined {
    const found = this.find(identity);
    if (found !== undefined) return found;
    return this.reloadIfChanged() ? this.find(identity) : undefined;
  }

  private find(identity: string): PskLookup | undefined {
    const now = this.clock.now();
    if (identity.startsWith(JOIN_IDENTITY_PREFIX)) {
      const id = identity.slice(JOIN_IDENTITY_PREFIX.length);
      const token = this.data.tokens.find((t) => t.id === id);
      if (token === undefined || token.expiresAt <= now) return undefined;
      const issued = token.identity === undefined ? undefined : this.credential(token.identity);
      if (issued?.revokedAt !== undefined) return undefined;
      return {
        kind: "join",
        tokenId: id,
        name: token.name,
        key: decodeKey(token.secret, `token ${id}`),
      };
    }
    const cred = this.credential(identity);
    if (cred === undefined || cred.revokedAt !== undefined) return undefined;
    return {
      kind: "node",
      identity,
      name: cred.name,
      nodeId: cred.nodeId,
      key: decodeKey(cred.key, `credential ${identity}`),
    };
  }

  /**
   * Exchange a join token for the node's own credential. Every redemption
   * issues a fresh key: a node that presents the token again (it crashed
   * before saving its credential) gets a new one, and the one issued before
   * is deleted, so a session still using it is cut. Whoever else holds the
   * token and presents the same node id (node ids are public: /api/nodes,
   * /metrics) can never obtain the key a node already has; at most they
   * supersede it, which cuts that node off where it shows. Another node id
   * is refused.
   */
  redeem(tokenId: string, nodeId: string): Redeemed {
    return this.write((db) => {
      const token = this.data.tokens.find((t) => t.id === tokenId);
      if (token === undefined || token.expiresAt <= this.clock.now()) {
        throw new AuthError("E_TOKEN_INVALID", "join token unknown or expired");
      }
      if (token.usedBy !== undefined && token.usedBy !== nodeId) {
        throw new AuthError(
          "E_TOKEN_USED",
          `join token for "${token.name}" was already used by another node`,
        );
      }
      const superseded = token.identity === undefined ? undefined : this.credential(token.identity);
      if (superseded?.revokedAt !== undefined) {
        // revoke() deletes a name's tokens; a token outliving its revoked credential is not honoured.
        throw new AuthError("E_TOKEN_INVALID", `the node "${token.name}" was revoked`);
      }
      // A node id already held by another node's credential cannot be taken over with a token.
      const holder = this.data.credentials.find(
        (c) => c.nodeId === nodeId && c.revokedAt === undefined && c !== superseded,
      );
      if (holder !== undefined) {
        throw new AuthError(
          "E_NODE_ID_TAKEN",
          `node id ${nodeId} already belongs to "${holder.name}"; revoke it first (a cloned SD card keeps the same /etc/machine-id)`,
        );
      }
      const identity = `n-${randomBytes(8).toString("hex")}`;
      const key = randomKey();
      const record: CredentialRecord = {
        identity,
        key: encodeKey(key),
        name: token.name,
        nodeId,
        createdAt: this.clock.now(),
      };
      if (superseded !== undefined)
        db.prepare("DELETE FROM credentials WHERE identity = ?").run(superseded.identity);
      db.prepare(
        "INSERT INTO credentials (identity, key, name, node_id, created_at) VALUES (@identity, @key, @name, @nodeId, @createdAt)",
      ).run(record);
      db.prepare("UPDATE join_tokens SET used_by = ?, identity = ? WHERE id = ?").run(
        nodeId,
        identity,
        tokenId,
      );
      return {
        result: {
          identity,
          key,
          name: token.name,
          ...(superseded === undefined ? {} : { superseded: superseded.identity }),
        },
        apply: () => {
          if (superseded !== undefined) {
            this.data.credentials = this.data.credentials.filter((c) => c !== superseded);
            this.byIdentity.delete(superseded.identity);
          }
          this.data.credentials.push(record);
          this.byIdentity.set(identity, record);
          token.usedBy = nodeId;
          token.identity = identity;
        },
      };
    });
  }

  /**
   * The node has connected with its own credential: the token that produced
   * it is no longer needed and is deleted, so it cannot hand the key out again.
   */
  confirm(identity: string): void {
    // Batched (flushConfirmed, every second): rewriting the file for each of
    // a fleet's first connections made a first boot quadratic.
    this.confirmed.add(identity);
  }

  /** Delete the tokens of every credential confirmed since the last call, in one write. */
  flushConfirmed(): void {
    if (this.confirmed.size === 0) return;
    const done = this.confirmed;
    this.confirmed = new Set();
    if (!this.data.tokens.some((t) => t.identity !== undefined && done.has(t.identity))) return;
    try {
      this.flushWrite(done);
    } catch (err) {
      // Kept for the next flush (the CLI may hold the write lock a moment).
      for (const identity of done) this.confirmed.add(identity);
      throw err;
    }
  }

  private flushWrite(done: ReadonlySet<string>): void {
    this.write((db) => {
      const del = db.prepare("DELETE FROM join_tokens WHERE identity = ?");
      for (const identity of done) del.run(identity);
      return {
        result: undefined,
        apply: () => {
          this.data.tokens = this.data.tokens.filter(
            (t) => t.identity === undefined || !done.has(t.identity),
          );
        },
      };
    });
  }

  /** Revoke every credential and pending token of `name`; returns the identities revoked. */
  revoke(name: string): string[] {
    return this.write((db) => {
      const now = this.clock.now();
      const records = this.data.credentials.filter(
        (c) => c.name === name && c.revokedAt === undefined,
      );
      db.prepare("UPDATE credentials SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL").run(
        now,
        name,
      );
      const tokens = db.prepare("DELETE FROM join_tokens WHERE name = ?").run(name).changes;
      if (records.length === 0 && tokens === 0) {
        throw new AuthError("E_NO_SUCH_NODE", `no node or pending token called "${name}"`);
      }
      return {
        result: records.map((c) => c.identity),
        apply: () => {
          for (const c of records) c.revokedAt = now;
          this.data.tokens = this.data.tokens.filter((t) => t.name !== name);
        },
      };
    });
  }

  /**
   * Revoke what lets the node `nodeId` connect (it is being removed): its
   * credentials, and one of `name` issued before node ids were recorded,
   * and delete the tokens it redeemed. Tokens not yet used are left alone:
   * they may be for a new node joining under the same name. Returns the
   * identities revoked (none for a node that never had a credential).
   */
  revokeNode(nodeId: string, name: string): string[] {
    return this.write((db) => {
      const now = this.clock.now();
      const records = this.data.credentials.filter(
        (c) =>
          c.revokedAt === undefined &&
          (c.nodeId === nodeId || (c.nodeId === undefined && c.name === name)),
      );
      const revoke = db.prepare("UPDATE credentials SET revoked_at = ? WHERE identity = ?");
      for (const c of records) revoke.run(now, c.identity);
      db.prepare("DELETE FROM join_tokens WHERE used_by = ?").run(nodeId);
      return {
        result: records.map((c) => c.identity),
        apply: () => {
          for (const c of records) c.revokedAt = now;
          this.data.tokens = this.data.tokens.filter((t) => t.usedBy !== nodeId);
        },
      };
    });
  }

  /** Whether `identity` is revoked or gone (sessions using it must end). */
  isRevoked(identity: string): boolean {
    const cred = this.credential(identity);
    return cred === undefined || cred.revokedAt !== undefined;
  }

  list(): CredentialSummary[] {
    const now = this.clock.now();
    const out: CredentialSummary[] = this.data.credentials.map((c) => ({
      name: c.name,
      status: c.revokedAt === undefined ? "active" : "revoked",
      identity: c.identity,
      ...(c.nodeId === undefined ? {} : { nodeId: c.nodeId }),
      createdAt: c.createdAt,
    }));
    for (const t of this.data.tokens) {
      if (t.usedBy === undefined && t.expiresAt > now)
        out.push({
          name: t.name,
          status: "pending",
          createdAt: t.createdAt,
          expiresAt: t.expiresAt,
        });
    }
    return out;
  }

  private credential(identity: string): CredentialRecord | undefined {
    return this.byIdentity.get(identity);
  }
}
