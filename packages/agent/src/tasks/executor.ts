/**
 * Runs the tasks the primary asks for, within this node's catalog: at most
 * `maxRunning` at once, each cancellable by its request id, output streamed
 * back as it comes. Reboot and shutdown answer first and act after (the
 * agent says `bye` in between, so the primary shows the node as left).
 */

import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger, MessageMap, ResponseMap } from "@picluster/common";
import { monotonicMs } from "@picluster/common";
import { type CatalogTask, resolveTask, type TaskEffect } from "./catalog.js";
import type { OutputStream, RunResult } from "./runner.js";

/**
 * The process runner, loaded when the first task runs: most agents run a
 * task now and then, and the memory budget (1.15× a bare node) counts what
 * is loaded at start.
 */
const runProcess: typeof import("./runner.js")["runProcess"] = async (...args) =>
  (await import("./runner.js")).runProcess(...args);

type TaskResultPayload = ResponseMap["task.run"];

export class TaskError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly path?: string,
  ) {
    super(message);
  }
}

export interface ExecutorOptions {
  catalog: ReadonlyMap<string, CatalogTask>;
  maxRunning: number;
  outputLimit: number;
  /** Working directory when a task sets none. */
  defaultCwd: string;
  /** Filesystem root users are looked up under ("/" on a node; a fixture tree in tests). */
  root?: string;
  log: Logger;
  /** A task with a summary (updates.check) succeeded: its whole stdout. */
  onSummarized?(task: string, stdout: string): void;
  /** After a reboot/shutdown task has answered: say bye, then call `act`. */
  onPowerAction(effect: Exclude<TaskEffect, "none">, act: () => Promise<RunResult>): void;
}

/** The PATH tasks, custom metrics and checks run with. */
export const TASK_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** uid, gid and home of `user` from `<root>/etc/passwd` (no subprocess, no native module). */
function lookupUser(
  root: string,
  user: string,
): { uid: number; gid: number; home: string } | undefined {
  let text: string;
  try {
    text = readFileSync(join(root, "etc", "passwd"), "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const [name, , uid, gid, , home] = line.split(":");
    if (name === user && uid !== undefined && gid !== undefined)
      return { uid: Number(uid), gid: Number(gid), home: home ?? "/" };
  }
  return undefined;
}

export class TaskExecutor {
  private readonly running = new Map<number, AbortController>();

  constructor(private readonly opts: ExecutorOptions) {}

  get size(): number {
    return this.running.size;
  }

  /** Cancel request `id` if it is running; true when it was. */
  cancel(id: number): boolean {
    const run = this.running.get(id);
    run?.abort();
    return run !== undefined;
  }

  /** Cancel everything (the agent is stopping). */
  cancelAll(): void {
    for (const run of this.running.values()) run.abort();
  }

  /**
   * Run request `id`. Throws TaskError (not allowed, bad arguments, busy,
   * cannot start) before anything runs; otherwise resolves with the result.
   */
  async run(
    id: number,
    request: MessageMap["task.run"],
    onOutput: (stream: OutputStream, data: string) => void,
  ): Promise<TaskResultPayload> {
    const resolved = resolveTask(this.opts.catalog, request.task, request.args);
    if ("code" in resolved) throw new TaskError(resolved.code, resolved.message, resolved.path);
    if (this.running.size >= this.opts.maxRunning) {
      throw new TaskError(
        "E_BUSY",
        `this node already runs ${this.running.size} tasks ([tasks] max_running = ${this.opts.maxRunning})`,
      );
    }
    if (this.running.has(id))
      throw new TaskError("E_DUPLICATE", `request ${id} is already running`);
    const { task, argvs } = resolved;
    this.opts.log.info("task started", { task: task.name, request: id, args: request.args });
    const started = monotonicMs();

    if (task.internal !== undefined) {
      onOutput("stdout", task.internal());
      return { exitCode: 0, signal: null, durationMs: 0, truncated: false };
    }

    const specs = task.steps.map((step, i) => {
      let identity: { uid: number; gid: number; home: string } | undefined;
      if (step.user !== "") {
        identity = lookupUser(this.opts.root ?? "/", step.user);
        if (identity === undefined)
          throw new TaskError(
            "E_TASK_CONFIG",
            `task "${task.name}": no user "${step.user}" on this node`,
          );
        if (process.getuid?.() !== 0 && identity.uid !== process.getuid?.())
          throw new TaskError(
            "E_TASK_CONFIG",
            `task "${task.name}" runs as "${step.user}", but the agent is not root and cannot switch user`,
          );
      }
      const timeoutMs = step.timeoutMs;
      return {
        argv: argvs[i] ?? [],
        cwd: step.cwd || this.opts.defaultCwd,
        env: {
          PATH: TASK_PATH,
          HOME: identity?.home ?? process.env.HOME ?? "/",
          LANG: "C.UTF-8",
          ...step.env,
        },
        ...(identity === undefined ? {} : { uid: identity.uid, gid: identity.gid }),
        timeoutMs,
        outputLimit: this.opts.outputLimit,
      };
    });

    if (task.effect !== "none") {
      const effect = task.effect;
      onOutput("stdout", `${effect} in a moment\n`);
      this.opts.onPowerAction(effect, () =>
        runProcess(
          specs[0] ?? { argv: [], cwd: "/", env: {}, timeoutMs: 1, outputLimit: 0 },
          (stream, data) => this.opts.log.info("power task output", { stream, data }),
        ),
      );
      return { exitCode: 0, signal: null, durationMs: 0, truncated: false };
    }

    const abort = new AbortController();
    this.running.set(id, abort);
    try {
      let last: RunResult = { exitCode: 0, signal: null, durationMs: 0, truncated: false };
      let truncated = false;
      let timedOut = false;
      let stdout = "";
      // The request's timeout is a budget for the whole task, all steps together.
      const deadline = request.timeoutMs === undefined ? undefined : started + request.timeoutMs;
      for (const stepSpec of specs) {
        const left = deadline === undefined ? Number.POSITIVE_INFINITY : deadline - monotonicMs();
        const spec = { ...stepSpec, timeoutMs: Math.max(1, Math.min(stepSpec.timeoutMs, left)) };
        try {
          last = await runProcess(
            spec,
            (stream, data) => {
              if (task.summarize !== undefined) {
                if (stream === "stdout") stdout += data;
                else onOutput(stream, data);
              } else onOutput(stream, data);
            },
            abort.signal,
          );
        } catch (err) {
          throw new TaskError(
            "E_TASK_START",
            `cannot start ${spec.argv[0]}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
          );
        }
        truncated ||= last.truncated;
        timedOut ||= last.stopped === "timeout";
        if (last.stopped !== undefined) {
          onOutput(
            "stderr",
            last.stopped === "timeout"
              ? `picluster: timed out after ${spec.timeoutMs} ms; the task's processes were killed\n`
              : "picluster: cancelled; the task's processes were killed\n",
          );
        }
        if (last.exitCode !== 0) break;
      }
      if (task.summarize !== undefined && last.exitCode === 0) {
        onOutput("stdout", task.summarize(stdout));
        this.opts.onSummarized?.(task.name, stdout);
      }
      const result = {
        exitCode: last.exitCode,
        signal: last.signal,
        durationMs: Math.round(monotonicMs() - started),
        truncated,
        ...(timedOut ? { timedOut } : {}),
      };
      this.opts.log.info("task ended", { task: task.name, request: id, ...result });
      return result;
    } finally {
      this.running.delete(id);
    }
  }
}
