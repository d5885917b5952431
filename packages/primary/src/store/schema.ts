/**
 * The store's schema as numbered migrations. A database records its version
 * in `schema_version`; opening one runs every later migration in order, each
 * in its own transaction. Append only: a released migration never changes.
 */
import { METRICS } from "./metrics.js";

const rawColumns = METRICS.map((m) => `${m.name} REAL`).join(", ");
const rollupColumns = METRICS.map(
  (m) => `${m.name}_min REAL, ${m.name}_max REAL, ${m.name}_sum REAL, ${m.name}_n INTEGER`,
).join(", ");

/** A rollup table of the custom series (migration 8): min, max, sum and count per series and bucket. */
function customRollupTable(name: string): string {
  return `CREATE TABLE ${name} (
    node_id TEXT NOT NULL,
    series TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    min REAL,
    max REAL,
    sum REAL,
    n INTEGER NOT NULL,
    PRIMARY KEY (node_id, series, bucket)
  ) WITHOUT ROWID;
  CREATE INDEX ${name}_bucket ON ${name} (bucket);`;
}

export const MIGRATIONS: readonly string[] = [
  // 1: nodes, events, raw vitals, 1-minute and 1-hour rollups, task runs.
  `
  CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    labels TEXT NOT NULL,
    address TEXT NOT NULL,
    state TEXT NOT NULL,
    state_since INTEGER NOT NULL,
    state_reason TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    agent_version TEXT NOT NULL,
    legacy INTEGER NOT NULL,
    details TEXT,
    vitals TEXT,
    vitals_at INTEGER,
    last_seq INTEGER NOT NULL,
    dropped INTEGER NOT NULL
  );
  CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts INTEGER NOT NULL,
    kind TEXT NOT NULL,
    node_id TEXT,
    data TEXT NOT NULL
  );
  CREATE INDEX events_ts ON events (ts);
  CREATE INDEX events_node_ts ON events (node_id, ts);
  CREATE TABLE vitals_raw (
    node_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    ${rawColumns},
    PRIMARY KEY (node_id, seq)
  ) WITHOUT ROWID;
  CREATE INDEX vitals_raw_node_ts ON vitals_raw (node_id, ts);
  CREATE INDEX vitals_raw_ts ON vitals_raw (ts);
  CREATE TABLE vitals_1m (
    node_id TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    ${rollupColumns},
    PRIMARY KEY (node_id, bucket)
  ) WITHOUT ROWID;
  CREATE INDEX vitals_1m_bucket ON vitals_1m (bucket);
  CREATE TABLE vitals_1h (
    node_id TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    ${rollupColumns},
    PRIMARY KEY (node_id, bucket)
  ) WITHOUT ROWID;
  CREATE INDEX vitals_1h_bucket ON vitals_1h (bucket);
  CREATE TABLE task_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task TEXT NOT NULL,
    selector TEXT NOT NULL,
    args TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    finished_at INTEGER,
    status TEXT NOT NULL
  );
  CREATE TABLE task_results (
    run_id INTEGER NOT NULL REFERENCES task_runs (id) ON DELETE CASCADE,
    node_id TEXT NOT NULL,
    status TEXT NOT NULL,
    exit_code INTEGER,
    signal TEXT,
    started_at INTEGER,
    finished_at INTEGER,
    output TEXT NOT NULL DEFAULT '',
    truncated INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, node_id)
  );
  `,
  // 2: join tokens and node credentials, moved here from credentials.json so
  // that the CLI and a running primary change them in transactions.
  `
  CREATE TABLE join_tokens (
    id TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_by TEXT,
    identity TEXT
  );
  CREATE TABLE credentials (
    identity TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    node_id TEXT,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
  );
  CREATE INDEX credentials_name ON credentials (name);
  -- Bumped by every change to the two tables above: a process notices
  -- another's change by reading one integer.
  CREATE TABLE credential_generation (n INTEGER NOT NULL);
  INSERT INTO credential_generation (n) VALUES (0);
  `,
  // 3: raw samples lose their (node, ts) index. Samples arrive in time order
  // from every node at once, so each per-node structure costs about one
  // page write per sample; the primary key (node, seq) already clusters a
  // node's samples, and a node's raw chart scans at most its 48 h of them.
  // Ingest at 10 000 agents: 34k → 42k rows/s after 20 s (bench/README.md).
  `
  DROP INDEX vitals_raw_node_ts;
  `,
  // 4: a task result keeps the node's name as it was and why it failed.
  `
  ALTER TABLE task_results ADD COLUMN name TEXT NOT NULL DEFAULT '';
  ALTER TABLE task_results ADD COLUMN error TEXT;
  CREATE INDEX task_runs_created ON task_runs (created_at);
  `,
  // 5: a node's recent task runs (its dashboard page) without a scan of every result.
  `
  CREATE INDEX task_results_node ON task_results (node_id, run_id);
  `,
  // 6: jobs (one task, once per item, on whichever nodes have a free slot).
  // `jobs` is the JobService's record; `job_queues` and `job_items` are the
  // embedded queue's (store/job-queue.ts): per-job counters kept in the same
  // transaction as the items, so counts never scan the items; partial
  // indexes for the two hot lookups (the next queued items, expired leases).
  // Items are keyed by (job, index) without a rowid: every claim and result
  // finds its row by that key, one b-tree walk instead of two (faster in
  // sqlite-queue.test.ts, if within that loaded machine's noise); outputs are
  // capped at 4 KiB, so rows stay small enough for it.
  `
  CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task TEXT NOT NULL,
    selector TEXT NOT NULL,
    items TEXT NOT NULL,
    args TEXT NOT NULL,
    options TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    finished_at INTEGER,
    status TEXT NOT NULL,
    reason TEXT
  );
  CREATE INDEX jobs_status ON jobs (status);
  CREATE TABLE job_queues (
    job_id INTEGER PRIMARY KEY,
    retries INTEGER NOT NULL,
    cancelled INTEGER NOT NULL DEFAULT 0,
    n_total INTEGER NOT NULL DEFAULT 0,
    n_queued INTEGER NOT NULL DEFAULT 0,
    n_running INTEGER NOT NULL DEFAULT 0,
    n_ok INTEGER NOT NULL DEFAULT 0,
    n_failed INTEGER NOT NULL DEFAULT 0,
    n_cancelled INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE job_items (
    job_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    value TEXT NOT NULL,
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    tries INTEGER NOT NULL DEFAULT 0,
    node_id TEXT,
    lease_until INTEGER,
    started_at INTEGER,
    finished_at INTEGER,
    exit_code INTEGER,
    signal TEXT,
    duration_ms INTEGER,
    output TEXT NOT NULL DEFAULT '',
    truncated INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    late INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, idx)
  ) WITHOUT ROWID;
  CREATE INDEX job_items_queued ON job_items (job_id, idx) WHERE state = 'queued';
  CREATE INDEX job_items_leased ON job_items (job_id, lease_until)
    WHERE state IN ('running', 'cancelling');
  `,
  // 7: named API tokens with roles (api-tokens.ts): only each secret's
  // SHA-256 is kept; the generation row tells the primary that
  // `picluster token add|revoke` changed the table.
  `
  CREATE TABLE api_tokens (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    scope TEXT,
    hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    expires_at INTEGER,
    last_used INTEGER,
    revoked_at INTEGER
  );
  CREATE TABLE api_token_generation (n INTEGER NOT NULL);
  INSERT INTO api_token_generation (n) VALUES (0);
  `,
  // 8: the nodes' own series ([metrics.NAME] sections), one row per series and
  // sample, with the same 1-minute and 1-hour rollups as the vitals.
  `
  CREATE TABLE custom_raw (
    node_id TEXT NOT NULL,
    series TEXT NOT NULL,
    ts INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (node_id, series, ts)
  ) WITHOUT ROWID;
  CREATE INDEX custom_raw_ts ON custom_raw (ts);
  ${customRollupTable("custom_1m")}
  ${customRollupTable("custom_1h")}
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;
