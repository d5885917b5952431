/**
 * The primary's list of who may connect: one-time join tokens and the
 * per-node pre-shared keys they are exchanged for. Kept in one JSON file
 * (mode 0600) in the data directory, written atomically, so that
 * `picluster node add` and `node revoke` can change it while the primary
 * runs; the primary re-reads it when it changes (reloadIfChanged).
 */
import { randomBytes } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import {
  AuthError,
  type Clock,
  decodeKey,
  encodeKey,
  formatJoinToken,
  JOIN_IDENTITY_PREFIX,
  newJoinToken,
  randomKey,
  writePrivateFile,
} from "@picluster/common";

export const DEFAULT_TOKEN_TTL_MS = 24 * 3_600_000;

interface TokenRecord {
  id: string;
  secret: string;
  name: string;
  createdAt: number;
  expiresAt: number;
  /** The node that redeemed it, and the credential it got. */
  usedBy?: string;
  identity?: string;
}

interface CredentialRecord {
  identity: string;
  key: string;
  name: string;
  nodeId?: string;
  createdAt: number;
  revokedAt?: number;
}

interface FileShape {
  version: 1;
  tokens: TokenRecord[];
  credentials: CredentialRecord[];
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
}

function fileVersion(file: string): string {
  const st = statSync(file);
  return `${st.ino}:${st.size}:${st.mtimeMs}`;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export class CredentialStore {
  private data: FileShape = { version: 1, tokens: [], credentials: [] };
  // Looked up on every TLS handshake: keep it O(1) for thousands of nodes.
  private byIdentity = new Map<string, CredentialRecord>();
  private confirmed = new Set<string>();
  /** Inode, size and mtime of the file as last read or written: every save renames a new file in. */
  private version = "";
  /** Bumped on every change seen or made, so a poller can tell it missed none. */
  generation = 0;

  constructor(
    readonly file: string,
    private readonly clock: Clock,
  ) {}

  /** Load the file (an absent file is an empty store). */
  load(): this {
    this.reloadIfChanged();
    return this;
  }

  /** Re-read the file if another process changed it; true when it did. */
  reloadIfChanged(): boolean {
    let version: string;
    try {
      version = fileVersion(this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw err;
    }
    if (version === this.version) return false;
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.file, "utf8"));
    } catch (err) {
      throw new AuthError(
        "E_BAD_CREDENTIALS_FILE",
        `credential store ${this.file} is not valid JSON`,
        { cause: err },
      );
    }
    const shape = parsed as Partial<FileShape>;
    if (shape.version !== 1 || !Array.isArray(shape.tokens) || !Array.isArray(shape.credentials)) {
      throw new AuthError(
        "E_BAD_CREDENTIALS_FILE",
        `credential store ${this.file}: unknown format`,
      );
    }
    this.data = { version: 1, tokens: shape.tokens, credentials: shape.credentials };
    this.index();
    this.version = version;
    this.generation += 1;
    return true;
  }

  private index(): void {
    this.byIdentity = new Map(this.data.credentials.map((c) => [c.identity, c]));
  }

  /**
   * Write `next` and only then make it current: if the write fails (disk
   * full), memory still matches the file and the caller sees the error.
   */
  private commit(next: FileShape): void {
    writePrivateFile(this.file, `${JSON.stringify(next, null, 2)}\n`);
    this.data = next;
    this.index();
    this.version = fileVersion(this.file);
    this.generation += 1;
  }

  private draft(): FileShape {
    return structuredClone(this.data);
  }

  /** Create the file if there is none (`picluster init`). */
  init(): void {
    this.reloadIfChanged();
    if (this.version === "") this.commit(this.draft());
  }

  /** A one-time join token for a new node called `name`. */
  addToken(name: string, ttlMs = DEFAULT_TOKEN_TTL_MS): string {
    if (!NAME_RE.test(name)) {
      throw new AuthError(
        "E_BAD_NAME",
        `node name "${name}": use letters, digits, '.', '_' or '-' (at most 63)`,
      );
    }
    this.reloadIfChanged();
    if (this.data.credentials.some((c) => c.name === name && c.revokedAt === undefined)) {
      throw new AuthError(
        "E_NODE_EXISTS",
        `node "${name}" already has a credential; revoke it first to join it again`,
      );
    }
    const now = this.clock.now();
    const token = newJoinToken();
    const next = this.draft();
    // Earlier unused tokens for the same name stop working: only the newest counts.
    next.tokens = next.tokens.filter((t) => t.name !== name || t.usedBy !== undefined);
    next.tokens.push({
      id: token.id,
      secret: encodeKey(token.secret),
      name,
      createdAt: now,
      expiresAt: now + ttlMs,
    });
    this.commit(next);
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
   * Exchange a join token for the node's own credential. A node that
   * presents the same token again (it crashed before saving its credential)
   * gets the same credential; another node is refused.
   */
  redeem(tokenId: string, nodeId: string): { identity: string; key: Buffer; name: string } {
    this.reloadIfChanged();
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
    if (token.identity !== undefined) {
      const existing = this.credential(token.identity);
      if (existing !== undefined && existing.revokedAt === undefined) {
        return {
          identity: existing.identity,
          key: decodeKey(existing.key, existing.identity),
          name: existing.name,
        };
      }
    }
    // A node id already held by another node's credential cannot be taken over with a token.
    const holder = this.data.credentials.find(
      (c) => c.nodeId === nodeId && c.revokedAt === undefined,
    );
    if (holder !== undefined) {
      throw new AuthError(
        "E_NODE_ID_TAKEN",
        `node id ${nodeId} already belongs to "${holder.name}"; revoke it first (a cloned SD card keeps the same /etc/machine-id)`,
      );
    }
    const identity = `n-${randomBytes(8).toString("hex")}`;
    const key = randomKey();
    const next = this.draft();
    next.credentials.push({
      identity,
      key: encodeKey(key),
      name: token.name,
      nodeId,
      createdAt: this.clock.now(),
    });
    const used = next.tokens.find((t) => t.id === tokenId);
    if (used !== undefined) {
      used.usedBy = nodeId;
      used.identity = identity;
    }
    this.commit(next);
    return { identity, key, name: token.name };
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
    this.reloadIfChanged();
    if (!this.data.tokens.some((t) => t.identity !== undefined && done.has(t.identity))) return;
    const next = this.draft();
    next.tokens = next.tokens.filter((t) => t.identity === undefined || !done.has(t.identity));
    this.commit(next);
  }

  /** Revoke every credential and pending token of `name`; returns the identities revoked. */
  revoke(name: string): string[] {
    this.reloadIfChanged();
    const now = this.clock.now();
    const next = this.draft();
    const revoked: string[] = [];
    for (const c of next.credentials) {
      if (c.name === name && c.revokedAt === undefined) {
        c.revokedAt = now;
        revoked.push(c.identity);
      }
    }
    const before = next.tokens.length;
    next.tokens = next.tokens.filter((t) => t.name !== name);
    if (revoked.length === 0 && next.tokens.length === before) {
      throw new AuthError("E_NO_SUCH_NODE", `no node or pending token called "${name}"`);
    }
    this.commit(next);
    return revoked;
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
        out.push({ name: t.name, status: "pending", createdAt: t.createdAt });
    }
    return out;
  }

  private credential(identity: string): CredentialRecord | undefined {
    return this.byIdentity.get(identity);
  }
}
