/**
 * Structured logging. Call sites log a message and fields:
 *   log.warn("outbox full, dropped oldest", { dropped, capacity });
 * Lines are JSON (JsonLogger) and go to one LogOutput per process, which writes
 * each whole line synchronously to the console and the rotating file.
 */
import { writeSync } from "node:fs";
import type { MessagePort } from "node:worker_threads";
import type { Clock } from "../clock.js";
import { isoTime } from "../time.js";
import { RotatingFile, type RotatingFileOptions } from "./rotating-file.js";

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  trace(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  fatal(msg: string, fields?: LogFields): void;
  child(bindings: LogFields): Logger;
}

/** Where finished log lines go. Each call gets one complete line ending in `\n`. */
export interface LineSink {
  write(line: string): void;
}

/**
 * The line format pino wrote (and every reader of our logs expects):
 * `{"level":"info","time":"<ISO>","pid":…,<bindings>,<fields>,"msg":…}`.
 * Written by hand rather than with pino: the agent's memory budget is
 * 1.15× a bare node process, and loading pino cost 4.4 MiB of the 9 MiB
 * over it (bench/README.md); what we needed of it is this formatting (the
 * writing, rotation and back-pressure are LogOutput's, below).
 */
class JsonLogger implements Logger {
  /** The bindings as they open every line: `"pid":1,"role":"agent",` (each ends with a comma). */
  private readonly prefix: string;

  constructor(
    private readonly sink: LineSink,
    private readonly min: number,
    private readonly bindings: LogFields,
  ) {
    const inner = stringify(bindings).slice(1, -1);
    this.prefix = inner === "" ? "" : `${inner},`;
  }

  private line(level: LogLevel, msg: string, fields: LogFields | undefined): void {
    if (LOG_LEVELS.indexOf(level) < this.min) return;
    const body = fields === undefined ? "" : stringify(fields).slice(1, -1);
    this.sink.write(
      `{"level":"${level}","time":"${isoTime()}",${this.prefix}${body === "" ? "" : `${body},`}"msg":${JSON.stringify(msg)}}\n`,
    );
  }

