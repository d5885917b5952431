/**
 * File access for the collectors: every path is relative to the context's
 * root, mandatory files throw CollectorError naming the path, optional ones
 * come back undefined.
 *
 * The *Sync readers are for the files each vitals sample reads from procfs
 * and tmpfs, which the kernel answers from memory in microseconds: reading
 * them synchronously costs about a sixth of the CPU of fs.promises.readFile
 * (0.11 ms against 0.68 ms for seven proc files on an x86 VM), and the agent's
 * budget is 0.1 % of a Pi Zero core. sysfs sensor files can wait on a bus or
 * the firmware, so they stay asynchronous.
 */
import {
  access as accessCb,
  accessSync,
  readdir as readdirCb,
  readFile as readFileCb,
  readFileSync,
} from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { CollectorError, describeError } from "@picluster/common";
import type { CollectorContext } from "./context.js";

export { CollectorError };

// The callback API, promisified: node:fs/promises would load Node's
// FileHandle and readline modules into the agent (~0.3 MiB of RSS, issue 18).
const readFile = promisify(readFileCb);
const readdir = promisify(readdirCb);
const access = promisify(accessCb);

function errorCode(err: unknown): string | undefined {
  if (typeof err === "object" && err !== null && "code" in err && typeof err.code === "string") {
    return err.code;
  }
  return undefined;
}

/** The file or a directory on its path does not exist. */
function isAbsent(err: unknown): boolean {
  const code = errorCode(err);
  return code === "ENOENT" || code === "ENOTDIR";
}

export function fullPath(ctx: CollectorContext, rel: string): string {
  return join(ctx.root, rel);
}

/** A file that must be there on Linux; any failure throws CollectorError. */
export async function readRequired(ctx: CollectorContext, rel: string): Promise<string> {
  const path = fullPath(ctx, rel);
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    throw new CollectorError(path, `cannot read: ${describeError(err)}`, { cause: err });
  }
}

/** readRequired, synchronously: only for procfs files (see the top of this file). */
export function readRequiredSync(ctx: CollectorContext, rel: string): string {
  const path = fullPath(ctx, rel);
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new CollectorError(path, `cannot read: ${describeError(err)}`, { cause: err });
  }
}

/** readOptional, synchronously: only for procfs files (see the top of this file). */
export function readOptionalSync(ctx: CollectorContext, rel: string): string | undefined {
  const path = fullPath(ctx, rel);
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    reportUnreadable(ctx, path, err);
    return undefined;
  }
}

/** exists, synchronously: only for procfs and tmpfs paths (see the top of this file). */
export function existsSync(ctx: CollectorContext, rel: string): boolean {
  const path = fullPath(ctx, rel);
  try {
    accessSync(path);
    return true;
  } catch (err) {
    reportUnreadable(ctx, path, err);
    return false;
  }
}

/** Absence is normal and silent; any other failure of an optional read goes to the debug log. */
function reportUnreadable(ctx: CollectorContext, path: string, err: unknown): void {
  if (!isAbsent(err)) {
    ctx.log?.debug("optional path unreadable, left out", { path, error: describeError(err) });
  }
}

/** A file that may be absent: undefined when it is; any other failure throws. */
export async function readIfPresent(
  ctx: CollectorContext,
  rel: string,
): Promise<string | undefined> {
  const path = fullPath(ctx, rel);
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if (isAbsent(err)) return undefined;
    throw new CollectorError(path, `cannot read: ${describeError(err)}`, { cause: err });
  }
}

/**
 * An optional file: undefined when it cannot be read for any reason. Absence
 * is normal (no Pi firmware, no cpufreq in a VM), and sysfs sensors fail reads
 * with EIO, ENODATA or EAGAIN while their device sleeps; either way the field
 * is left out of this sample rather than failing the whole of it.
 */
export async function readOptional(
  ctx: CollectorContext,
  rel: string,
): Promise<string | undefined> {
  return (await readOptionalBytes(ctx, rel))?.toString("utf8");
}

/** readOptional for binary files (device-tree cells). */
export async function readOptionalBytes(
  ctx: CollectorContext,
  rel: string,
): Promise<Buffer | undefined> {
  const path = fullPath(ctx, rel);
  try {
    return await readFile(path);
  } catch (err) {
    reportUnreadable(ctx, path, err);
    return undefined;
  }
}

/** Entry names of an optional directory; empty when it cannot be listed. */
export async function listOptional(ctx: CollectorContext, rel: string): Promise<string[]> {
  const path = fullPath(ctx, rel);
  try {
    return await readdir(path);
  } catch (err) {
    reportUnreadable(ctx, path, err);
    return [];
  }
}

/** Whether a path exists; an unanswerable check counts as absent (and is logged). */
export async function exists(ctx: CollectorContext, rel: string): Promise<boolean> {
  const path = fullPath(ctx, rel);
  try {
    await access(path);
    return true;
  } catch (err) {
    reportUnreadable(ctx, path, err);
    return false;
  }
}

/** Lines of `key: value` (cpuinfo, meminfo) as pairs, keys and values trimmed. */
export function colonPairs(text: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    pairs.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  return pairs;
}

/** A whole number in a mandatory file, or CollectorError naming the file and the text. */
export function parseCount(
  ctx: CollectorContext,
  rel: string,
  what: string,
  raw: string | undefined,
): number {
  const n = raw === undefined ? Number.NaN : Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new CollectorError(
      fullPath(ctx, rel),
      `${what}: expected a count, got ${JSON.stringify(raw)}`,
    );
  }
  return n;
}

/** A non-negative integer from an optional file's text, else undefined. */
export function optionalCount(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const text = raw.trim();
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Cut a string to a schema's maxLength, so odd hardware never fails validation. */
export function clip(text: string, maxLength: number): string {
  return text.length > maxLength ? text.slice(0, maxLength) : text;
}

/** Two decimals: enough for a percentage of 1/100 s ticks over a few seconds. */
export function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
