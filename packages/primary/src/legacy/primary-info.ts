/**
 * The primary's own machine, in the fields a tutorial node asks for with
 * `info node_baseinfo` (the same names as its own node_baseinfo).
 */
import { readFileSync } from "node:fs";
import { cpus, hostname, totalmem } from "node:os";

function readNumber(path: string, pattern?: RegExp): number | undefined {
  try {
    const text = readFileSync(path, "utf8");
    const m = pattern ? pattern.exec(text) : [text, text];
    const n = Number(m?.[1]?.trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    // Not Linux, or no cpufreq on this machine: the field is null, as psutil would give.
    return undefined;
  }
}

export function primaryBaseinfo(root = "/"): Record<string, string | number | null> {
  const list = cpus();
  const swapKb = readNumber(`${root}proc/meminfo`, /^SwapTotal:\s+(\d+) kB/m);
  const maxKhz = readNumber(`${root}sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq`);
  const minKhz = readNumber(`${root}sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_min_freq`);
  const speed = list[0]?.speed;
  return {
    hostname: hostname(),
    ram: totalmem(),
    swap: swapKb === undefined ? null : swapKb * 1024,
    cpu: list[0]?.model ?? "",
    cpu_cores: list.length,
    cpu_frequency_max: maxKhz === undefined ? (speed ?? null) : maxKhz / 1000,
    cpu_frequency_min: minKhz === undefined ? (speed ?? null) : minKhz / 1000,
  };
}
