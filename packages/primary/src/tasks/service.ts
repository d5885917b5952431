/**
 * Runs a task on the nodes a selector picks: in parallel up to a limit, or
 * in rolling batches for disruptive tasks (a batch, then wait until its
 * nodes are back, then the next; stop at the first failure). Nodes that are
 * not connected are skipped at once, never waited on; a node that drops mid
 * task is failed while the others finish. Every run and each node's result
 * is stored, announced on the event bus, and written to the audit log.
 */

import {
  type Clock,
  describeError,
  type Logger,
  type MessageMap,
  PiclusterError,
  parseSelector,
  type ResponseMap,
  SelectorError,
  selectNodes,
} from "@picluster/common";
import type { AuditLog } from "../audit.js";
import type { EventBus, NodeRunStatus, TaskRunStatus } from "../events.js";
import { lookupNode, type NodeRecord, type Registry } from "../registry.js";
import type { LiveSessions } from "../sessions.js";

type TaskInfo = NonNullable<MessageMap["details"]["tasks"]>[number];

import { RequestError, type RequestOptions } from "../session.js";
import type { Store, StoredNodeResult, StoredTaskRun } from "../store/store.js";

export class TaskRequestError extends PiclusterError {}

export interface TaskRequest {
  task: string;
  /** Selector: `all`, names, `label=value`, a state; joined with commas. */
  on: string;
  args: Record<string, string>;
  /** Rolling batches of this many nodes; disruptive tasks default to 1. */
  batch?: number;
  /** After each batch, wait until its nodes are alive again (default for reboot). */
  waitAlive?: boolean;
  /** Nodes run at once when not batched. */
  concurrency?: number;
  /** Passed to the agent, which caps it by the task's own timeout. */
  timeoutMs?: number;
  requestedBy: string;
}

export type PingResult =
  | { nodeId: string; name: string; ok: true; rttMs: number; offsetMs: number }
  /** `skipped`: a node that cannot be pinged at all (a tutorial node), not one that failed. */
  | { nodeId: string; name: string; ok: false; error: string; skipped?: true };

export interface TaskServiceOptions {
  registry: Registry;
  sessions: LiveSessions;
  events: EventBus;
  store: Store;
  clock: Clock;
  log: Logger;
  /** One line when a run starts, one when it ends, one per cancel. */
  audit: AuditLog;
}

export const DEFAULT_CONCURRENCY = 64;
/** Output kept per node in the store and in memory; the rest is counted as truncated. */
export const MAX_KEPT_OUTPUT = 64 * 1024;
/** How long a rolling batch waits for its nodes to be alive again. */
export const WAIT_ALIVE_MS = 10 * 60_000;
/** When neither the request nor the node says how long a task may take. */
const DEFAULT_REQUEST_MS = 2 * 3_600_000;
/** Past the agent's own timeout, how long the primary still waits for the answer. */
const ANSWER_GRACE_MS = 15_000;

/** Why a node whose own config does not allow the task was skipped. */
export const NOT_ALLOWED = "not allowed by this node's config";

/**
 * Whether `node` allows `task`, from the catalogue in its details; undefined
 * when that is not known (no details yet). A tutorial node allows nothing.
 */
function allows(node: NodeRecord, task: string): boolean | undefined {
  if (node.legacy) return false;
  const tasks = node.details?.tasks;
  return tasks === undefined ? undefined : tasks.some((t) => t.name === task);
}

/** `a, b, c` or `a, b, c and 4 more`: names for a one-line message. */
function someNames(names: readonly string[], max = 5): string {
  const shown = names.slice(0, max).join(", ");
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}

interface LiveRun {
  view: StoredTaskRun;
  abort: AbortController;
  done: Promise<void>;
}

export class TaskService {
  private readonly live = new Map<number, LiveRun>();

  constructor(private readonly opts: TaskServiceOptions) {}

