/**
 * Runs one task's process: spawned from an argument vector (never a shell
 * string), in a process group of its own so that a timeout, a cancel, or
 * the end of the task kills everything it started; stdout and stderr are
 * handed on in chunks as they come, up to a byte limit.
 */
import { spawn } from "node:child_process";
import { StringDecoder } from "node:string_decoder";
import { monotonicMs } from "@picluster/common";

export interface RunSpec {
  argv: readonly string[];
  cwd: string;
  env: Readonly<Record<string, string>>;
  uid?: number;
  gid?: number;
  timeoutMs: number;
  /** Output bytes (stdout and stderr together) handed on; the rest is dropped and counted. */
  outputLimit: number;
}

export interface RunResult {
  exitCode: number | null;
  signal: string | null;
  durationMs: number;
  truncated: boolean;
  /** Why it was stopped early, if it was. */
  stopped?: "timeout" | "cancel";
}

export type OutputStream = "stdout" | "stderr";

/** After SIGTERM to the group, how long before SIGKILL. */
export const KILL_GRACE_MS = 2_000;
/** Small chunks are gathered this long (or to CHUNK_BYTES) before they are handed on. */
const CHUNK_MS = 50;
const CHUNK_BYTES = 16 * 1024;

/** After the main process exits, how long its output pipes may stay open (held by an escaped grandchild). */
export const PIPE_GRACE_MS = 1_000;

/**
 * Signal every process in the group led by `pid`. Never throws: the group
 * may be gone (ESRCH), or hold a process that switched user (EPERM); this
 * runs from timers and event handlers, where a throw would end the agent.
 */
function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Nothing left to signal, or nothing we may signal.
  }
}

/**
 * Run `spec`; `onOutput` gets each chunk as it is produced. Resolves when
 * the process has exited and its output is drained; rejects only when the
 * program cannot be started (not found, not executable, bad cwd).
 */
export function runProcess(
  spec: RunSpec,
  onOutput: (stream: OutputStream, data: string) => void,
  signal?: AbortSignal,
): Promise<RunResult> {
  const [program, ...args] = spec.argv;
  if (program === undefined) return Promise.reject(new Error("empty command"));
  const started = monotonicMs();
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, {
      cwd: spec.cwd,
      env: { ...spec.env },
      // A new session and process group, led by the child: -pid reaches all of it.
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      ...(spec.uid === undefined ? {} : { uid: spec.uid }),
      ...(spec.gid === undefined ? {} : { gid: spec.gid }),
    });
    let sent = 0;
    let truncated = false;
    let stopped: RunResult["stopped"];
    const pending: Record<OutputStream, string> = { stdout: "", stderr: "" };
    let flushTimer: NodeJS.Timeout | undefined;
    const flush = () => {
      if (flushTimer !== undefined) clearTimeout(flushTimer);
      flushTimer = undefined;
      for (const stream of ["stdout", "stderr"] as const) {
        if (pending[stream] !== "") {
          onOutput(stream, pending[stream]);
          pending[stream] = "";
        }
      }
    };
    const take = (stream: OutputStream, decoder: StringDecoder) => (chunk: Buffer) => {
      if (sent >= spec.outputLimit) {
        truncated = true;
        return;
      }
      let bytes = chunk;
      if (sent + bytes.length > spec.outputLimit) {
        bytes = bytes.subarray(0, spec.outputLimit - sent);
        truncated = true;
      }
      sent += bytes.length;
      pending[stream] += decoder.write(bytes);
      if (pending[stream].length >= CHUNK_BYTES) flush();
      else flushTimer ??= setTimeout(flush, CHUNK_MS);
    };
    const decoders = { stdout: new StringDecoder("utf8"), stderr: new StringDecoder("utf8") };
    child.stdout.on("data", take("stdout", decoders.stdout));
    child.stderr.on("data", take("stderr", decoders.stderr));

    let killTimer: NodeJS.Timeout | undefined;
    const stop = (why: "timeout" | "cancel") => {
      if (stopped !== undefined || child.pid === undefined || child.exitCode !== null) return;
      stopped = why;
      killGroup(child.pid, "SIGTERM");
      killTimer = setTimeout(() => {
        if (child.pid !== undefined) killGroup(child.pid, "SIGKILL");
      }, KILL_GRACE_MS);
    };
    const timeout = setTimeout(() => stop("timeout"), spec.timeoutMs);
    const onAbort = () => stop("cancel");
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) onAbort();

    let exit: { code: number | null; signal: string | null } | undefined;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timeout);
      if (killTimer !== undefined) clearTimeout(killTimer);
      signal?.removeEventListener("abort", onAbort);
      for (const stream of ["stdout", "stderr"] as const) {
        pending[stream] += decoders[stream].end();
      }
      flush();
      resolve({
        exitCode: exit?.code ?? null,
        signal: exit?.signal ?? null,
        durationMs: Math.round(monotonicMs() - started),
        truncated,
        ...(stopped === undefined ? {} : { stopped }),
      });
    };
    child.once("error", (err) => {
      clearTimeout(timeout);
      signal?.removeEventListener("abort", onAbort);
      reject(err);
    });
    child.once("exit", (code, sig) => {
      exit = { code, signal: sig };
      // Whatever the task left running in its group ends with it.
      if (child.pid !== undefined) killGroup(child.pid, "SIGKILL");
      // A process that left the group (setsid) may still hold the pipes:
      // stop waiting for them after a moment rather than forever.
      setTimeout(() => {
        if (child.stdout.readableEnded && child.stderr.readableEnded) return;
        truncated = truncated || child.stdout.readableLength + child.stderr.readableLength > 0;
        child.stdout.destroy();
        child.stderr.destroy();
        finish();
      }, PIPE_GRACE_MS).unref();
    });
    // After exit and once both pipes are closed (nothing left in the group holds them).
    child.once("close", finish);
  });
}

/**
 * Run `spec` to its end and keep what it printed (each stream bounded by
 * spec.outputLimit): for the custom metrics and checks, which read a
 * program's answer rather than stream it. Rejects only when it cannot start.
 */
export async function collectOutput(
  spec: RunSpec,
): Promise<{ result: RunResult; out: string; err: string }> {
  let out = "";
  let err = "";
  const result = await runProcess(spec, (stream, data) => {
    if (stream === "stdout") out += data;
    else err += data;
  });
  return { result, out, err };
}
