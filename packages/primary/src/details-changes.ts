/**
 * What changed in a node's details, in words a person reads on the Events
 * page ("kernel 6.6.51 → 6.6.62"). Only what someone would care about: the
 * system, the hardware, the agent, disks, addresses and allowed tasks. The
 * boot time (which jitters by a second from sample to sample) and the
 * update count (which the alerts and the node page show) are left out, so
 * a node that only keeps running records nothing.
 */
import { bytes, type MessageMap } from "@picluster/common";

type Details = MessageMap["details"];

/** Sizes compared as people read them (4_000_000_000 → "3.7 GiB"), so a few bytes are no change. */
const size = bytes;

function os(d: Details): string {
  return `${d.os.name} ${d.os.version}`.trim();
}

function addresses(d: Details): Set<string> {
  return new Set(d.interfaces.flatMap((i) => i.addresses));
}

/** The first details of a node, in one line: what it is. */
export function describeDetails(d: Details): string {
  return [
    d.board?.model ?? d.cpu.model,
    `${d.cpu.cores} cores`,
    size(d.memory.totalBytes),
    os(d),
    d.kernel === "" ? "" : `kernel ${d.kernel}`,
    `agent ${d.agentVersion}`,
  ]
    .filter((x) => x !== "")
    .join(", ");
}

/** Each change from `before` to `after` a person would care about; empty when none. */
export function detailsChanges(before: Details, after: Details): string[] {
  const out: string[] = [];
  const diff = (what: string, a: string, b: string) => {
    if (a !== b) out.push(`${what} ${a === "" ? "(none)" : a} → ${b === "" ? "(none)" : b}`);
  };
  diff("host name", before.hostname, after.hostname);
  diff("OS", os(before), os(after));
  diff("kernel", before.kernel, after.kernel);
  diff("architecture", before.arch, after.arch);
  diff("board", before.board?.model ?? "", after.board?.model ?? "");
  diff("board revision", before.board?.revision ?? "", after.board?.revision ?? "");
  diff("CPU", before.cpu.model, after.cpu.model);
  diff("cores", String(before.cpu.cores), String(after.cpu.cores));
  diff(
    "CPU max",
    before.cpu.maxMhz === undefined ? "" : `${Math.round(before.cpu.maxMhz)} MHz`,
    after.cpu.maxMhz === undefined ? "" : `${Math.round(after.cpu.maxMhz)} MHz`,
  );
  diff("memory", size(before.memory.totalBytes), size(after.memory.totalBytes));
  diff("swap", size(before.memory.swapBytes), size(after.memory.swapBytes));
  diff("agent", before.agentVersion, after.agentVersion);
  diff("Node.js", before.nodeVersion, after.nodeVersion);

  const disksBefore = new Map(before.disks.map((d) => [d.mount, d]));
  const disksAfter = new Map(after.disks.map((d) => [d.mount, d]));
  for (const [mount, d] of disksAfter) {
    const was = disksBefore.get(mount);
    if (was === undefined) out.push(`disk ${mount} added (${size(d.sizeBytes)}, ${d.fs})`);
    else diff(`disk ${mount}`, size(was.sizeBytes), size(d.sizeBytes));
  }
  for (const mount of disksBefore.keys())
    if (!disksAfter.has(mount)) out.push(`disk ${mount} removed`);

  const addrBefore = addresses(before);
  const addrAfter = addresses(after);
  for (const a of addrAfter) if (!addrBefore.has(a)) out.push(`address ${a} added`);
  for (const a of addrBefore) if (!addrAfter.has(a)) out.push(`address ${a} removed`);

  const tasksBefore = new Set((before.tasks ?? []).map((t) => t.name));
  const tasksAfter = new Set((after.tasks ?? []).map((t) => t.name));
  const allowed = [...tasksAfter].filter((t) => !tasksBefore.has(t));
  const withdrawn = [...tasksBefore].filter((t) => !tasksAfter.has(t));
  if (allowed.length > 0) out.push(`tasks allowed: ${allowed.join(", ")}`);
  if (withdrawn.length > 0) out.push(`tasks no longer allowed: ${withdrawn.join(", ")}`);
  return out;
}
