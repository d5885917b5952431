/** The store's errors: what a failed write means, as a code from the catalogue. */
import { describeError, type ErrorCode, PiclusterError } from "@picluster/common";
import type { StoreFailureCause } from "../events.js";

export class StoreError extends PiclusterError {}

export const FAILURE_CODES: Record<StoreFailureCause, ErrorCode> = {
  disk_full: "E_STORE_FULL",
  read_only: "E_STORE_READONLY",
  io_error: "E_STORE_IO",
  busy: "E_STORE_BUSY",
  other: "E_STORE_WRITE",
};

/** What kind of failure a write to the store met (better-sqlite3 throws SqliteError with `code`). */
export function storeFailureCause(err: unknown): StoreFailureCause {
  const code = String((err as { code?: unknown } | undefined)?.code ?? "");
  if (code === "SQLITE_FULL" || code === "ENOSPC" || code === "EDQUOT") return "disk_full";
  if (code.startsWith("SQLITE_READONLY") || code === "EROFS") return "read_only";
  if (code.startsWith("SQLITE_IOERR") || code === "EIO") return "io_error";
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) return "busy";
  return "other";
}

/** A write that failed, as a StoreError whose code says why (E_STORE_FULL, E_STORE_READONLY…). */
export function storeWriteError(what: string, err: unknown): StoreError {
  return new StoreError(FAILURE_CODES[storeFailureCause(err)], `${what}: ${describeError(err)}`, {
    cause: err,
  });
}
