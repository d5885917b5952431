/**
 * CPU: model and core count from proc/cpuinfo, frequencies from cpufreq,
 * busy percentages from proc/stat tick counters (or os.cpus() off Linux).
 */
import type { CpuInfo } from "node:os";
import type { CollectorContext } from "./context.js";
import {
  CollectorError,
  colonPairs,
  fullPath,
  optionalCount,
  readOptional,
  round2,
} from "./read.js";

export const PROC_STAT = "proc/stat";
const CPUFREQ = "sys/devices/system/cpu/cpu0/cpufreq";

/**
 * ARM Ltd (implementer 0x41) core names by "CPU part". arm64 kernels print no
 * "model name" at all, and 32-bit ones print "ARMv7 Processor rev 4 (v7l)",
 * which does not say which core; the part number does. The first five are the
 * cores of every Raspberry Pi so far (Pi 1/Zero, Pi 2, Pi 3/Zero 2, Pi 4, Pi 5);
 * the rest are cores seen in real captures of other boards (ARM1136 on an
 * InfoTM IMAPX200, Cortex-A73 beside A53s on a MediaTek MT8183) and other
 * common ARM Ltd cores.
 */
const ARM_CORES: Readonly<Record<string, string>> = {
  "0xb76": "ARM1176",
  "0xc07": "Cortex-A7",
  "0xd03": "Cortex-A53",
  "0xd08": "Cortex-A72",
  "0xd0b": "Cortex-A76",
  "0xb36": "ARM1136",
  "0xc08": "Cortex-A8",
  "0xc09": "Cortex-A9",
  "0xc0f": "Cortex-A15",
  "0xd04": "Cortex-A35",
  "0xd05": "Cortex-A55",
  "0xd07": "Cortex-A57",
  "0xd09": "Cortex-A73",
  "0xd0a": "Cortex-A75",
  "0xd0c": "Neoverse-N1",
  "0xd40": "Neoverse-V1",
  "0xd49": "Neoverse-N2",
};

/** What proc/cpuinfo says, per machine rather than per processor. */
export interface CpuInfoFacts {
  /** Count of "processor" lines. */
  processors: number;
  modelName: string | undefined;
  /** Core names from implementer + part, distinct, in order (big.LITTLE has two). */
  armCores: string[];
  hardware: string | undefined;
  /** Raspberry Pi kernels append these after the processors. */
  revision: string | undefined;
  serial: string | undefined;
  /** The board's name ("Raspberry Pi 4 Model B Rev 1.4"), which newer Pi kernels add. */
  model: string | undefined;
}

export function parseCpuinfo(text: string): CpuInfoFacts {
  const facts: CpuInfoFacts = {
    processors: 0,
    modelName: undefined,
    armCores: [],
    hardware: undefined,
    revision: undefined,
    serial: undefined,
    model: undefined,
  };
  let implementer: string | undefined;
  for (const [key, value] of colonPairs(text)) {
    switch (key) {
      case "processor":
        facts.processors += 1;
        implementer = undefined;
        break;
      case "model name":
        facts.modelName ??= value;
        break;
      case "CPU implementer":
        implementer = value;
        break;
      case "CPU part": {
        const core = implementer === "0x41" ? ARM_CORES[value.toLowerCase()] : undefined;
        if (core !== undefined && !facts.armCores.includes(core)) facts.armCores.push(core);
        break;
      }
      case "Hardware":
        facts.hardware ??= value;
        break;
      case "Revision":
        facts.revision ??= value;
        break;
      case "Serial":
        facts.serial ??= value;
        break;
      // Capital M: x86's per-processor "model" is a number, loongarch's "Model Name" a CPU.
      case "Model":
        facts.model ??= value;
        break;
    }
  }
  return facts;
}

/**
 * The CPU's name: a known ARM core (joined with " + " on big.LITTLE), else
 * "model name" (x86), else the SoC from "Hardware", else what Node saw.
 */
export function cpuModel(facts: CpuInfoFacts, cpus: CpuInfo[]): string {
  if (facts.armCores.length > 0) return facts.armCores.join(" + ");
  if (facts.modelName) return facts.modelName;
  if (facts.hardware) return facts.hardware;
  const fromNode = cpus[0]?.model.trim();
  return fromNode ? fromNode : "unknown";
}

