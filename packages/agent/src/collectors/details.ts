/** The `details` message: what a node is, sent once per connection and on request. */
import type { MessageMap } from "@picluster/common";
import { readBoard } from "./board.js";
import type { CollectorContext } from "./context.js";
import { cpuModel, PROC_STAT, parseCpuinfo, parseProcStat, readFreqRange } from "./cpu.js";
import { MOUNTS, parseMounts, readDiskSpace } from "./disks.js";
import { MEMINFO, parseMeminfo } from "./memory.js";
import { NET_DEV, parseNetDev, readInterfaces } from "./net.js";
import { readOsInfo } from "./os-info.js";
import {
  CollectorError,
  clip,
  fullPath,
  readIfPresent,
  readOptional,
  readRequired,
} from "./read.js";

/** What our agent sends: the wire type with boot time (absent from legacy nodes) required. */
export type Details = MessageMap["details"] & Required<Pick<MessageMap["details"], "bootTime">>;

export interface DetailsExtra {
  agentVersion: string;
  nodeVersion: string;
  /** Unix ms, to date the boot from os uptime off Linux; defaults to Date.now(). */
  nowMs?: number;
}

/**
 * Reads proc/, sys/ and etc/ under the context's root; where there is no
 * proc/stat (not Linux), falls back to os facts alone.
 */
export async function collectDetails(ctx: CollectorContext, extra: DetailsExtra): Promise<Details> {
  const stat = await readIfPresent(ctx, PROC_STAT);
  if (stat === undefined) return detailsFromOs(ctx, extra);

  const [cpuinfoText, meminfoText, osInfo, freq, mountsText, netDevText] = await Promise.all([
    readRequired(ctx, "proc/cpuinfo"),
    readRequired(ctx, MEMINFO),
    readOsInfo(ctx),
    readFreqRange(ctx),
    readOptional(ctx, MOUNTS),
    readOptional(ctx, NET_DEV),
  ]);
  const { btime } = parseProcStat(ctx, PROC_STAT, stat);
  if (btime === undefined) throw new CollectorError(fullPath(ctx, PROC_STAT), 'no "btime" line');
  const cpuinfo = parseCpuinfo(cpuinfoText);
  const mem = parseMeminfo(ctx, meminfoText);
  const [disks, interfaces, board] = await Promise.all([
    readDiskSpace(ctx, parseMounts(mountsText ?? ""), new Set()),
    readInterfaces(ctx, [...parseNetDev(netDevText ?? "").keys()]),
    readBoard(ctx, cpuinfo),
  ]);

  const details: Details = {
    ...osInfo,
    arch: clip(ctx.os.arch(), 32),
    cpu: {
      model: clip(cpuModel(cpuinfo, ctx.os.cpus()), 256),
      cores: Math.max(1, cpuinfo.processors || ctx.os.cpus().length),
    },
    memory: { totalBytes: mem.totalBytes, swapBytes: mem.swapTotalBytes },
    disks: disks.map((d) => ({
      mount: clip(d.mount, 1024),
      fs: clip(d.fs, 64),
      sizeBytes: d.sizeBytes,
    })),
    interfaces,
    bootTime: btime * 1000,
    agentVersion: clip(extra.agentVersion, 64),
    nodeVersion: clip(extra.nodeVersion, 64),
  };
  if (freq.minMhz !== undefined) details.cpu.minMhz = freq.minMhz;
  if (freq.maxMhz !== undefined) details.cpu.maxMhz = freq.maxMhz;
  if (board !== undefined) details.board = board;
  return details;
}

/** Off Linux: what Node's os module knows; no disks, no board. */
async function detailsFromOs(ctx: CollectorContext, extra: DetailsExtra): Promise<Details> {
  const { os } = ctx;
  const cpus = os.cpus();
  const nowMs = extra.nowMs ?? Date.now();
  return {
    hostname: clip(os.hostname(), 253),
    os: { name: clip(os.type(), 128), version: clip(os.release(), 128) },
    kernel: clip(os.release(), 128),
    arch: clip(os.arch(), 32),
    cpu: { model: clip(cpus[0]?.model.trim() || "unknown", 256), cores: Math.max(1, cpus.length) },
    memory: { totalBytes: os.totalmem(), swapBytes: 0 },
    disks: [],
    interfaces: await readInterfaces(ctx, []),
    bootTime: Math.max(0, Math.round(nowMs - os.uptime() * 1000)),
    agentVersion: clip(extra.agentVersion, 64),
    nodeVersion: clip(extra.nodeVersion, 64),
  };
}
