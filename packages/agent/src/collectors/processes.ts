/**
 * The busiest processes, read from /proc on request (`processes.top`): CPU
 * from two readings of each process's utime+stime `sampleMs` apart, memory
 * from VmRSS. Processes that end between the readings are left out.
 */
import { readFileSync } from "node:fs";
import { monotonicMs } from "@picluster/common";
import type { CollectorContext } from "./context.js";
import { clip, fullPath, listOptional } from "./read.js";

export interface ProcessInfo {
  pid: number;
  user: string;
  /** The kernel's short name (comm). */
  name: string;
  /** Command line, arguments joined by spaces, clipped. */
  command: string;
  /** Percent of one core over the sample. */
  cpuPct: number;
  rssBytes: number;
}

/** Linux reports utime/stime in clock ticks of USER_HZ, 100 on every architecture it runs on. */
const USER_HZ = 100;

interface Reading {
  ticks: number;
  name: string;
  /** Start time in ticks since boot: tells a reused pid from the same process. */
  start: string;
}

function readProc(ctx: CollectorContext, pid: string, file: string): string | undefined {
  try {
    return readFileSync(fullPath(ctx, `proc/${pid}/${file}`), "utf8");
  } catch {
    // Gone (ENOENT/ESRCH) or not ours to read (hidepid): not in the list.
    return undefined;
  }
}

/** utime+stime and comm from /proc/PID/stat; comm may hold spaces and parentheses. */
function readTicks(ctx: CollectorContext, pid: string): Reading | undefined {
  const stat = readProc(ctx, pid, "stat");
  if (stat === undefined) return undefined;
  const open = stat.indexOf("(");
  const close = stat.lastIndexOf(")");
  if (open < 0 || close < open) return undefined;
  const fields = stat.slice(close + 2).split(" ");
  // After the comm: state is field 3, utime 14 and stime 15 (1-based) → indexes 11 and 12 here.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return { ticks: utime + stime, name: stat.slice(open + 1, close), start: fields[19] ?? "" };
}

function users(ctx: CollectorContext): Map<number, string> {
  const map = new Map<number, string>();
  try {
    for (const line of readFileSync(fullPath(ctx, "etc/passwd"), "utf8").split("\n")) {
      const [name, , uid] = line.split(":");
      if (name && uid !== undefined) map.set(Number(uid), name);
    }
  } catch {
    // No passwd (a container): uids are shown as numbers.
  }
  return map;
}

async function pids(ctx: CollectorContext): Promise<string[]> {
  return (await listOptional(ctx, "proc")).filter((n) => /^\d+$/.test(n));
}

export async function topProcesses(
  ctx: CollectorContext,
  n: number,
  sampleMs: number,
): Promise<{ sampledMs: number; byCpu: ProcessInfo[]; byMemory: ProcessInfo[] }> {
  const first = new Map<string, Reading>();
  for (const pid of await pids(ctx)) {
    const r = readTicks(ctx, pid);
    if (r !== undefined) first.set(pid, r);
  }
  const started = monotonicMs();
  await new Promise((resolve) => setTimeout(resolve, sampleMs));
  const elapsedS = (monotonicMs() - started) / 1000;
  const names = users(ctx);
  const all: ProcessInfo[] = [];
  for (const pid of await pids(ctx)) {
    const before = first.get(pid);
    const now = readTicks(ctx, pid);
    // Gone, new, or a reused pid (another process started under it): not measurable.
    if (before === undefined || now === undefined || before.start !== now.start) continue;
    const status = readProc(ctx, pid, "status") ?? "";
    const rssKb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? 0);
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1] ?? Number.NaN);
    const cmdline = (readProc(ctx, pid, "cmdline") ?? "").replaceAll("\0", " ").trim();
    all.push({
      pid: Number(pid),
      user: Number.isNaN(uid) ? "?" : (names.get(uid) ?? String(uid)),
      name: clip(now.name, 64),
      command: clip(cmdline || `[${now.name}]`, 512),
      cpuPct: Math.round(((now.ticks - before.ticks) / USER_HZ / elapsedS) * 100 * 10) / 10,
      rssBytes: rssKb * 1024,
    });
  }
  const top = (key: (p: ProcessInfo) => number) =>
    [...all].sort((a, b) => key(b) - key(a) || a.pid - b.pid).slice(0, n);
  return {
    sampledMs: Math.round(elapsedS * 1000),
    byCpu: top((p) => p.cpuPct),
    byMemory: top((p) => p.rssBytes),
  };
}