function khzToMhz(raw: string | undefined): number | undefined {
  const khz = optionalCount(raw);
  return khz === undefined ? undefined : khz / 1000;
}

/** cpu0's frequency range in MHz; absent without cpufreq (VMs, some kernels). */
export async function readFreqRange(
  ctx: CollectorContext,
): Promise<{ minMhz: number | undefined; maxMhz: number | undefined }> {
  const [min, max] = await Promise.all([
    readOptional(ctx, `${CPUFREQ}/cpuinfo_min_freq`),
    readOptional(ctx, `${CPUFREQ}/cpuinfo_max_freq`),
  ]);
  return { minMhz: khzToMhz(min), maxMhz: khzToMhz(max) };
}

/** cpu0's current frequency in MHz, if cpufreq exists. */
export async function readCurrentMhz(ctx: CollectorContext): Promise<number | undefined> {
  return khzToMhz(await readOptional(ctx, `${CPUFREQ}/scaling_cur_freq`));
}

/** Cumulative ticks of one CPU (or all): busy and total. */
export interface CpuTicks {
  busy: number;
  total: number;
}

/** proc/stat: the aggregate and per-core tick counters, and the boot time. */
export interface ProcStat {
  all: CpuTicks;
  /** By kernel name ("cpu0", …) in file order; offline cores have no line. */
  cores: Map<string, CpuTicks>;
  /** Unix seconds. */
  btime: number | undefined;
}

/**
 * busy = total − idle − iowait, where total is user + nice + system + idle +
 * iowait + irq + softirq + steal. guest and guest_nice are left out because
 * the kernel already counts them inside user and nice.
 */
function ticksOf(fields: number[]): CpuTicks {
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] =
    fields;
  const total = user + nice + system + idle + iowait + irq + softirq + steal;
  return { busy: total - idle - iowait, total };
}

export function parseProcStat(ctx: CollectorContext, rel: string, text: string): ProcStat {
  let all: CpuTicks | undefined;
  const cores = new Map<string, CpuTicks>();
  let btime: number | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("cpu")) {
      const [name = "", ...rest] = line.split(/\s+/);
      const fields = rest.filter((f) => f !== "").map(Number);
      if (fields.length < 4 || fields.some((n) => !Number.isFinite(n))) {
        throw new CollectorError(fullPath(ctx, rel), `bad CPU line ${JSON.stringify(line)}`);
      }
      if (name === "cpu") all = ticksOf(fields);
      else cores.set(name, ticksOf(fields));
    } else if (line.startsWith("btime ")) {
      btime = optionalCount(line.slice(6));
    }
  }
  if (all === undefined) throw new CollectorError(fullPath(ctx, rel), 'no "cpu" line');
  return { all, cores, btime };
}

/** Ticks per core from os.cpus() (milliseconds, not ticks; the ratio is what counts). */
export function osCpuTicks(cpus: CpuInfo[]): { all: CpuTicks; cores: CpuTicks[] } {
  const cores = cpus.map(({ times }) => {
    const total = times.user + times.nice + times.sys + times.idle + times.irq;
    return { busy: total - times.idle, total };
  });
  const all = cores.reduce((sum, c) => ({ busy: sum.busy + c.busy, total: sum.total + c.total }), {
    busy: 0,
    total: 0,
  });
  return { all, cores };
}

const ZERO_TICKS: CpuTicks = { busy: 0, total: 0 };

/**
 * Percent busy between two readings, 0–100 to two decimals. Without an
 * earlier reading the counters are compared with zero, which gives the
 * average since boot. Counters that went backwards (iowait can, on tickless
 * kernels) are clamped rather than reported as a negative load.
 */
export function busyPercent(prev: CpuTicks | undefined, cur: CpuTicks): number {
  const base = prev ?? ZERO_TICKS;
  const total = cur.total - base.total;
  if (total <= 0) return 0;
  const busy = cur.busy - base.busy;
  return round2(Math.min(100, Math.max(0, (100 * busy) / total)));
}
