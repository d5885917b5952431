/**
 * How nodes prove who they are: TLS 1.3 with pre-shared keys (TLS-PSK).
 * Each node holds a 32-byte key and an identity; the primary holds the same
 * and can revoke it. A new node joins with a one-time token, which is itself
 * a PSK (identity `join:<id>`), and receives its own credential over that
 * encrypted, mutually authenticated link. No certificates anywhere.
 * The threat model is in docs/security.md.
 */

import { randomBytes } from "node:crypto";
import {
  chmodSync,
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import { PiclusterError } from "./errors.js";
import { dataFiles } from "./paths.js";

export const PSK_BYTES = 32;
/** TLS 1.3 only: with a PSK it still does an (EC)DHE exchange, so sessions have forward secrecy. */
export const TLS_MIN_VERSION = "TLSv1.3";
export const TLS_CIPHERS =
  "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";
export const PSK_IDENTITY_HINT = "picluster";
export const JOIN_IDENTITY_PREFIX = "join:";
const TOKEN_PREFIX = "pcj1";

export class AuthError extends PiclusterError {}

export function randomKey(): Buffer {
  return randomBytes(PSK_BYTES);
}

export function encodeKey(key: Buffer): string {
  return key.toString("base64url");
}

export function decodeKey(text: string, what: string): Buffer {
  const key = Buffer.from(text, "base64url");
  if (key.length !== PSK_BYTES || encodeKey(key) !== text) {
    throw new AuthError(
      "E_BAD_CREDENTIAL",
      `${what}: expected a ${PSK_BYTES}-byte key in base64url`,
    );
  }
  return key;
}

export interface JoinToken {
  id: string;
  secret: Buffer;
}

/** The text a user copies: `pcj1.<id>.<secret>`. */
export function formatJoinToken(token: JoinToken): string {
  return `${TOKEN_PREFIX}.${token.id}.${encodeKey(token.secret)}`;
}

export function parseJoinToken(text: string): JoinToken {
  const [prefix, id, secret, ...rest] = text.trim().split(".");
  if (
    prefix !== TOKEN_PREFIX ||
    !id ||
    !/^[0-9a-f]{16}$/.test(id) ||
    secret === undefined ||
    rest.length > 0
  ) {
    throw new AuthError(
      "E_BAD_TOKEN",
      "join token: expected the pcj1.… text printed by `picluster node add NAME`",
    );
  }
  return { id, secret: decodeKey(secret, "join token") };
}

/**
 * The join token kept in `file` (`-`: standard input, read to its end), so
 * that it never appears on a command line. Surrounding whitespace is dropped;
 * a file that cannot be read, is empty or holds no token is an error naming it.
 */
export function readJoinTokenFile(file: string): string {
  const where = file === "-" ? "standard input (--agent-join-token-file -)" : file;
  let text: string;
  try {
    // fd 0, not /dev/stdin: a spawned process's standard input may be a socket, which cannot be opened by path.
    text = readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (err) {
    throw new AuthError(
      "E_JOIN_TOKEN_FILE",
      `cannot read the join token from ${where}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const token = text.trim();
  if (token === "")
    throw new AuthError("E_JOIN_TOKEN_FILE", `no join token in ${where}: it is empty`);
  try {
    parseJoinToken(token);
  } catch (err) {
    throw new AuthError("E_JOIN_TOKEN_FILE", `${where}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return token;
}

export function newJoinToken(): JoinToken {
  return { id: randomBytes(8).toString("hex"), secret: randomKey() };
}

/** What an agent keeps in its credential file (mode 0600). */
export interface NodeCredentialFile {
  identity: string;
  key: Buffer;
  name: string;
}

export function readCredentialFile(path: string): NodeCredentialFile | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new AuthError(
      "E_BAD_CREDENTIAL",
      `cannot read credential ${path}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new AuthError("E_BAD_CREDENTIAL", `credential ${path} is not JSON`, { cause: err });
  }
  const { identity, key, name } = (data ?? {}) as Record<string, unknown>;
  if (typeof identity !== "string" || typeof key !== "string" || typeof name !== "string") {
    throw new AuthError("E_BAD_CREDENTIAL", `credential ${path}: expected identity, key and name`);
  }
  return { identity, key: decodeKey(key, `credential ${path}`), name };
}

/** Write a file only its owner can read, atomically (a crash leaves the old one or the new one). */
export function writePrivateFile(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  // Flushed before the rename: after a power cut the file is the old one or the new one, never empty.
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

export function writeCredentialFile(path: string, cred: NodeCredentialFile): void {
  writePrivateFile(
    path,
    `${JSON.stringify({ identity: cred.identity, key: encodeKey(cred.key), name: cred.name }, null, 2)}\n`,
  );
}

/** The local API token in `dataDir`; made first when `create` is set and there is none. */
export function localHttpToken(dataDir: string, create: boolean): string | undefined {
  const path = dataFiles(dataDir).localHttpToken;
  try {
    const text = readFileSync(path, "utf8").trim();
    if (/^[A-Za-z0-9_-]{32,}$/.test(text)) return text;
  } catch {
    // None yet, or not ours to read (another user's data directory).
  }
  if (!create) return undefined;
  const token = randomBytes(24).toString("base64url");
  writePrivateFile(path, `${token}\n`);
  return token;
}
