/** The `vitals` message: one sample of how a node is doing. */
import type { MessageMap } from "@picluster/common";
import type { CollectorContext } from "./context.js";
import {
  busyPercent,
  type CpuTicks,
  osCpuTicks,
  PROC_STAT,
  parseProcStat,
  readCurrentMhz,
} from "./cpu.js";
import {
  DISKSTATS,
  type IoBytes,
  MOUNTS,
  parseDiskstats,
  parseMounts,
  readDiskSpace,
} from "./disks.js";
import { MEMINFO, parseMeminfo } from "./memory.js";
import { NET_DEV, type NetBytes, parseNetDev } from "./net.js";
import {
  CollectorError,
  clip,
  existsSync,
  fullPath,
  parseCount,
  readIfPresent,
  readOptionalSync,
  readRequiredSync,
} from "./read.js";
import { findThermalZones, readTemps, type ThermalZone } from "./thermal.js";
import { findThrottlingSource, readThrottling, type ThrottlingSource } from "./throttling.js";

/** What our agent sends: the wire type with the fields only legacy nodes omit made required. */
export type Vitals = MessageMap["vitals"] &
  Required<Pick<MessageMap["vitals"], "load" | "rebootRequired" | "diskIo" | "uptimeS" | "procs">>;

const LOADAVG = "proc/loadavg";
const UPTIME = "proc/uptime";
const REBOOT_REQUIRED = "var/run/reboot-required";
const MAX_CORES = 1024;
const MAX_NET = 256;

/** What a machine has, found on the first sample and kept: sensors do not come and go at runtime. */
interface Layout {
  /** proc/stat exists; otherwise only os facts are used. */
  linux: boolean;
  zones: ThermalZone[];
  throttling: ThrottlingSource;
}

/** Counters of the previous sample, for rates. */
interface Counters {
  atMs: number;
  cpuAll: CpuTicks;
  cpuCores: Map<string, CpuTicks>;
  disks: Map<string, IoBytes>;
  net: Map<string, NetBytes>;
}

/**
 * Takes vitals samples. Rates (CPU %, disk and network bytes/s) cover the time
 * since the previous call; the first call has no previous one and reports the
 * averages since boot (counters over uptime), so a restarted agent sends a
 * true figure rather than a zero. A device or interface that appears between
 * two calls reports 0 until the next; a counter that went backwards (wrapped,
 * or its device was re-created) also reports 0 for that interval. `nowMs`
 * should come from a clock that does not jump: a step back gives 0 rates.
 */
export class VitalsCollector {
  #layout: Layout | undefined;
  #prev: Counters | undefined;
  /** Mounts whose statfs has not answered yet (see readDiskSpace). */
  readonly #pendingStatfs = new Set<string>();

  constructor(private readonly ctx: CollectorContext) {}

  /** One sample at `nowMs` (Unix ms; only differences between calls matter). */
  async sample(nowMs: number): Promise<Vitals> {
    this.#layout ??= await discoverLayout(this.ctx);
    return this.#layout.linux ? this.#sampleLinux(nowMs, this.#layout) : this.#sampleOs(nowMs);
  }

