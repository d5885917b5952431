/**
 * Opening the store's SQLite file and migrating it to the current schema:
 * the one place a connection is made, for the Store, the CredentialStore,
 * the job queue and the CLI alike.
 */
import { chmodSync, closeSync, openSync, statSync } from "node:fs";
import { describeError, type Logger } from "@picluster/common";
import Database from "better-sqlite3";
import { StoreError } from "./failure.js";
import { MIGRATIONS, SCHEMA_VERSION } from "./schema.js";

/**
 * Open the store's SQLite file (creating it, mode 0600: it holds node
 * credentials) in WAL mode and migrate it to the current schema. The
 * primary's Store and CredentialStore and the CLI each open their own
 * connection; SQLite's locking orders their transactions.
 */
export function openDatabase(file: string, log: Logger): Database.Database {
  let db: Database.Database;
  try {
    restrictMode(file);
    db = new Database(file);
    db.pragma("journal_mode = WAL");
    // FULL: a committed (and so acknowledged) sample survives power loss too.
    db.pragma("synchronous = FULL");
    db.pragma("foreign_keys = ON");
    db.pragma("busy_timeout = 5000");
    // 64 MiB of page cache (SQLite's default is 2 MiB): ingest touches a leaf
    // page of every reporting node per batch (bench/README.md, suite store).
    db.pragma("cache_size = -65536");
  } catch (err) {
    throw new StoreError("E_STORE_OPEN", `cannot open the store ${file}: ${describeError(err)}`, {
      cause: err,
    });
  }
  try {
    migrate(db, file, log);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/** Create `file` as 0600, or take group/other access away from it and its WAL files. */
function restrictMode(file: string): void {
  if (file === ":memory:") return;
  closeSync(openSync(file, "a", 0o600));
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      if ((statSync(f).mode & 0o077) !== 0) chmodSync(f, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
}

function migrate(db: Database.Database, file: string, log: Logger): void {
  db.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  const row = db.prepare("SELECT version FROM schema_version").get() as
    | { version: number }
    | undefined;
  const from = row?.version ?? 0;
  if (from > SCHEMA_VERSION) {
    throw new StoreError(
      "E_STORE_VERSION",
      `${file} has schema version ${from}, newer than this picluster (${SCHEMA_VERSION}); upgrade picluster`,
    );
  }
  for (let v = from; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v] as string);
      db.prepare("DELETE FROM schema_version").run();
      db.prepare("INSERT INTO schema_version (version) VALUES (?)").run(v + 1);
    })();
    log.info("store migrated", { file, version: v + 1 });
  }
}
