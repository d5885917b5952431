/**
 * Structured logging. Call sites log a message and fields:
 *   log.warn("outbox full, dropped oldest", { dropped, capacity });
 * Lines are JSON (pino) and go to one LogOutput per process, which writes
 * each whole line synchronously to the console and the rotating file.
 */
import { writeSync } from "node:fs";
import type { MessagePort } from "node:worker_threads";
import { pino } from "pino";
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

class PinoLogger implements Logger {
  constructor(private readonly p: pino.Logger) {}
  trace(msg: string, fields?: LogFields): void {
    this.p.trace(fields ?? {}, msg);
  }
  debug(msg: string, fields?: LogFields): void {
    this.p.debug(fields ?? {}, msg);
  }
  info(msg: string, fields?: LogFields): void {
    this.p.info(fields ?? {}, msg);
  }
  warn(msg: string, fields?: LogFields): void {
    this.p.warn(fields ?? {}, msg);
  }
  error(msg: string, fields?: LogFields): void {
    this.p.error(fields ?? {}, msg);
  }
  fatal(msg: string, fields?: LogFields): void {
    this.p.fatal(fields ?? {}, msg);
  }
  child(bindings: LogFields): Logger {
    return new PinoLogger(this.p.child(bindings));
  }
}

export interface LoggerOptions {
  level: LogLevel;
  /** Fields on every line, e.g. `{ role: "agent" }`. */
  bindings?: LogFields;
}

/** A logger writing JSON lines (`time`, `level` as a word, `msg`, fields) to `sink`. */
export function createLogger(sink: LineSink, opts: LoggerOptions): Logger {
  const p = pino(
    {
      level: opts.level,
      base: { pid: process.pid, ...opts.bindings },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    { write: (line: string) => sink.write(line) },
  );
  return new PinoLogger(p);
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
  };
  file?: RotatingFileOptions;
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
 */
export class LogOutput implements LineSink {
  private readonly file: RotatingFile | undefined;
  private readonly pretty: ((line: string) => string) | undefined;
  private consoleFd: number | undefined;
  private readonly consoleMin: number;
  private readonly routineToConsole: boolean;
  /** Where routine records go: the file, and the console only if `console.routine` says so. */
  readonly routine: LineSink;

  constructor(opts: LogOutputOptions) {
    this.file = opts.file ? new RotatingFile(opts.file) : undefined;
    this.consoleFd = opts.console ? (opts.console.fd ?? 2) : undefined;
    this.pretty = opts.console?.pretty;
    this.consoleMin = LOG_LEVELS.indexOf(opts.console?.level ?? "trace");
    this.routineToConsole = opts.console?.routine === true;
    this.routine = {
      write: (line) => {
        this.file?.write(line);
        // With no file the console is the only log there is.
        if (this.routineToConsole || this.file === undefined) this.toConsole(line);
      },
    };
  }

  write(line: string): void {
    this.file?.write(line);
    const level = levelOf(line);
    if (level === undefined || LOG_LEVELS.indexOf(level) >= this.consoleMin) this.toConsole(line);
  }

  private toConsole(line: string): void {
    if (this.consoleFd === undefined) return;
    try {
      writeSync(this.consoleFd, this.pretty ? this.pretty(line) : line);
    } catch (err) {
      // `picluster up 2>&1 | head`: the reader is gone. The file keeps every
      // line, so the console stops rather than failing whoever logged.
      if ((err as NodeJS.ErrnoException).code !== "EPIPE") throw err;
      this.consoleFd = undefined;
    }
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
