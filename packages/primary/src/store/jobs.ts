/**
 * The `jobs` table (migration 6): what each job was asked to do, by whom,
 * and how it stands. Its items live in the job queue (job-queue.ts). Rows
 * are few and change a handful of times per job, so each write is its own
 * statement, on the connection the caller passes.
 */
import type { JobItemsSummary, JobStatus, StoredJob } from "@picluster/common";
import type Database from "better-sqlite3";

/** A job as its row says, without the counts (the queue keeps those). */
export type JobRecord = Omit<StoredJob, "counts">;

export type NewJob = Omit<JobRecord, "id" | "finishedAt" | "reason">;

interface JobRow {
  id: number;
  task: string;
  selector: string;
  items: string;
  args: string;
  options: string;
  requested_by: string;
  created_at: number;
  finished_at: number | null;
  status: JobStatus;
  reason: string | null;
}

interface Options {
  perNode?: number;
  /** The asking token's scope (a selector), when it had one. */
  scope?: string;
  retries: number;
  retryFailed: boolean;
  timeoutMs?: number;
}

function fromRow(r: JobRow): JobRecord {
  const o = JSON.parse(r.options) as Options;
  return {
    id: r.id,
    task: r.task,
    selector: r.selector,
    items: JSON.parse(r.items) as JobItemsSummary,
    args: JSON.parse(r.args) as Record<string, string>,
    ...(o.perNode === undefined ? {} : { perNode: o.perNode }),
    ...(o.scope === undefined ? {} : { scope: o.scope }),
    retries: o.retries,
    retryFailed: o.retryFailed,
    ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }),
    requestedBy: r.requested_by,
    createdAt: r.created_at,
    ...(r.finished_at === null ? {} : { finishedAt: r.finished_at }),
    status: r.status,
    ...(r.reason === null ? {} : { reason: r.reason }),
  };
}

/**
 * Where the job service keeps its jobs' records: this store's table when
 * embedded; in the scale-out mode, a replica every primary keeps of the
 * shared job log (cluster/job-log.ts), where an insert waits for a
 * cluster-wide id.
 */
export interface JobRecords {
  insert(job: NewJob): number | Promise<number>;
  setStatus(id: number, status: JobStatus, finishedAt?: number, reason?: string): void;
  get(id: number): JobRecord | undefined;
  list(limit: number): JobRecord[];
  unfinished(): JobRecord[];
}

export class JobStore implements JobRecords {
  private readonly st;

  constructor(db: Database.Database) {
    this.st = {
      insert: db.prepare(
        `INSERT INTO jobs (id, task, selector, items, args, options, requested_by, created_at, status)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      setStatus: db.prepare(
        "UPDATE jobs SET status = ?, finished_at = ?, reason = coalesce(?, reason) WHERE id = ?",
      ),
      get: db.prepare("SELECT * FROM jobs WHERE id = ?"),
      list: db.prepare("SELECT * FROM jobs ORDER BY id DESC LIMIT ?"),
      unfinished: db.prepare(
        "SELECT * FROM jobs WHERE status IN ('queuing', 'running', 'cancelling') ORDER BY id",
      ),
    };
  }

  /** Store a new job; its id is the next free one, or `id` when given (a replica's copy). */
  insert(job: NewJob, id?: number): number {
    const options: Options = {
      ...(job.perNode === undefined ? {} : { perNode: job.perNode }),
      ...(job.scope === undefined ? {} : { scope: job.scope }),
      retries: job.retries,
      retryFailed: job.retryFailed,
      ...(job.timeoutMs === undefined ? {} : { timeoutMs: job.timeoutMs }),
    };
    const { lastInsertRowid } = this.st.insert.run(
      id ?? null,
      job.task,
      job.selector,
      JSON.stringify(job.items),
      JSON.stringify(job.args),
      JSON.stringify(options),
      job.requestedBy,
      job.createdAt,
      job.status,
    );
    return Number(lastInsertRowid);
  }

  /** A new status; `finishedAt` for the final ones, `reason` when it ended early. */
  setStatus(id: number, status: JobStatus, finishedAt?: number, reason?: string): void {
    this.st.setStatus.run(status, finishedAt ?? null, reason ?? null, id);
  }

  get(id: number): JobRecord | undefined {
    const row = this.st.get.get(id) as JobRow | undefined;
    return row === undefined ? undefined : fromRow(row);
  }

  /** The most recent jobs, newest first. */
  list(limit: number): JobRecord[] {
    return (this.st.list.all(limit) as JobRow[]).map(fromRow);
  }

  /** Jobs a stopped primary left unfinished, oldest first: a new primary resumes them. */
  unfinished(): JobRecord[] {
    return (this.st.unfinished.all() as JobRow[]).map(fromRow);
  }
}
