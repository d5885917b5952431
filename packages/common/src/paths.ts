import { accessSync, constants, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { DataDirError } from "./errors.js";

/** Facts about the process that decide default locations; injected for tests. */
export interface PathContext {
  cwd: string;
  home: string;
  /** Effective uid, or undefined off POSIX. */
  uid: number | undefined;
}

export function processPathContext(): PathContext {
  return { cwd: process.cwd(), home: homedir(), uid: process.getuid?.() };
}

/** Where a config file is looked for when neither --config nor PICLUSTER_CONFIG names one. */
export function configSearchPaths(ctx: PathContext): string[] {
  return [join(ctx.cwd, "picluster.ini"), "/etc/picluster/picluster.ini"];
}

/**
 * The data directory: the configured one, else /var/lib/picluster for root
 * (a service), else ~/.local/share/picluster (someone trying it out).
 */
export function resolveDataDir(configured: string, ctx: PathContext): string {
  if (configured !== "") return resolve(ctx.cwd, configured);
  if (ctx.uid === 0) return "/var/lib/picluster";
  return join(ctx.home, ".local", "share", "picluster");
}

/** The log directory: the configured one, else `log/` inside the data directory. */
export function resolveLogDir(configured: string, dataDir: string, ctx: PathContext): string {
  return configured !== "" ? resolve(ctx.cwd, configured) : dataFiles(dataDir).logDir;
}

/**
 * The HTTP API token `picluster up` makes when `[http] token` is not set, so
 * that the dashboard and the CLI on this machine can run tasks from the
 * first minute. Kept in the data directory, readable by its owner only.
 */
export const LOCAL_HTTP_TOKEN_FILE = "http-token";

/**
 * Every file picluster keeps in a data directory, by what it is: the one
 * place to look for (or add) a path. A configured path (`[store] file`,
 * `[agent] credential`, `[log] dir`) wins over these where there is one.
 */
export function dataFiles(dataDir: string) {
  return {
    /** The primary's SQLite store. */
    store: join(dataDir, "picluster.db"),
    /** Credentials as picluster before 0.2 kept them; imported into the store once. */
    legacyCredentials: join(dataDir, "credentials.json"),
    /** One JSON line per action someone asked for (0600). */
    auditLog: join(dataDir, "audit.log"),
    /** The local API token `picluster up` makes. */
    localHttpToken: join(dataDir, LOCAL_HTTP_TOKEN_FILE),
    /** A node's own credential (identity and key), written when it joins. */
    credential: join(dataDir, "credential.json"),
    /** A node's id where the machine has no /etc/machine-id. */
    nodeId: join(dataDir, "node-id"),
    /** The data directory of the agent `picluster up` runs beside its primary. */
    localAgentDir: join(dataDir, "local-agent"),
    /** Log files, unless `[log] dir` says otherwise. */
    logDir: join(dataDir, "log"),
  };
}

/**
 * Throw a DataDirError, one sentence long, if the primary could not write
 * in `dir`: it, or the nearest existing directory above it (where it would
 * be made), is on a read-only mount or not writable by this user. Checked
 * before anything is written, so that a read-only SD card reads as that and
 * not as a failed write of some temporary file.
 */
export function assertWritableDataDir(dir: string): void {
  let existing = resolve(dir);
  for (;;) {
    try {
      statSync(existing);
      break;
    } catch (err) {
      const parent = dirname(existing);
      if ((err as NodeJS.ErrnoException).code !== "ENOENT" || parent === existing) throw err;
      existing = parent;
    }
  }
  try {
    // access(2) reports EROFS for a read-only mount even to root, who passes every permission.
    accessSync(existing, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EROFS")
      throw new DataDirError(
        "E_DATA_DIR_READONLY",
        dir,
        `the data directory ${dir} is read-only: picluster needs to write its database and token there; fix the mount or set [node] data_dir`,
      );
    if (code === "EACCES" || code === "EPERM")
      throw new DataDirError(
        "E_DATA_DIR_ACCESS",
        dir,
        `the data directory ${dir} is not writable by this user${existing === resolve(dir) ? "" : ` (${existing} is where it would be made)`}: picluster needs to write its database and token there; run it as the directory's owner or set [node] data_dir`,
      );
    throw err;
  }
}
