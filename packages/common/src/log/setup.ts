/** The logging every long-running role sets up the same way. */
import type { Config } from "../config/schema.js";
import { createLogger, LOG_LEVELS, type Logger, type LogLevel, LogOutput } from "./logger.js";

export interface ProcessLogOptions {
  config: Config;
  /** Resolved log directory; undefined for console only. */
  logDir: string | undefined;
  /** `agent` or `primary`: the file name and a field on every line. */
  role: string;
  /** Whether the console (stderr) is a terminal: picks text for `format = auto`. */
  isTty: boolean;
  /**
   * The lowest level the console shows (the file gets every line at
   * `[log] level`): `picluster up` on a terminal shows warnings only.
   * Ignored at `debug` and `trace`, which show everything.
   */
  consoleLevel?: LogLevel;
}

/** A formatter for people, loaded only when text output is wanted (it costs a Pi Zero memory). */
async function prettyFormatter(colour: boolean): Promise<(line: string) => string> {
  const { prettyFactory } = await import("pino-pretty");
  const format = prettyFactory({
    colorize: colour,
    translateTime: "SYS:HH:MM:ss.l",
    ignore: "pid,hostname",
    singleLine: true,
  });
  return (line) => format(line);
}

/**
 * One LogOutput (console + rotating `<role>.log`), the root logger writing
 * to it, and `routineLog` for the periodic liveness record: the file gets
 * it, the console only at `debug` and `trace` (every 10 s, it would bury
 * the lines that matter).
 */
export async function openProcessLog(
  opts: ProcessLogOptions,
): Promise<{ log: Logger; routineLog: Logger; output: LogOutput }> {
  const { log: cfg } = opts.config;
  const format = cfg.format === "auto" ? (opts.isTty ? "text" : "json") : cfg.format;
  const pretty = format === "text" ? await prettyFormatter(opts.isTty) : undefined;
  const verbose = LOG_LEVELS.indexOf(cfg.level) <= LOG_LEVELS.indexOf("debug");
  const output = new LogOutput({
    console: {
      ...(pretty === undefined ? {} : { pretty }),
      ...(opts.consoleLevel === undefined || verbose ? {} : { level: opts.consoleLevel }),
      routine: verbose,
    },
    ...(opts.logDir === undefined
      ? {}
      : {
          file: {
            dir: opts.logDir,
            name: `${opts.role}.log`,
            maxBytes: cfg.rotate_size,
            keep: cfg.rotate_count,
          },
        }),
  });
  const settings = { level: cfg.level, bindings: { role: opts.role } };
  return {
    log: createLogger(output, settings),
    routineLog: createLogger(output.routine, settings),
    output,
  };
}
