/**
 * Named API tokens with roles (docs/security.md): who may read, run tasks
 * and jobs (on which nodes), or administer. Kept in the store's SQLite
 * file (migration 7, table `api_tokens`), so that `picluster token add` and
 * `token revoke` change them while the primary runs; a generation counter
 * in the same file tells the primary, which checks it before every token
 * it looks up (one indexed read), so a revocation holds at once.
 *
 * Only a token's SHA-256 is stored: the secret is shown once, when it is
 * made. (A fast hash is enough: the secret is 32 random bytes, not a
 * password, so there is nothing to guess from the hash.) Lookups are by
 * that hash, in memory.
 */
import { createHash, randomBytes } from "node:crypto";
import {
  type Clock,
  formatDuration,
  type Logger,
  PiclusterError,
  parseSelector,
  SelectorError,
  type SelectorTerm,
  silentLogger,
} from "@picluster/common";
import type Database from "better-sqlite3";
import { openDatabase } from "./store/database.js";

export const ROLES = ["viewer", "operator", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** What a request may do, as a number to compare: viewer < operator < admin. */
export function roleRank(role: Role): number {
  return ROLES.indexOf(role);
}

/** E_BAD_TOKEN_NAME, E_BAD_ROLE, E_BAD_SELECTOR, E_TOKEN_EXISTS, E_NOT_FOUND. */
export class ApiTokenError extends PiclusterError {}

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** Secrets carry this prefix, so that a leaked one is recognisable (and grep-able). */
export const SECRET_PREFIX = "pct_";
/** last_used is written at most this often per token. */
const TOUCH_EVERY_MS = 10_000;

export interface ApiToken {
  name: string;
  role: Role;
  /** The selector the token is limited to (`--on`), as given. */
  scope?: string;
  createdAt: number;
  createdBy: string;
  expiresAt?: number;
  lastUsed?: number;
  revokedAt?: number;
}

/** Who a request is, once its bearer token is read. */
export interface Principal {
  /** The token's name; `http-token` for `[http] token`, `anonymous` without one. */
  name: string;
  role: Role | "anonymous";
  /** The nodes it is limited to (parsed `scope`); undefined: every node. */
  scope?: SelectorTerm[];
  scopeText?: string;
  /** Why the bearer token it sent was refused (reads open, so it reads as nobody). */
  refused?: string;
}

interface Row {
  name: string;
  role: Role;
  scope: string | null;
  hash: string;
  created_at: number;
  created_by: string;
  expires_at: number | null;
  last_used: number | null;
  revoked_at: number | null;
}

export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/** A row as the primaries share it: everything but when this primary saw it last used. */
function sharedJson(r: Row): string {
  return JSON.stringify({
    name: r.name,
    role: r.role,
    scope: r.scope,
    hash: r.hash,
    created_at: r.created_at,
    created_by: r.created_by,
    expires_at: r.expires_at,
    revoked_at: r.revoked_at,
  });
}

function fromRow(r: Row): ApiToken {
  return {
    name: r.name,
    role: r.role,
    ...(r.scope === null ? {} : { scope: r.scope }),
    createdAt: r.created_at,
    createdBy: r.created_by,
    ...(r.expires_at === null ? {} : { expiresAt: r.expires_at }),
    ...(r.last_used === null ? {} : { lastUsed: r.last_used }),
    ...(r.revoked_at === null ? {} : { revokedAt: r.revoked_at }),
  };
}

/** Check a scope selector; the parsed terms, or an error naming what is wrong. */
export function parseScope(scope: string): SelectorTerm[] {
  try {
    return parseSelector(scope);
  } catch (err) {
    if (err instanceof SelectorError)
      throw new ApiTokenError("E_BAD_SELECTOR", `--on ${scope}: ${err.message}`);
    throw err;
  }
}

export class ApiTokens {
  private db: Database.Database | undefined;
  private seen = -1;
  private byHash = new Map<string, Row>();
  /** Uses not yet written (name → time). */
  private readonly used = new Map<string, number>();
  private lastTouchWrite = 0;

  constructor(
    readonly file: string,
    private readonly clock: Clock,
    private readonly log: Logger = silentLogger(),
  ) {}

  load(): this {
    this.db ??= openDatabase(this.file, this.log);
    this.reloadIfChanged();
    return this;
  }

  close(): void {
    if (this.db === undefined) return;
    try {
      this.writeUses();
    } catch (err) {
      this.log.warn("cannot record when API tokens were last used", { err: String(err) });
    }
    this.db.close();
    this.db = undefined;
  }

  private get conn(): Database.Database {
    if (this.db === undefined) throw new Error("ApiTokens used before load()");
    return this.db;
  }

  /** Told after every change this store makes or reads from its file (the scale-out mode publishes it). */
  onChange: (() => void) | undefined;

  /** Re-read the table if another connection changed it. */
  reloadIfChanged(): boolean {
    const { n } = this.conn.prepare("SELECT n FROM api_token_generation").get() as { n: number };
    if (n === this.seen) return false;
    const rows = this.conn.prepare("SELECT * FROM api_tokens").all() as Row[];
    this.byHash = new Map(rows.map((r) => [r.hash, r]));
    this.seen = n;
    this.onChange?.();
    return true;
  }

  /**
   * Every token as the scale-out mode shares it (`a.<name>` → JSON): its
   * hash, never a secret; not when it was last used (each primary's own).
   */
  entries(): Map<string, string> {
    this.reloadIfChanged();
    const out = new Map<string, string>();
    for (const r of this.byHash.values()) out.set(`a.${r.name}`, sharedJson(r));
    return out;
  }

  /** Take in a token another primary published (undefined: gone); true when something changed. */
  applyRemote(key: string, json: string | undefined): boolean {
    if (!key.startsWith("a.")) return false;
    const name = key.slice(2);
    const mine = [...this.byHash.values()].find((r) => r.name === name);
    if ((mine === undefined ? undefined : sharedJson(mine)) === json) return false;
    const row = json === undefined ? undefined : (JSON.parse(json) as Omit<Row, "last_used">);
    this.write((db) => {
      db.prepare("DELETE FROM api_tokens WHERE name = ?").run(name);
      if (row !== undefined)
        db.prepare(
          `INSERT INTO api_tokens (name, role, scope, hash, created_at, created_by, expires_at, revoked_at)
           VALUES (@name, @role, @scope, @hash, @created_at, @created_by, @expires_at, @revoked_at)`,
        ).run(row);
    });
    return true;
  }

  private write(change: (db: Database.Database) => void): void {
    const db = this.conn;
    db.transaction(() => {
      change(db);
      db.prepare("UPDATE api_token_generation SET n = n + 1").run();
    }).immediate();
    this.reloadIfChanged();
  }

  /**
   * Make a token; returns it with its secret (shown once, stored hashed).
   * Throws E_BAD_TOKEN_NAME, E_BAD_ROLE, E_BAD_SELECTOR, E_TOKEN_EXISTS.
   */
  add(opts: {
    name: string;
    role: string;
    scope?: string;
    expiresInMs?: number;
    createdBy: string;
  }): ApiToken & { token: string } {
    const { name, role } = opts;
    if (!NAME.test(name))
      throw new ApiTokenError(
        "E_BAD_TOKEN_NAME",
        `"${name}" is not a token name: lower-case letters, digits, . _ -, up to 64, starting with a letter or digit`,
      );
    if (!(ROLES as readonly string[]).includes(role))
      throw new ApiTokenError("E_BAD_ROLE", `--role ${role}: expected viewer, operator or admin`);
    if (opts.scope !== undefined) parseScope(opts.scope);
    const secret = `${SECRET_PREFIX}${randomBytes(32).toString("base64url")}`;
    const now = this.clock.now();
    const expiresAt = opts.expiresInMs === undefined ? null : now + opts.expiresInMs;
    this.write((db) => {
      const exists = db.prepare("SELECT revoked_at FROM api_tokens WHERE name = ?").get(name) as
        | { revoked_at: number | null }
        | undefined;
      if (exists !== undefined && exists.revoked_at === null)
        throw new ApiTokenError(
          "E_TOKEN_EXISTS",
          `a token named "${name}" exists: revoke it first, or choose another name`,
        );
      // A revoked token's name may be used again: the old row (and its hash) goes.
      db.prepare("DELETE FROM api_tokens WHERE name = ?").run(name);
      db.prepare(
        `INSERT INTO api_tokens (name, role, scope, hash, created_at, created_by, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ).run(name, role, opts.scope ?? null, hashSecret(secret), now, opts.createdBy, expiresAt);
    });
    return { ...(this.get(name) as ApiToken), token: secret };
  }

  /** Revoke a token by name: refused from the next request on. Throws E_NOT_FOUND. */
  revoke(name: string): ApiToken {
    let found = false;
    this.write((db) => {
      found =
        db
          .prepare("UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL")
          .run(this.clock.now(), name).changes === 1;
    });
    if (!found) throw new ApiTokenError("E_NOT_FOUND", `no token named "${name}" to revoke`);
    return this.get(name) as ApiToken;
  }

  get(name: string): ApiToken | undefined {
    const row = this.conn.prepare("SELECT * FROM api_tokens WHERE name = ?").get(name) as
      | Row
      | undefined;
    return row === undefined ? undefined : this.withUse(fromRow(row));
  }

  /** Every token (never a secret), newest first. */
  list(): ApiToken[] {
    this.reloadIfChanged();
    return [...this.byHash.values()]
      .map((r) => this.withUse(fromRow(r)))
      .sort((a, b) => b.createdAt - a.createdAt || a.name.localeCompare(b.name));
  }

  private withUse(t: ApiToken): ApiToken {
    const used = this.used.get(t.name);
    return used === undefined || (t.lastUsed ?? 0) >= used ? t : { ...t, lastUsed: used };
  }

  /**
   * The token a bearer secret names, if it may be used now: not revoked,
   * not expired. Checks for changes made elsewhere first.
   */
  authenticate(secret: string): { token: ApiToken } | { refused: string } | undefined {
    if (!secret.startsWith(SECRET_PREFIX)) return undefined;
    this.reloadIfChanged();
    const row = this.byHash.get(hashSecret(secret));
    if (row === undefined) return undefined;
    const now = this.clock.now();
    if (row.revoked_at !== null) return { refused: `the token "${row.name}" was revoked` };
    if (row.expires_at !== null && row.expires_at <= now)
      return {
        refused: `the token "${row.name}" expired ${formatDuration(now - row.expires_at)} ago`,
      };
    this.used.set(row.name, now);
    if (now - this.lastTouchWrite >= TOUCH_EVERY_MS) {
      this.lastTouchWrite = now;
      try {
        this.writeUses();
      } catch (err) {
        // A full disk must not refuse a valid token: the time is kept for the next write.
        this.log.debug("cannot record token use", { err: String(err) });
      }
    }
    return { token: fromRow(row) };
  }

  private writeUses(): void {
    if (this.used.size === 0) return;
    const db = this.conn;
    const st = db.prepare(
      "UPDATE api_tokens SET last_used = max(coalesce(last_used, 0), ?) WHERE name = ?",
    );
    db.transaction(() => {
      for (const [name, at] of this.used) st.run(at, name);
    })();
    this.used.clear();
  }
}

/** A principal for an API token row. */
export function principalOf(token: ApiToken): Principal {
  return {
    name: token.name,
    role: token.role,
    ...(token.scope === undefined
      ? {}
      : { scope: parseScope(token.scope), scopeText: token.scope }),
  };
}
