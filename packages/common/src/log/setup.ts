/** The logging every long-running role sets up the same way. */
import type { Config } from "../config/schema.js";
import { createLogger, type Logger, LogOutput } from "./logger.js";

export interface ProcessLogOptions {
  config: Config;
  /** Resolved log directory; undefined for console only. */
  logDir: string | undefined;
  /** `agent` or `primary`: the file name and a field on every line. */
  role: string;
  /** Whether the console (stderr) is a terminal: picks text for `format = auto`. */
  isTty: boolean;
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

/** One LogOutput (console + rotating `<role>.log`) and the root logger writing to it. */
export async function openProcessLog(
  opts: ProcessLogOptions,
): Promise<{ log: Logger; output: LogOutput }> {
  const { log: cfg } = opts.config;
  const format = cfg.format === "auto" ? (opts.isTty ? "text" : "json") : cfg.format;
  const pretty = format === "text" ? await prettyFormatter(opts.isTty) : undefined;
  const output = new LogOutput({
    console: pretty === undefined ? {} : { pretty },
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
  return { log: createLogger(output, { level: cfg.level, bindings: { role: opts.role } }), output };
}
