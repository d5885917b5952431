/**
 * Running a long-lived role from the CLI: load config, open the log, run the
 * liveness record, and stop cleanly on SIGTERM/SIGINT. A repeated signal is
 * ignored; a stop that hangs is cut by a hard exit after HARD_EXIT_MS.
 */

import { join } from "node:path";
import {
  assertWritableDataDir,
  type Config,
  DataDirError,
  type LoadedConfig,
  type Logger,
  type LogLevel,
  openProcessLog,
  processPathContext,
  resolveDataDir,
  resolveLogDir,
} from "@picluster/common";
import type { CliIo } from "./io.js";

export const HARD_EXIT_MS = 2_000;

export interface RoleContext {
  config: Config;
  dataDir: string;
  log: Logger;
  /** For the periodic `alive` record: the log file, the console only at debug level. */
  routineLog: Logger;
  /** The role's own log file, when it logs to one. */
  logFile?: string;
}

export async function roleContext(
  loaded: LoadedConfig,
  role: string,
  io: CliIo,
  /** The lowest level shown on the console (the file gets all); see openProcessLog. */
  consoleLevel?: LogLevel,
): Promise<RoleContext & { closeLog(): void }> {
  const paths = { ...processPathContext(), cwd: io.cwd };
  const dataDir = resolveDataDir(loaded.config.node.data_dir, paths);
  const logDir = resolveLogDir(loaded.config.log.dir, dataDir, paths);
  const { log, routineLog, output } = await openProcessLog({
    config: loaded.config,
    logDir,
    role,
    isTty: io.errIsTty === true,
    ...(consoleLevel === undefined ? {} : { consoleLevel }),
  });
  for (const n of loaded.notices) log.warn(n.message, { where: n.where, kind: n.kind });
  return {
    config: loaded.config,
    dataDir,
    log,
    routineLog,
    ...(logDir === undefined ? {} : { logFile: join(logDir, `${role}.log`) }),
    closeLog: () => output.close(),
  };
}

/**
 * Whether the primary can write its data directory; if not, say why in one
 * sentence (a read-only SD card, another user's directory) and return false,
 * before anything tries to write there or to the log beside it.
 */
export function writableDataDir(loaded: LoadedConfig, io: CliIo): boolean {
  const dataDir = resolveDataDir(loaded.config.node.data_dir, {
    ...processPathContext(),
    cwd: io.cwd,
  });
  try {
    assertWritableDataDir(dataDir);
    return true;
  } catch (err) {
    if (!(err instanceof DataDirError)) throw err;
    io.err(`error: ${err.message}\n`);
    return false;
  }
}

/** Resolve with the exit code once a signal has stopped the role. */
export function untilSignal(log: Logger, stop: (reason: string) => Promise<void>): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn("already stopping, signal ignored", { signal });
        return;
      }
      stopping = true;
      let graceful = false;
      // Stays armed: if something still holds the process open after a
      // clean stop, it exits anyway.
      setTimeout(() => {
        log.error("did not exit in time, forcing it", { afterMs: HARD_EXIT_MS });
        process.exit(graceful ? 0 : 1);
      }, HARD_EXIT_MS).unref();
      log.info("stopping", { signal });
      stop(`received ${signal}`).then(
        () => {
          graceful = true;
          process.off("SIGTERM", onSignal);
          process.off("SIGINT", onSignal);
          resolve(0);
        },
        (err: unknown) => {
          log.error("stop failed", { err: String(err) });
          resolve(1);
        },
      );
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}