  trace(msg: string, fields?: LogFields): void {
    this.line("trace", msg, fields);
  }
  debug(msg: string, fields?: LogFields): void {
    this.line("debug", msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.line("info", msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.line("warn", msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.line("error", msg, fields);
  }
  fatal(msg: string, fields?: LogFields): void {
    this.line("fatal", msg, fields);
  }
  child(bindings: LogFields): Logger {
    return new JsonLogger(this.sink, this.min, { ...this.bindings, ...bindings });
  }
}

/** JSON of a fields object that never throws: errors as {type, message, stack}, bigints as text, cycles cut. */
function stringify(fields: LogFields): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(fields, (_key, value: unknown) => {
    if (typeof value === "bigint") return value.toString();
    if (value instanceof Error)
      return { type: value.name, message: value.message, stack: value.stack };
    if (typeof value === "object" && value !== null) {
      if (seen.has(value)) return "[Circular]";
      seen.add(value);
    }
    return value;
  });
}

export interface LoggerOptions {
  level: LogLevel;
  /** Fields on every line, e.g. `{ role: "agent" }`. */
  bindings?: LogFields;
}

/** A logger writing JSON lines (`level` as a word, `time`, `pid`, bindings, fields, `msg`) to `sink`. */
export function createLogger(sink: LineSink, opts: LoggerOptions): Logger {
  return new JsonLogger(sink, LOG_LEVELS.indexOf(opts.level), {
    pid: process.pid,
    ...opts.bindings,
  });
}

/** A logger that discards everything; for code paths that must not log. */
export function silentLogger(): Logger {
  return createLogger({ write: () => {} }, { level: "fatal" });
}

export interface LogOutputOptions {
  console?: {
    fd?: number;
    /** Turns a JSON line into text for people; without it lines are written as JSON. */
    pretty?: (line: string) => string;
    /** The lowest level the console shows; lines below it go to the file only. Default: all. */
    level?: LogLevel;
    /** Whether routine records (see `routine`) reach the console too. Default: no. */
    routine?: boolean;
    /** How long a line waits for a console that does not keep up before it is dropped (CONSOLE_STALL_MS). */
    stallMs?: number;
  };
  file?: RotatingFileOptions;
  /** For when the file is retried; the system clock unless a test injects one. */
  clock?: Pick<Clock, "now">;
}

/**
 * How long a line waits for a console that does not keep up (a full pipe to
 * a slow journal: stderr is non-blocking once Node has looked at it, so a
 * write can fail with EAGAIN) before it is dropped. The wait blocks the
 * process, so it is spent once per stall: until the console takes a line
 * again, later lines are tried once and dropped, counted.
 */
export const CONSOLE_STALL_MS = 1_000;
/** Between tries of a console that said EAGAIN. */
const CONSOLE_RETRY_MS = 5;

/** How often a log file that could not be written is tried again (on the next line after it). */
export const LOG_FILE_RETRY_MS = 10_000;

/**
 * What the file system says when it cannot take a line now: full, over
 * quota, read-only, failing. Not a bug in us: the line is dropped and
 * counted, never thrown at whoever logged it (a timer, a socket handler),
 * which would end the process. Anything else still throws.
 */
const UNWRITABLE = new Set(["ENOSPC", "EDQUOT", "EFBIG", "EROFS", "EIO"]);

function unwritableCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === "string" && UNWRITABLE.has(code) ? code : undefined;
}

/** A line about the log itself, shaped as the logger's own (JSON, `msg` last). */
function noteLine(level: LogLevel, at: number, msg: string, fields: LogFields): string {
  const time = isoTime(at);
  return `${JSON.stringify({ level, time, pid: process.pid, component: "log", ...fields, msg })}\n`;
}

/** The log file is not being written: since when, why, and how many lines it missed. */
interface FileOutage {
  code: string;
  since: number;
  retryAt: number;
  dropped: number;
}

/** The level word pino puts first on every line (`{"level":"info",…`); undefined if it is not there. */
function levelOf(line: string): LogLevel | undefined {
  const prefix = '{"level":"';
  if (!line.startsWith(prefix)) return undefined;
  const word = line.slice(prefix.length, line.indexOf('"', prefix.length));
  return (LOG_LEVELS as readonly string[]).includes(word) ? (word as LogLevel) : undefined;
}

/**
 * The one place a process's log lines are written. Loggers in this thread
 * write to it directly; worker threads post their lines through a
 * MessagePort (portLogger → receivePortLines), so one owner writes each
 * whole line and lines from many threads never tear or interleave.
 *
 * The file gets every line. The console can be quieter: `console.level`
 * keeps the lines below it out (on a terminal, `picluster up` shows
 * warnings only), and `routine` lines (the periodic liveness record) reach
 * it only when asked for, so they never bury what a person needs to see.
 *
 * Neither ever throws at whoever logged for a disk or a reader that cannot
 * keep up: a file the disk will not take (full, read-only) is skipped and
 * retried every LOG_FILE_RETRY_MS, a console that stalls is waited for once
 * and then skipped until it takes a line, a console whose reader is gone is
 * dropped; what was missed is counted and said.
 */
export class LogOutput implements LineSink {
  private readonly file: RotatingFile | undefined;
  private readonly pretty: ((line: string) => string) | undefined;
  private consoleFd: number | undefined;
  private readonly consoleMin: number;
  private readonly routineToConsole: boolean;
  /** Where routine records go: the file, and the console only if `console.routine` says so. */
  readonly routine: LineSink;
  private readonly clock: Pick<Clock, "now">;
  private outage: FileOutage | undefined;
  private readonly stallMs: number;
  /** Lines the console missed since it last took one; told with the next it takes. */
  private consoleMissed = 0;
  /** A line went out to the console only in part: the next starts on a line of its own. */
  private consoleTorn = false;
  /** For sleeping between tries of a stalled console (Atomics.wait needs shared memory). */
  private readonly sleepCell = new Int32Array(new SharedArrayBuffer(4));
  /** Lines the file did not get (full or read-only disk) since this output was made. */
  fileLinesDropped = 0;
  /** Lines the console did not take in time since this output was made. */
  consoleLinesDropped = 0;

  constructor(opts: LogOutputOptions) {
    this.file = opts.file ? new RotatingFile(opts.file) : undefined;
    this.consoleFd = opts.console ? (opts.console.fd ?? 2) : undefined;
    this.pretty = opts.console?.pretty;
    this.consoleMin = LOG_LEVELS.indexOf(opts.console?.level ?? "trace");
    this.routineToConsole = opts.console?.routine === true;
    this.stallMs = opts.console?.stallMs ?? CONSOLE_STALL_MS;
    this.clock = opts.clock ?? { now: () => Date.now() };
    this.routine = {
      write: (line) => {
        if (this.file !== undefined) this.toFile(this.file, line);
        // With no file the console is the only log there is.
        if (this.routineToConsole || this.file === undefined) this.toConsole(line);
      },
    };
  }

