/** Temperatures of every thermal zone in sys/class/thermal (millidegrees Celsius). */
import type { MessageMap } from "@picluster/common";
import type { CollectorContext } from "./context.js";
import { clip, listOptional, readOptional } from "./read.js";

const THERMAL = "sys/class/thermal";
const MAX_ZONES = 64;

export type Temp = MessageMap["vitals"]["temps"][number];

/** A zone and its sensor type ("cpu-thermal"), which never changes while it exists. */
export interface ThermalZone {
  zone: string;
  type: string;
}

/** The zones ("thermal_zone0", …) in numeric order, with their types. */
export async function findThermalZones(ctx: CollectorContext): Promise<ThermalZone[]> {
  const zones = (await listOptional(ctx, THERMAL))
    .filter((n) => /^thermal_zone\d+$/.test(n))
    .sort((a, b) => Number(a.slice(12)) - Number(b.slice(12)))
    .slice(0, MAX_ZONES);
  return Promise.all(
    zones.map(async (zone) => {
      const type = (await readOptional(ctx, `${THERMAL}/${zone}/type`))?.trim();
      return { zone: clip(zone, 64), type: clip(type || "unknown", 64) };
    }),
  );
}

/**
 * One reading per zone. A zone whose temp cannot be read right now (a sensor
 * on a powered-down device answers ENODATA) is left out of this sample.
 */
export async function readTemps(ctx: CollectorContext, zones: ThermalZone[]): Promise<Temp[]> {
  const readings = await Promise.all(
    zones.map(async ({ zone, type }): Promise<Temp | undefined> => {
      const text = (await readOptional(ctx, `${THERMAL}/${zone}/temp`))?.trim();
      if (text === undefined || !/^-?\d+$/.test(text)) return undefined;
      return { zone, type, celsius: Number(text) / 1000 };
    }),
  );
  return readings.filter((t): t is Temp => t !== undefined);
}
