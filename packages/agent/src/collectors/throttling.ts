/**
 * Raspberry Pi power and throttling health: the firmware's get_throttled
 * bits, or where only the rpi_volt hwmon exists, its under-voltage alarm.
 */
import { assertNever, type MessageMap } from "@picluster/common";
import type { CollectorContext } from "./context.js";
import { exists, listOptional, readOptional } from "./read.js";

export type Throttling = NonNullable<MessageMap["vitals"]["throttling"]>;

export const GET_THROTTLED = "sys/devices/platform/soc/soc:firmware/get_throttled";
const HWMON = "sys/class/hwmon";

/** Where this machine's throttling flags come from; found once per collector. */
export type ThrottlingSource =
  | { kind: "firmware" }
  | { kind: "hwmon"; alarm: string }
  | { kind: "none" };

/**
 * get_throttled bits: 0 under-voltage, 1 ARM frequency capped, 2 throttled,
 * 3 soft temperature limit, all "now"; 16–19 the same, "occurred since boot".
 */
export function decodeThrottled(bits: number): Throttling {
  const on = (bit: number): boolean => (bits & (1 << bit)) !== 0;
  return {
    source: "firmware",
    underVoltage: on(0),
    freqCapped: on(1),
    throttled: on(2),
    softTempLimit: on(3),
    underVoltageOccurred: on(16),
    freqCappedOccurred: on(17),
    throttledOccurred: on(18),
    softTempLimitOccurred: on(19),
  };
}

/** The firmware file if present, else the first hwmon named rpi_volt, else none (not a Pi). */
export async function findThrottlingSource(ctx: CollectorContext): Promise<ThrottlingSource> {
  if (await exists(ctx, GET_THROTTLED)) return { kind: "firmware" };
  const hwmons = await listOptional(ctx, HWMON);
  const names = await Promise.all(
    hwmons.map((h) => readOptional(ctx, `${HWMON}/${h}/name`).then((n) => n?.trim())),
  );
  const index = names.indexOf("rpi_volt");
  const hwmon = hwmons[index];
  return hwmon === undefined
    ? { kind: "none" }
    : { kind: "hwmon", alarm: `${HWMON}/${hwmon}/in0_lcrit_alarm` };
}

/** The current flags; undefined when there is no source or it cannot be read now. */
export async function readThrottling(
  ctx: CollectorContext,
  source: ThrottlingSource,
): Promise<Throttling | undefined> {
  switch (source.kind) {
    case "none":
      return undefined;
    case "firmware": {
      // The driver prints the bits as bare hex ("50005"); accept a 0x prefix too.
      const text = (await readOptional(ctx, GET_THROTTLED))?.trim().replace(/^0x/i, "");
      if (text === undefined || !/^[0-9a-f]{1,8}$/i.test(text)) return undefined;
      return decodeThrottled(Number.parseInt(text, 16));
    }
    case "hwmon": {
      const text = (await readOptional(ctx, source.alarm))?.trim();
      if (text !== "0" && text !== "1") return undefined;
      return {
        source: "hwmon",
        underVoltage: text === "1",
        freqCapped: false,
        throttled: false,
        softTempLimit: false,
        underVoltageOccurred: false,
        freqCappedOccurred: false,
        throttledOccurred: false,
        softTempLimitOccurred: false,
      };
    }
    default:
      return assertNever(source);
  }
}
