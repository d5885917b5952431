/**
 * Task runs and their per-node results: written at once (runs are few), read
 * for the API and the dashboard. Statements are prepared once, when the
 * store opens.
 */
import type { StoredNodeResult, StoredTaskRun } from "@picluster/common";
import type Database from "better-sqlite3";
import { storeWriteError } from "./failure.js";

interface TaskRunRow {
  id: number;
  task: string;
  selector: string;
  args: string;
  requested_by: string;
  created_at: number;
  finished_at: number | null;
  status: string;
}

interface TaskResultRow {
  run_id: number;
  node_id: string;
  name: string;
  status: string;
  exit_code: number | null;
  signal: string | null;
  started_at: number | null;
  finished_at: number | null;
  output: string;
  truncated: number;
  error: string | null;
}

function taskRunFromRow(r: TaskRunRow, nodes: StoredNodeResult[]): StoredTaskRun {
  return {
    id: r.id,
    task: r.task,
    selector: r.selector,
    args: JSON.parse(r.args) as Record<string, string>,
    requestedBy: r.requested_by,
    createdAt: r.created_at,
    ...(r.finished_at === null ? {} : { finishedAt: r.finished_at }),
    status: r.status,
    nodes,
  };
}

function resultFromRow(r: Omit<TaskResultRow, "run_id">): StoredNodeResult {
  return {
    nodeId: r.node_id,
    name: r.name,
    status: r.status,
    exitCode: r.exit_code,
    signal: r.signal,
    ...(r.started_at === null ? {} : { startedAt: r.started_at }),
    ...(r.finished_at === null ? {} : { finishedAt: r.finished_at }),
    output: r.output,
    truncated: r.truncated === 1,
    ...(r.error === null ? {} : { error: r.error }),
  };
}

export class TaskRuns {
  private readonly st;

  constructor(db: Database.Database) {
    this.st = {
      insert: db.prepare(
        "INSERT INTO task_runs (task, selector, args, requested_by, created_at, status) VALUES (?, ?, ?, ?, ?, ?)",
      ),
      saveResult: db.prepare(
        `INSERT OR REPLACE INTO task_results
         (run_id, node_id, name, status, exit_code, signal, started_at, finished_at, output, truncated, error)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      finish: db.prepare("UPDATE task_runs SET status = ?, finished_at = ? WHERE id = ?"),
      recent: db.prepare("SELECT * FROM task_runs ORDER BY id DESC LIMIT ?"),
      tally: db.prepare(
        "SELECT run_id, status, count(*) AS n FROM task_results WHERE run_id BETWEEN ? AND ? GROUP BY run_id, status",
      ),
      forNode: db.prepare(
        `SELECT r.*, x.node_id AS x_node, x.name AS x_name, x.status AS x_status, x.exit_code, x.signal,
           x.started_at, x.finished_at AS x_finished, '' AS output, x.truncated, x.error
         FROM task_results x JOIN task_runs r ON r.id = x.run_id
         WHERE x.node_id = ? ORDER BY x.run_id DESC LIMIT ?`,
      ),
      one: db.prepare("SELECT * FROM task_runs WHERE id = ?"),
      results: db.prepare("SELECT * FROM task_results WHERE run_id = ? ORDER BY name"),
      abandonResults: db.prepare(
        "UPDATE task_results SET status = 'failed', error = 'the primary restarted during the run', finished_at = ? WHERE status IN ('pending', 'running') AND run_id IN (SELECT id FROM task_runs WHERE status = 'running')",
      ),
      abandonRuns: db.prepare(
        "UPDATE task_runs SET status = 'failed', finished_at = ? WHERE status = 'running'",
      ),
    };
  }

  /** A new task run; returns its id. */
  insert(run: Omit<StoredTaskRun, "id" | "finishedAt" | "nodes">): number {
    try {
      const { lastInsertRowid } = this.st.insert.run(
        run.task,
        run.selector,
        JSON.stringify(run.args),
        run.requestedBy,
        run.createdAt,
        run.status,
      );
      return Number(lastInsertRowid);
    } catch (err) {
      // A run that cannot be recorded is not started (a full disk): say why, with a code.
      throw storeWriteError(`the task run "${run.task}" cannot be recorded`, err);
    }
  }

  /** Write one node's result of a run (insert or replace). */
  saveResult(runId: number, r: StoredNodeResult): void {
    this.st.saveResult.run(
      runId,
      r.nodeId,
      r.name,
      r.status,
      r.exitCode,
      r.signal,
      r.startedAt ?? null,
      r.finishedAt ?? null,
      r.output,
      r.truncated ? 1 : 0,
      r.error ?? null,
    );
  }

  finish(runId: number, status: string, finishedAt: number): void {
    this.st.finish.run(status, finishedAt, runId);
  }

  /** The most recent runs, newest first, with counts of their nodes by status instead of results. */
  recent(limit: number): StoredTaskRun[] {
    const rows = this.st.recent.all(limit) as TaskRunRow[];
    if (rows.length === 0) return [];
    const counts = new Map<number, Record<string, number>>();
    const tally = this.st.tally.all(rows.at(-1)?.id ?? 0, rows[0]?.id ?? 0) as Array<{
      run_id: number;
      status: string;
      n: number;
    }>;
    for (const t of tally) {
      const c = counts.get(t.run_id) ?? {};
      c[t.status] = t.n;
      counts.set(t.run_id, c);
    }
    return rows.map((r) => ({ ...taskRunFromRow(r, []), counts: counts.get(r.id) ?? {} }));
  }

  /** A node's most recent runs, newest first, each with that node's result only (its output left out: see the run). */
  forNode(nodeId: string, limit: number): StoredTaskRun[] {
    const rows = this.st.forNode.all(nodeId, limit) as Array<
      TaskRunRow & {
        x_node: string;
        x_name: string;
        x_status: string;
        exit_code: number | null;
        signal: string | null;
        started_at: number | null;
        x_finished: number | null;
        output: string;
        truncated: number;
        error: string | null;
      }
    >;
    return rows.map((r) =>
      taskRunFromRow(r, [
        resultFromRow({
          node_id: r.x_node,
          name: r.x_name,
          status: r.x_status,
          exit_code: r.exit_code,
          signal: r.signal,
          started_at: r.started_at,
          finished_at: r.x_finished,
          output: r.output,
          truncated: r.truncated,
          error: r.error,
        }),
      ]),
    );
  }

  /** One run with its per-node results, or undefined. */
  get(id: number): StoredTaskRun | undefined {
    const row = this.st.one.get(id) as TaskRunRow | undefined;
    if (row === undefined) return undefined;
    const results = this.st.results.all(id) as TaskResultRow[];
    return taskRunFromRow(row, results.map(resultFromRow));
  }

  /** Runs left `running` by a primary that stopped: they can no longer finish. */
  abandon(at: number): number {
    this.st.abandonResults.run(at);
    return this.st.abandonRuns.run(at).changes;
  }
}
