/** A vitals sample for tests: quiet figures, with what a test sets over them. */
import type { MessageMap } from "@picluster/common";

type Vitals = MessageMap["vitals"];

export function vitals(
  throttling?: Partial<NonNullable<Vitals["throttling"]>>,
  over: Partial<Vitals> = {},
): Vitals {
  return {
    cpu: { total: 5, perCore: [5] },
    load: [0, 0, 0],
    temps: [],
    ...(throttling === undefined
      ? {}
      : {
          throttling: {
            source: "firmware",
            underVoltage: false,
            freqCapped: false,
            throttled: false,
            softTempLimit: false,
            underVoltageOccurred: false,
            freqCappedOccurred: false,
            throttledOccurred: false,
            softTempLimitOccurred: false,
            ...throttling,
          },
        }),
    rebootRequired: false,
    memory: { totalBytes: 1, usedBytes: 0, availableBytes: 1 },
    swap: { totalBytes: 0, usedBytes: 0 },
    disks: [],
    diskIo: { readBps: 0, writeBps: 0 },
    net: [],
    uptimeS: 1,
    procs: 1,
    ...over,
  };
}