  /** Start a run; returns at once with its id and the nodes it covers. Throws TaskRequestError. */
  start(req: TaskRequest): StoredTaskRun {
    if (!/^[a-z][a-z0-9._-]{0,63}$/.test(req.task))
      throw new TaskRequestError("E_BAD_TASK", `"${req.task}" is not a task name`);
    const nodes = this.select(req.on);
    if (nodes.length === 0)
      throw new TaskRequestError("E_NO_NODES", `selector "${req.on}" matches no node`);
    this.refuseIfAllowedNowhere(req, nodes);

    const disruptive = nodes.some(
      (n) => n.details?.tasks?.find((t) => t.name === req.task)?.disruptive === true,
    );
    const batch = req.batch ?? (disruptive ? 1 : undefined);
    const waitAlive = req.waitAlive ?? req.task === "reboot";
    const now = this.opts.clock.now();
    const id = this.opts.store.insertTaskRun({
      task: req.task,
      selector: req.on,
      args: req.args,
      requestedBy: req.requestedBy,
      createdAt: now,
      status: "running",
    });
    const view: StoredTaskRun = {
      id,
      task: req.task,
      selector: req.on,
      args: req.args,
      requestedBy: req.requestedBy,
      createdAt: now,
      status: "running",
      nodes: nodes.map((n) => ({
        nodeId: n.id,
        name: n.name,
        status: "pending",
        exitCode: null,
        signal: null,
        output: "",
        truncated: false,
      })),
    };
    for (const r of view.nodes) this.opts.store.saveTaskResult(id, r);
    this.audit({
      event: "task.started",
      run: id,
      task: req.task,
      on: req.on,
      args: req.args,
      by: req.requestedBy,
      nodes: nodes.map((n) => n.name),
      batch,
      waitAlive,
    });
    this.opts.events.emit({
      kind: "task.started",
      at: now,
      runId: id,
      task: req.task,
      selector: req.on,
      nodes: nodes.length,
      requestedBy: req.requestedBy,
    });
    const abort = new AbortController();
    const run: LiveRun = { view, abort, done: Promise.resolve() };
    // In the live list before it starts: a run whose nodes are all skipped ends at once.
    this.live.set(id, run);
    run.done = this.execute(run, req, nodes, batch, waitAlive).catch((err: unknown) => {
      this.opts.log.error("task run failed", { run: id, err: describeError(err) });
      this.live.delete(id);
    });
    return structuredClone(view);
  }

  /**
   * A task that none of the selected nodes allows (a typo, or a task only
   * other nodes have) is refused before anything is stored or sent. Nodes
   * whose catalogue is not known yet (no details) count as allowing it:
   * their agent decides.
   */
  private refuseIfAllowedNowhere(req: TaskRequest, nodes: readonly NodeRecord[]): void {
    if (nodes.some((n) => allows(n, req.task) !== false)) return;
    const here = new Set(
      nodes.filter((n) => !n.legacy).flatMap((n) => (n.details?.tasks ?? []).map((t) => t.name)),
    );
    const elsewhere = this.opts.registry
      .list()
      .filter((n) => allows(n, req.task) === true)
      .map((n) => n.name)
      .sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
    const one = elsewhere.length === 1;
    const who = elsewhere.length === 0 ? "no node allows" : "no selected node allows";
    const where =
      elsewhere.length === 0
        ? ""
        : ` (${someNames(elsewhere)} ${one ? "allows" : "allow"} it; "${req.on}" does not select ${one ? "it" : "them"})`;
    const list = [...here].sort().join(", ");
    throw new TaskRequestError(
      "E_TASK_NOT_ALLOWED",
      `${who} "${req.task}"${where}; allowed here: ${list === "" ? "none (each node allows tasks in its own [tasks] and [task.NAME] config)" : list}`,
    );
  }

  /** A run as it stands (live or stored). */
  get(id: number): StoredTaskRun | undefined {
    const live = this.live.get(id);
    return live !== undefined ? structuredClone(live.view) : this.opts.store.taskRun(id);
  }

  /**
   * The most recent runs, newest first: with counts by status, or for one
   * node (`nodeId`) with that node's result. Live runs show where they stand.
   */
  list(limit: number, nodeId?: string): StoredTaskRun[] {
    const stored =
      nodeId === undefined
        ? this.opts.store.taskRuns(limit)
        : this.opts.store.taskRunsForNode(nodeId, limit);
    return stored.map((r) => {
      const live = this.live.get(r.id);
      if (live === undefined) return r;
      if (nodeId !== undefined)
        return {
          ...r,
          status: live.view.status,
          nodes: live.view.nodes
            .filter((n) => n.nodeId === nodeId)
            .map((n) => ({ ...structuredClone(n), output: "" })),
        };
      const counts: Record<string, number> = {};
      for (const n of live.view.nodes) counts[n.status] = (counts[n.status] ?? 0) + 1;
      return { ...r, status: live.view.status, counts };
    });
  }

