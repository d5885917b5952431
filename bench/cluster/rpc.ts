/**
 * Request/response over a forked child's IPC channel, typed by a command
 * map both sides import. The parent side gives every call a deadline and
 * ends the child (politely, then SIGKILL) however the run goes; the child
 * side exits when its parent goes away, so no simulator outlives a bench.
 */
import { type ChildProcess, fork } from "node:child_process";

/** A command map: each command's argument and result (plain JSON data). */
export type Commands = Record<string, { args: unknown; result: unknown }>;

interface Request {
  id: number;
  cmd: string;
  args: unknown;
}

type Reply =
  | { re: number; ok: true; result: unknown }
  | { re: number; ok: false; error: string }
  | { event: string; data: unknown };

export type Handlers<C extends Commands> = {
  [K in keyof C]: (args: C[K]["args"]) => C[K]["result"] | Promise<C[K]["result"]>;
};

/** Where the message came from is our own parent, but it is still checked before use. */
function isRequest(msg: unknown): msg is Request {
  const m = msg as Partial<Request> | null;
  return (
    typeof m === "object" && m !== null && typeof m.id === "number" && typeof m.cmd === "string"
  );
}

function isReply(msg: unknown): msg is Reply {
  return typeof msg === "object" && msg !== null && ("re" in msg || "event" in msg);
}

/**
 * In the child: answer the parent's commands. A handler's failure goes back
 * as an error reply; it does not end the child.
 */
export function serve<C extends Commands>(handlers: Handlers<C>): void {
  const send = process.send?.bind(process);
  if (send === undefined) throw new Error("this script runs as a forked child of the bench");
  // The parent is gone (crashed, killed): nothing will ever close us.
  process.on("disconnect", () => process.exit(0));
  process.on("message", (msg: unknown) => {
    if (!isRequest(msg)) return;
    const handler = handlers[msg.cmd as keyof C];
    const reply = (r: Reply) => {
      if (process.connected) send(r);
    };
    if (handler === undefined) {
      reply({ re: msg.id, ok: false, error: `unknown command "${msg.cmd}"` });
      return;
    }
    Promise.resolve()
      .then(() => handler(msg.args as C[keyof C]["args"]))
      .then(
        (result) => reply({ re: msg.id, ok: true, result }),
        (err: unknown) =>
          reply({
            re: msg.id,
            ok: false,
            error: err instanceof Error ? (err.stack ?? err.message) : String(err),
          }),
      );
  });
}

/** In the child: tell the parent something without being asked (progress). */
export function notify(event: string, data: unknown): void {
  if (process.connected) process.send?.({ event, data });
}

interface PendingCall {
  resolve(result: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

const STDERR_KEEP_CHARS = 8_192;
const EXIT_WAIT_MS = 3_000;

/** In the parent: one forked child and its typed commands. */
export class Child<C extends Commands> {
  readonly process: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number, PendingCall>();
  private stderrTail = "";
  private exited: Promise<void>;
  exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(
    readonly name: string,
    script: string,
    args: readonly string[],
    onEvent: (event: string, data: unknown) => void = () => {},
    /** Node flags for the child (e.g. --cpu-prof). Not the bench's own: a profiled bench would profile every child. */
    execArgv: readonly string[] = [],
  ) {
    this.process = fork(script, [...args], {
      execArgv: [...execArgv],
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    });
    this.process.stderr?.setEncoding("utf8");
    this.process.stderr?.on("data", (text: string) => {
      this.stderrTail = (this.stderrTail + text).slice(-STDERR_KEEP_CHARS);
    });
    this.process.on("message", (msg: unknown) => {
      if (!isReply(msg)) return;
      if ("event" in msg) {
        onEvent(msg.event, msg.data);
        return;
      }
      const call = this.pending.get(msg.re);
      if (call === undefined) return;
      this.pending.delete(msg.re);
      clearTimeout(call.timer);
      if (msg.ok) call.resolve(msg.result);
      else call.reject(new Error(`${this.name}: ${msg.error}`));
    });
    this.exited = new Promise((resolve) => {
      this.process.once("exit", (code, signal) => {
        this.exitInfo = { code, signal };
        for (const [, call] of this.pending) {
          clearTimeout(call.timer);
          call.reject(
            new Error(
              `${this.name} exited (code ${code}, signal ${signal}) before answering${this.stderrHint()}`,
            ),
          );
        }
        this.pending.clear();
        resolve();
      });
    });
    this.process.once("error", (err) => {
      this.stderrTail += `\n[spawn error] ${err.message}`;
    });
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  private stderrHint(): string {
    const tail = this.stderrTail.trim();
    return tail === "" ? "" : `; its stderr ends with:\n${tail.slice(-2_000)}`;
  }

  call<K extends keyof C & string>(
    cmd: K,
    args: C[K]["args"],
    timeoutMs: number,
  ): Promise<C[K]["result"]> {
    if (this.exitInfo !== undefined)
      return Promise.reject(new Error(`${this.name} has exited${this.stderrHint()}`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: "${cmd}" got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (r) => resolve(r as C[K]["result"]),
        reject,
        timer,
      });
      this.process.send({ id, cmd, args } satisfies Request);
    });
  }

  /** Resolves when the child has exited, or rejects after `withinMs`. */
  async waitExit(withinMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.name} still running after ${withinMs} ms`)),
        withinMs,
      );
    });
    try {
      await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL now, and wait for the exit. */
  async kill(): Promise<void> {
    if (this.exitInfo === undefined) this.process.kill("SIGKILL");
    await this.exited;
  }

  /**
   * End the child: `closeCmd` (if any) lets it tidy up and exit by itself;
   * whatever it does, it is killed after a deadline. Never throws.
   */
  async close(closeCmd?: keyof C & string, closeArgs?: unknown): Promise<void> {
    if (this.exitInfo !== undefined) return;
    try {
      if (closeCmd !== undefined) {
        await this.call(closeCmd, closeArgs as C[keyof C & string]["args"], EXIT_WAIT_MS * 2);
      }
      if (this.process.connected) this.process.disconnect();
      await this.waitExit(EXIT_WAIT_MS);
    } catch {
      // A child that will not close in time is killed: that is the handling.
      await this.kill();
    }
  }
}
