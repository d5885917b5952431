/**
 * A node's log lines for people: the agent writes JSON lines (time, level,
 * msg, fields); `picluster logs` prints each as
 *   2026-12-06 05:52:45  WARN   link  link to the primary lost  reason="…" retryInMs=812
 * in this machine's time zone. Anything that is not such a record is
 * printed as it is, tabs kept. Everything from the node goes through safe.ts.
 */
import { localTime } from "@picluster/common";
import { safeJson, safeLine, safeText } from "./safe.js";

/** Fields every record has, or that say nothing here. */
const SHOWN_APART = new Set(["time", "level", "msg", "pid", "hostname", "role", "component"]);

function fieldText(value: unknown): string {
  if (typeof value === "string") return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/** One line of a log, readable; the line as it is when it is not a JSON record. */
export function readableLogLine(line: string): string {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return safeText(line);
  }
  if (typeof record !== "object" || record === null || Array.isArray(record)) return safeText(line);
  const r = record as Record<string, unknown>;
  if (typeof r.msg !== "string") return safeText(line);
  const at = typeof r.time === "string" ? Date.parse(r.time) : Number(r.time);
  const time = Number.isFinite(at) ? localTime(at) : String(r.time ?? "");
  const level = String(r.level ?? "").toUpperCase();
  const where = typeof r.component === "string" ? `${r.component}  ` : "";
  const fields = Object.entries(r)
    .filter(([k]) => !SHOWN_APART.has(k))
    .map(([k, v]) => `${k}=${fieldText(v)}`)
    .join(" ");
  return safeLine(
    `${time}  ${level.padEnd(5)}  ${where}${r.msg}${fields === "" ? "" : `  ${fields}`}`,
  );
}

/** One line for `logs --json`: a JSON record as it is (escaped for a terminal), other text as a JSON string. */
export function jsonLogLine(line: string): string {
  try {
    return safeJson(JSON.parse(line));
  } catch {
    return safeJson(line);
  }
}

/** Splits streamed text into whole lines; the last, unfinished one waits for the rest. */
export class LineSplitter {
  private rest = "";

  push(text: string): string[] {
    const lines = (this.rest + text).split("\n");
    this.rest = lines.pop() ?? "";
    return lines;
  }

  /** What is left without a newline, when the stream ends. */
  end(): string[] {
    const rest = this.rest;
    this.rest = "";
    return rest === "" ? [] : [rest];
  }
}