  /**
   * The tasks the nodes allow, from their details: each once, with the
   * names of the nodes that allow it (a task runs only where it is allowed).
   */
  catalog(): Array<TaskInfo & { nodes: string[] }> {
    const byName = new Map<string, TaskInfo & { nodes: string[] }>();
    for (const node of this.opts.registry.list()) {
      for (const t of node.details?.tasks ?? []) {
        const entry = byName.get(t.name);
        if (entry === undefined) byName.set(t.name, { ...structuredClone(t), nodes: [node.name] });
        else entry.nodes.push(node.name);
      }
    }
    return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Cancel a running run: nodes not started are cancelled, running ones told to stop. */
  cancel(id: number, by: string): StoredTaskRun | undefined {
    const live = this.live.get(id);
    if (live === undefined) return this.opts.store.taskRun(id);
    this.audit({ event: "task.cancel", run: id, by });
    live.abort.abort();
    return structuredClone(live.view);
  }

  /**
   * Ping the selected nodes at once: round-trip time and clock offset of
   * each (offset = node clock − primary clock at the midpoint).
   */
  async ping(on: string, timeoutMs = 2_000): Promise<PingResult[]> {
    const nodes = this.select(on);
    return Promise.all(
      nodes.map(async (n): Promise<PingResult> => {
        const base = { nodeId: n.id, name: n.name };
        const session = this.opts.sessions.get(n.id);
        // The tutorial's protocol has no ping: such a node is skipped, not failed.
        if (n.legacy) return { ...base, ok: false, skipped: true, error: "tutorial node, no ping" };
        if (session === undefined)
          return { ...base, ok: false, error: `not connected (${n.state})` };
        const sentWall = this.opts.clock.now();
        const sent = performance.now();
        try {
          const pong = await session.request("ping", {}, timeoutMs);
          const rttMs = performance.now() - sent;
          return { ...base, ok: true, rttMs, offsetMs: pong.time - (sentWall + rttMs / 2) };
        } catch (err) {
          return { ...base, ok: false, error: describeError(err) };
        }
      }),
    );
  }

  /**
   * Ask one node (by name or id) a request it answers directly
   * (`processes.top`, `logs.tail`, `details.get`).
   */
  ask<T extends "processes.top" | "logs.tail" | "details.get">(
    node: string,
    type: T,
    payload: MessageMap[T],
    timeoutMs = 10_000,
    opts: RequestOptions = {},
  ): Promise<ResponseMap[T]> {
    const record = lookupNode(this.opts.registry, node);
    if (record === undefined)
      return Promise.reject(new TaskRequestError("E_NO_SUCH_NODE", `no node "${node}"`));
    const session = this.opts.sessions.get(record.id);
    if (session === undefined || record.legacy)
      return Promise.reject(
        new TaskRequestError(
          "E_NOT_CONNECTED",
          record.legacy
            ? `"${record.name}" is a tutorial (legacy) node`
            : `"${record.name}" is not connected (${record.state})`,
        ),
      );
    return session.request(type, payload, timeoutMs, opts);
  }

  /** The nodes selector `on` picks; a name that matches no node is an error. */
  private select(on: string): NodeRecord[] {
    let terms: ReturnType<typeof parseSelector>;
    try {
      terms = parseSelector(on);
    } catch (err) {
      if (err instanceof SelectorError) throw new TaskRequestError("E_BAD_SELECTOR", err.message);
      throw err;
    }
    const { nodes, unknownNames } = selectNodes(this.opts.registry.list(), terms);
    if (unknownNames.length > 0)
      throw new TaskRequestError(
        "E_NO_SUCH_NODE",
        `no node called ${unknownNames.map((n) => `"${n}"`).join(", ")}`,
      );
    return nodes;
  }

  /** Wait for a run to end (tests, shutdown). */
  async settled(id: number): Promise<void> {
    await this.live.get(id)?.done;
  }

  /** Cancel every run and wait for them (the primary is stopping). */
  async close(): Promise<void> {
    for (const run of this.live.values()) run.abort.abort();
    await Promise.all([...this.live.values()].map((r) => r.done));
  }

  private async execute(
    run: LiveRun,
    req: TaskRequest,
    nodes: NodeRecord[],
    batch: number | undefined,
    waitAlive: boolean,
  ): Promise<void> {
    const { view, abort } = run;
    const results = new Map(view.nodes.map((r) => [r.nodeId, r]));
    const pending: NodeRecord[] = [];
    // Not allowed there, or not connected now: skipped at once, never sent
    // or waited on. Only nodes that tried can fail the run.
    for (const node of nodes) {
      const why = node.legacy
        ? "a tutorial (legacy) node: never sent tasks"
        : allows(node, req.task) === false
          ? NOT_ALLOWED
          : !this.opts.sessions.has(node.id) || node.state !== "alive"
            ? `not connected (${node.state})`
            : undefined;
      if (why !== undefined) this.finishNode(view, results.get(node.id), "skipped", { error: why });
      else pending.push(node);
    }

    if (batch === undefined) {
      const limit = Math.max(1, req.concurrency ?? DEFAULT_CONCURRENCY);
      let next = 0;
      const worker = async () => {
        while (next < pending.length) {
          const node = pending[next++] as NodeRecord;
          await this.runOnNode(view, results.get(node.id), node, req, abort.signal);
        }
      };
      await Promise.all(Array.from({ length: Math.min(limit, pending.length) }, worker));
    } else {
      for (let i = 0; i < pending.length; i += batch) {
        const group = pending.slice(i, i + batch);
        const failed = (
          await Promise.all(
            group.map(async (node) => {
              const result = results.get(node.id);
              await this.runOnNode(view, result, node, req, abort.signal, waitAlive);
              return result?.status !== "ok";
            }),
          )
        ).some(Boolean);
        if (failed || abort.signal.aborted) {
          for (const node of pending.slice(i + batch)) {
            this.finishNode(
              view,
              results.get(node.id),
              abort.signal.aborted ? "cancelled" : "skipped",
              {
                error: abort.signal.aborted
                  ? "cancelled"
                  : "stopped after a failure in an earlier batch",
              },
            );
          }
          break;
        }
      }
    }

    const count = (s: NodeRunStatus) => view.nodes.filter((r) => r.status === s).length;
    const status: TaskRunStatus = abort.signal.aborted
      ? "cancelled"
      : count("failed") > 0
        ? "failed"
        : "ok";
    const at = this.opts.clock.now();
    view.status = status;
    view.finishedAt = at;
    this.opts.store.finishTaskRun(view.id, status, at);
    this.live.delete(view.id);
    const summary = {
      ok: count("ok"),
      failed: count("failed"),
      skipped: count("skipped"),
      cancelled: count("cancelled"),
    };
    this.audit({
      event: "task.finished",
      run: view.id,
      task: view.task,
      by: view.requestedBy,
      status,
      ...summary,
      nodes: view.nodes.map((r) => ({
        node: r.name,
        status: r.status,
        exitCode: r.exitCode,
        ...(r.error === undefined ? {} : { error: r.error }),
      })),
    });
    this.opts.events.emit({
      kind: "task.finished",
      at,
      runId: view.id,
      task: view.task,
      status,
      ...summary,
    });
  }

  private async runOnNode(
    view: StoredTaskRun,
    result: StoredNodeResult | undefined,
    node: NodeRecord,
    req: TaskRequest,
    signal: AbortSignal,
    waitAlive = false,
  ): Promise<void> {
    if (result === undefined) return;
    if (signal.aborted) {
      this.finishNode(view, result, "cancelled", { error: "cancelled before it started" });
      return;
    }
    const session = this.opts.sessions.get(node.id);
    if (session === undefined) {
      this.finishNode(view, result, "skipped", { error: "not connected" });
      return;
    }
    result.status = "running";
    result.startedAt = this.opts.clock.now();
    this.opts.store.saveTaskResult(view.id, result);
    // The node kills the task at its own timeout (or the request's); wait that long and a little.
    const ownMs = node.details?.tasks?.find((t) => t.name === req.task)?.timeoutMs;
    const timeoutMs = (req.timeoutMs ?? ownMs ?? DEFAULT_REQUEST_MS) + ANSWER_GRACE_MS;
    let kept = 0;
    try {
      const answer = await session.request(
        "task.run",
        {
          task: req.task,
          args: req.args,
          ...(req.timeoutMs === undefined ? {} : { timeoutMs: req.timeoutMs }),
        },
        timeoutMs,
        {
          signal,
          onOutput: (out) => {
            if (kept < MAX_KEPT_OUTPUT) {
              const piece = out.data.slice(0, MAX_KEPT_OUTPUT - kept);
              result.output += piece;
              kept += piece.length;
              if (piece.length < out.data.length) result.truncated = true;
            } else result.truncated = true;
            this.opts.events.emit({
              kind: "task.output",
              at: this.opts.clock.now(),
              runId: view.id,
              nodeId: node.id,
              name: node.name,
              stream: out.stream,
              data: out.data,
            });
          },
        },
      );
      result.truncated ||= answer.truncated;
      let status: NodeRunStatus =
        answer.exitCode === 0 ? "ok" : signal.aborted ? "cancelled" : "failed";
      let error: string | undefined =
        status === "ok"
          ? undefined
          : answer.signal !== null
            ? `killed by ${answer.signal}`
            : `exit code ${answer.exitCode}`;
      if (status === "ok" && waitAlive) {
        const back = await this.waitBack(node.id, signal);
        if (back !== undefined) {
          status = "failed";
          error = back;
        }
      }
      this.finishNode(view, result, status, {
        exitCode: answer.exitCode,
        signal: answer.signal,
        ...(error === undefined ? {} : { error }),
      });
    } catch (err) {
      const error =
        err instanceof RequestError
          ? err.code === "E_DISCONNECTED"
            ? "the node disconnected during the task"
            : `${err.code}: ${err.message}`
          : describeError(err);
      this.finishNode(view, result, signal.aborted ? "cancelled" : "failed", { error });
    }
  }

  /**
   * After a reboot: wait for the node to leave and come back alive.
   * Resolves undefined when it did, or why not.
   */
  private waitBack(nodeId: string, signal: AbortSignal): Promise<string | undefined> {
    return new Promise((resolve) => {
      let gone = false;
      const finish = (why: string | undefined) => {
        off();
        cancelTimer();
        signal.removeEventListener("abort", onAbort);
        resolve(why);
      };
      const off = this.opts.events.on((e) => {
        if (e.kind !== "node.state" || e.nodeId !== nodeId) return;
        if (e.to !== "alive") gone = true;
        else if (gone) finish(undefined);
      });
      const cancelTimer = this.opts.clock.after(WAIT_ALIVE_MS, () =>
        finish(`not alive again within ${WAIT_ALIVE_MS / 60_000} min`),
      );
      const onAbort = () => finish("cancelled while waiting for the node to come back");
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  private finishNode(
    view: StoredTaskRun,
    result: StoredNodeResult | undefined,
    status: NodeRunStatus,
    extra: { exitCode?: number | null; signal?: string | null; error?: string },
  ): void {
    if (result === undefined) return;
    const at = this.opts.clock.now();
    result.status = status;
    result.finishedAt = at;
    result.exitCode = extra.exitCode ?? null;
    result.signal = extra.signal ?? null;
    if (extra.error !== undefined) result.error = extra.error;
    this.opts.store.saveTaskResult(view.id, result);
    this.opts.events.emit({
      kind: "task.node",
      at,
      runId: view.id,
      task: view.task,
      nodeId: result.nodeId,
      name: result.name,
      status,
      exitCode: result.exitCode,
      signal: result.signal,
      durationMs: result.startedAt === undefined ? null : at - result.startedAt,
      ...(extra.error === undefined ? {} : { error: extra.error }),
    });
  }

  private audit(record: Record<string, unknown>): void {
    this.opts.audit.write(record);
  }
}
