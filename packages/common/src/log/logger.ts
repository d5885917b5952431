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
  /** `pretty` turns a JSON line into text for people; without it lines are written as JSON. */
  console?: { fd?: number; pretty?: (line: string) => string };
  file?: RotatingFileOptions;
}

/**
 * The one place a process's log lines are written. Loggers in this thread
 * write to it directly; worker threads post their lines through a
 * MessagePort (portLogger → receivePortLines), so one owner writes each
 * whole line and lines from many threads never tear or interleave.
 */
export class LogOutput implements LineSink {
  private readonly file: RotatingFile | undefined;
  private readonly pretty: ((line: string) => string) | undefined;
  private readonly consoleFd: number | undefined;

  constructor(opts: LogOutputOptions) {
    this.file = opts.file ? new RotatingFile(opts.file) : undefined;
    this.consoleFd = opts.console ? (opts.console.fd ?? 2) : undefined;
    this.pretty = opts.console?.pretty;
  }

  write(line: string): void {
    this.file?.write(line);
    if (this.consoleFd !== undefined)
      writeSync(this.consoleFd, this.pretty ? this.pretty(line) : line);
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
