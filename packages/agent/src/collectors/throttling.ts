/**
 * Raspberry Pi power and throttling health: the firmware's get_throttled
 * bits, or where only the rpi_volt hwmon exists, its under-voltage alarm.
 */
import { assertNever, type MessageMap } from "@picluster/common";
import type { CollectorContext } from "./context.js";
import { exists, listOptional, readOptional } from "./read.js";

export type Throttling = NonNullable<MessageMap["vitals"]["throttling"]>;

const FIRMWARE_DRIVER = "sys/bus/platform/drivers/raspberrypi-firmware";
const PLATFORM = "sys/devices/platform";
const HWMON = "sys/class/hwmon";

/** Where this machine's throttling flags come from; found once per collector. */
export type ThrottlingSource =
  | { kind: "firmware"; path: string }
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
  const path = await findGetThrottled(ctx);
  if (path !== undefined) return { kind: "firmware", path };
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

/**
 * The firmware driver's get_throttled file. Where the firmware node sits
 * depends on the board's device tree (soc/soc:firmware on a Pi 4,
 * soc@107c000000/soc@107c000000:firmware on a Pi 5), so it is looked for
 * rather than assumed: first through the links sysfs keeps from the
 * raspberrypi-firmware driver's directory to its devices, then, where those
 * are missing (a partial or copied /sys), among the *:firmware nodes directly
 * under a platform device. Names are sorted so the choice does not depend on
 * directory order.
 */
async function findGetThrottled(ctx: CollectorContext): Promise<string | undefined> {
  for (const entry of (await listOptional(ctx, FIRMWARE_DRIVER)).sort()) {
    const path = `${FIRMWARE_DRIVER}/${entry}/get_throttled`;
    if (await exists(ctx, path)) return path;
  }
  for (const parent of (await listOptional(ctx, PLATFORM)).sort()) {
    const nodes = parent.endsWith(":firmware")
      ? [`${PLATFORM}/${parent}`]
      : (await listOptional(ctx, `${PLATFORM}/${parent}`))
          .filter((name) => name.endsWith(":firmware"))
          .sort()
          .map((name) => `${PLATFORM}/${parent}/${name}`);
    for (const node of nodes) {
      if (await exists(ctx, `${node}/get_throttled`)) return `${node}/get_throttled`;
    }
  }
  return undefined;
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
      const text = (await readOptional(ctx, source.path))?.trim().replace(/^0x/i, "");
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