  write(line: string): void {
    if (this.file !== undefined) this.toFile(this.file, line);
    const level = levelOf(line);
    if (level === undefined || LOG_LEVELS.indexOf(level) >= this.consoleMin) this.toConsole(line);
  }

  private toConsole(line: string): void {
    const fd = this.consoleFd;
    if (fd === undefined) return;
    const format = (l: string) => (this.pretty ? this.pretty(l) : l);
    const missed = this.consoleMissed;
    const text =
      (this.consoleTorn ? "\n" : "") +
      (missed > 0
        ? format(
            noteLine("warn", this.clock.now(), "log lines were not written to the console", {
              dropped: missed,
              reason: "it did not keep up",
            }),
          )
        : "") +
      format(line);
    // A stalled console is waited for once; after that each line gets one try.
    if (this.writeConsole(fd, Buffer.from(text), missed > 0 ? 0 : this.stallMs)) {
      this.consoleMissed = 0;
      return;
    }
    this.consoleMissed += 1;
    this.consoleLinesDropped += 1;
  }

  /**
   * All of `buf` to the console, waiting at most `stallMs` (real time: the
   * process is blocked meanwhile) for a full pipe. False when it gave up;
   * a line given up on part-way leaves consoleTorn set.
   */
  private writeConsole(fd: number, buf: Buffer, stallMs: number): boolean {
    const giveUpAt = Date.now() + stallMs;
    let off = 0;
    while (off < buf.length) {
      try {
        off += writeSync(fd, buf, off);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "EPIPE") {
          // `picluster up 2>&1 | head`: the reader is gone. The file keeps every
          // line, so the console stops rather than failing whoever logged.
          this.consoleFd = undefined;
          return true;
        }
        if (code !== "EAGAIN") throw err;
        if (Date.now() >= giveUpAt) {
          // Nothing out: still as torn as before. Part out: torn now.
          if (off > 0) this.consoleTorn = true;
          return false;
        }
        Atomics.wait(this.sleepCell, 0, 0, CONSOLE_RETRY_MS);
      }
    }
    this.consoleTorn = false;
    return true;
  }

  /**
   * Write to the file unless it is out (full or read-only disk): then drop
   * the line, count it, and try the file again every LOG_FILE_RETRY_MS. The
   * console, if any, gets its lines either way.
   */
  private toFile(file: RotatingFile, line: string): void {
    const now = this.clock.now();
    const out = this.outage;
    if (out !== undefined) {
      if (now < out.retryAt) {
        this.dropped(out);
        return;
      }
      const back = {
        file: file.path,
        dropped: out.dropped,
        code: out.code,
        from: isoTime(out.since),
      };
      try {
        // First what the file missed, so that a reader of the file knows there is a gap.
        file.write(noteLine("warn", now, "log lines were not written to this file", back));
      } catch (err) {
        if (unwritableCode(err) === undefined) throw err;
        out.retryAt = now + LOG_FILE_RETRY_MS;
        this.dropped(out);
        return;
      }
      this.outage = undefined;
      this.toConsole(noteLine("info", now, "the log file is written again", back));
    }
    try {
      file.write(line);
    } catch (err) {
      const code = unwritableCode(err);
      if (code === undefined) throw err;
      const outage = { code, since: now, retryAt: now + LOG_FILE_RETRY_MS, dropped: 0 };
      this.outage = outage;
      this.dropped(outage);
      this.toConsole(
        noteLine("warn", now, "the log file cannot be written; logging to the console only", {
          file: file.path,
          code,
          retryEveryMs: LOG_FILE_RETRY_MS,
        }),
      );
    }
  }

  private dropped(out: FileOutage): void {
    out.dropped += 1;
    this.fileLinesDropped += 1;
  }

  close(): void {
    this.file?.close();
  }
}

/**
 * In the owner thread: write every line a worker's portLogger posts on
 * `port` to `sink`. Lines from one port arrive in the order they were logged.
 * Close `port` when the owner shuts down, not when the worker exits: lines
 * the worker logged just before exiting may still be queued.
 */
export function receivePortLines(port: MessagePort, sink: LineSink): void {
  port.on("message", (line: unknown) => {
    if (typeof line === "string") sink.write(line);
  });
}

/** In a worker thread: a logger whose lines go to the owner's LogOutput. */
export function portLogger(port: MessagePort, opts: LoggerOptions): Logger {
  return createLogger({ write: (line) => port.postMessage(line) }, opts);
}