  async #sampleLinux(nowMs: number, layout: Layout): Promise<Vitals> {
    const ctx = this.ctx;
    // procfs synchronously (cheap, see read.ts) and the rates at once, so two
    // overlapping calls still compare counters in the order they were read;
    // then the sysfs sensors and statfs calls in parallel.
    const stat = parseProcStat(ctx, PROC_STAT, readRequiredSync(ctx, PROC_STAT));
    const mem = parseMeminfo(ctx, readRequiredSync(ctx, MEMINFO));
    const { load, procs } = parseLoadavg(ctx, readRequiredSync(ctx, LOADAVG));
    const uptimeS = parseUptime(ctx, readRequiredSync(ctx, UPTIME));
    const rates = this.#advance(
      {
        atMs: nowMs,
        cpuAll: stat.all,
        cpuCores: stat.cores,
        disks: parseDiskstats(readOptionalSync(ctx, DISKSTATS) ?? ""),
        net: parseNetDev(readOptionalSync(ctx, NET_DEV) ?? ""),
      },
      uptimeS,
    );
    const mounts = parseMounts(readOptionalSync(ctx, MOUNTS) ?? "");
    const rebootRequired = existsSync(ctx, REBOOT_REQUIRED);
    const [freqMhz, temps, throttling, disks] = await Promise.all([
      readCurrentMhz(ctx),
      readTemps(ctx, layout.zones),
      readThrottling(ctx, layout.throttling),
      readDiskSpace(ctx, mounts, this.#pendingStatfs),
    ]);

    const vitals: Vitals = {
      cpu: rates.cpu,
      load,
      temps,
      rebootRequired,
      memory: {
        totalBytes: mem.totalBytes,
        usedBytes: mem.totalBytes - mem.availableBytes,
        availableBytes: mem.availableBytes,
      },
      swap: {
        totalBytes: mem.swapTotalBytes,
        usedBytes: Math.max(0, mem.swapTotalBytes - mem.swapFreeBytes),
      },
      disks: disks.map((d) => ({
        mount: clip(d.mount, 1024),
        usedBytes: d.usedBytes,
        sizeBytes: d.sizeBytes,
      })),
      diskIo: rates.diskIo,
      net: rates.net,
      uptimeS: Math.floor(uptimeS),
      procs,
    };
    if (freqMhz !== undefined) vitals.freqMhz = freqMhz;
    if (throttling !== undefined) vitals.throttling = throttling;
    return vitals;
  }

  /** Off Linux: os.cpus() times, loadavg, totalmem/freemem and uptime; nothing else is known. */
  #sampleOs(nowMs: number): Vitals {
    const { os } = this.ctx;
    const ticks = osCpuTicks(os.cpus());
    const uptimeS = Math.max(0, os.uptime());
    const rates = this.#advance(
      {
        atMs: nowMs,
        cpuAll: ticks.all,
        cpuCores: new Map(ticks.cores.map((t, i) => [`cpu${i}`, t])),
        disks: new Map(),
        net: new Map(),
      },
      uptimeS,
    );
    const [l1 = 0, l5 = 0, l15 = 0] = os.loadavg();
    const totalBytes = os.totalmem();
    const availableBytes = Math.min(os.freemem(), totalBytes);
    return {
      cpu: rates.cpu,
      load: [l1, l5, l15],
      temps: [],
      rebootRequired: existsSync(this.ctx, REBOOT_REQUIRED),
      memory: { totalBytes, usedBytes: totalBytes - availableBytes, availableBytes },
      swap: { totalBytes: 0, usedBytes: 0 },
      disks: [],
      diskIo: { readBps: 0, writeBps: 0 },
      net: [],
      uptimeS: Math.floor(uptimeS),
      procs: 0,
    };
  }

  /** Rates between the previous counters (or boot, `uptimeS` ago) and `now`, which become the previous. */
  #advance(now: Counters, uptimeS: number): Pick<Vitals, "cpu" | "diskIo" | "net"> {
    const prev = this.#prev;
    this.#prev = now;
    const elapsedS = prev === undefined ? uptimeS : (now.atMs - prev.atMs) / 1000;
    // Before the first sample every counter was zero, at boot.
    const before = <T>(map: Map<string, T> | undefined, key: string, zero: T): T | undefined =>
      map === undefined ? zero : map.get(key);
    const perSecond = (from: number | undefined, to: number): number =>
      from === undefined || elapsedS <= 0 || to < from ? 0 : (to - from) / elapsedS;

    let readBps = 0;
    let writeBps = 0;
    for (const [dev, io] of now.disks) {
      const was = before(prev?.disks, dev, { read: 0, written: 0 });
      readBps += perSecond(was?.read, io.read);
      writeBps += perSecond(was?.written, io.written);
    }
    const net = [...now.net].slice(0, MAX_NET).map(([iface, bytes]) => {
      const was = before(prev?.net, iface, { rx: 0, tx: 0 });
      return {
        iface: clip(iface, 64),
        rxBps: Math.round(perSecond(was?.rx, bytes.rx)),
        txBps: Math.round(perSecond(was?.tx, bytes.tx)),
      };
    });
    const perCore = [...now.cpuCores]
      .slice(0, MAX_CORES)
      .map(([name, ticks]) => busyPercent(prev?.cpuCores.get(name), ticks));
    return {
      cpu: { total: busyPercent(prev?.cpuAll, now.cpuAll), perCore },
      diskIo: { readBps: Math.round(readBps), writeBps: Math.round(writeBps) },
      net,
    };
  }
}

async function discoverLayout(ctx: CollectorContext): Promise<Layout> {
  const linux = (await readIfPresent(ctx, PROC_STAT)) !== undefined;
  if (!linux) return { linux, zones: [], throttling: { kind: "none" } };
  const [zones, throttling] = await Promise.all([findThermalZones(ctx), findThrottlingSource(ctx)]);
  return { linux, zones, throttling };
}

/** "0.42 0.35 0.30 2/312 14562": three load averages, running/total tasks, last pid. */
function parseLoadavg(
  ctx: CollectorContext,
  text: string,
): { load: [number, number, number]; procs: number } {
  const [a, b, c, tasks] = text.trim().split(/\s+/);
  const load = [a, b, c].map(Number);
  const [l1, l5, l15] = load;
  if (
    l1 === undefined ||
    l5 === undefined ||
    l15 === undefined ||
    load.some((n) => !Number.isFinite(n))
  ) {
    throw new CollectorError(
      fullPath(ctx, LOADAVG),
      `bad load averages in ${JSON.stringify(text)}`,
    );
  }
  // The total after the slash counts every task (thread) the kernel has, the
  // cheap stand-in for a process count: walking /proc/[pid] costs far more.
  const procs = parseCount(ctx, LOADAVG, "task count", tasks?.split("/")[1]);
  return { load: [l1, l5, l15], procs };
}

/** "100000.00 385140.00": seconds since boot, then idle seconds summed over CPUs. */
function parseUptime(ctx: CollectorContext, text: string): number {
  const raw = text.trim().split(/\s+/)[0];
  const seconds = Number(raw);
  if (raw === undefined || raw === "" || !Number.isFinite(seconds) || seconds < 0) {
    throw new CollectorError(fullPath(ctx, UPTIME), `bad uptime ${JSON.stringify(text)}`);
  }
  return seconds;
}
