/** The Raspberry Pi board: model from the device tree or cpuinfo, serial and revision. */
import type { MessageMap } from "@picluster/common";
import type { CollectorContext } from "./context.js";
import type { CpuInfoFacts } from "./cpu.js";
import { piModelFromRevision } from "./pi-revision.js";
import { clip, readOptional, readOptionalBytes } from "./read.js";

export type Board = NonNullable<MessageMap["details"]["board"]>;

/** Device-tree strings end in NUL. */
function dtString(raw: string | undefined): string | undefined {
  return raw?.replace(/\0+$/, "").trim();
}

/**
 * The SoCs the Pi kernels name in cpuinfo's Hardware line (BCM2708/2709 on
 * older kernels, BCM2835 on newer ones whatever the chip, BCM2711/2712 on
 * some). Other 32-bit ARM boards print a Revision line too, mostly "0000".
 */
const PI_HARDWARE = /^BCM(27\d\d|283\d)$/;

/**
 * Only on a Raspberry Pi (other boards have a device tree too, but the field
 * is defined as the Pi's). The model comes from the device tree; where there
 * is none (old kernels, containers that mask /proc/device-tree) from
 * cpuinfo's Model line, else from its revision code. Serial and revision come
 * from proc/cpuinfo, which the Pi kernels extend; kernels that do not fall
 * back to the device tree's serial-number and linux,revision (a 32-bit
 * big-endian cell).
 */
export async function readBoard(
  ctx: CollectorContext,
  cpuinfo: CpuInfoFacts,
): Promise<Board | undefined> {
  const dtModel = dtString(await readOptional(ctx, "proc/device-tree/model"));
  // A device tree that names some other board settles it, whatever cpuinfo says.
  const model = dtModel === undefined ? modelFromCpuinfo(cpuinfo) : dtModel;
  if (model === undefined || !model.startsWith("Raspberry Pi")) return undefined;
  let { serial, revision } = cpuinfo;
  if (serial === undefined)
    serial = dtString(await readOptional(ctx, "proc/device-tree/serial-number"));
  if (revision === undefined) revision = await readDtRevision(ctx);
  return {
    model: clip(model, 256),
    serial: clip(serial ?? "", 64),
    revision: clip(revision ?? "", 64),
  };
}

async function readDtRevision(ctx: CollectorContext): Promise<string | undefined> {
  const cell = await readOptionalBytes(ctx, "proc/device-tree/system/linux,revision");
  return cell?.length === 4 ? cell.readUInt32BE(0).toString(16) : undefined;
}

/**
 * The Model line if the kernel printed one, else the revision code decoded.
 * The code counts only under a Pi's Hardware line, or with none at all:
 * mainline arm64 kernels print neither line, so a Revision without Hardware
 * is the Pi kernel's addition.
 */
function modelFromCpuinfo(cpuinfo: CpuInfoFacts): string | undefined {
  if (cpuinfo.model !== undefined) return cpuinfo.model;
  if (cpuinfo.revision === undefined) return undefined;
  if (cpuinfo.hardware !== undefined && !PI_HARDWARE.test(cpuinfo.hardware)) return undefined;
  return piModelFromRevision(cpuinfo.revision);
}
