/** The Raspberry Pi board: model from the device tree, serial and revision. */
import type { MessageMap } from "@picluster/common";
import type { CollectorContext } from "./context.js";
import type { CpuInfoFacts } from "./cpu.js";
import { clip, readOptional, readOptionalBytes } from "./read.js";

export type Board = NonNullable<MessageMap["details"]["board"]>;

/** Device-tree strings end in NUL. */
function dtString(raw: string | undefined): string | undefined {
  return raw?.replace(/\0+$/, "").trim();
}

/**
 * Only on a Raspberry Pi (other boards have a device tree too, but the field
 * is defined as the Pi's). Serial and revision come from proc/cpuinfo, which
 * the Pi kernels extend; kernels that do not fall back to the device tree's
 * serial-number and linux,revision (a 32-bit big-endian cell).
 */
export async function readBoard(
  ctx: CollectorContext,
  cpuinfo: CpuInfoFacts,
): Promise<Board | undefined> {
  const model = dtString(await readOptional(ctx, "proc/device-tree/model"));
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
