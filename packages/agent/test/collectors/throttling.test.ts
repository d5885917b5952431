import assert from "node:assert/strict";
import { mkdir, rename, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { createLogger } from "@picluster/common";
import { decodeThrottled, VitalsCollector } from "../../src/collectors/index.js";
import { assertValid, copyFixture, fakeOs, recordedStatFs } from "../support/collectors.js";

const NOW_MS = 1_732_460_000_000;
const NONE = {
  underVoltage: false,
  freqCapped: false,
  throttled: false,
  softTempLimit: false,
  underVoltageOccurred: false,
  freqCappedOccurred: false,
  throttledOccurred: false,
  softTempLimitOccurred: false,
};

test("collectors - throttling bits 0-3 are now and 16-19 since boot", () => {
  assert.deepEqual(decodeThrottled(0), { source: "firmware", ...NONE });
  assert.deepEqual(decodeThrottled(0x1), { source: "firmware", ...NONE, underVoltage: true });
  assert.deepEqual(decodeThrottled(0x2), { source: "firmware", ...NONE, freqCapped: true });
  assert.deepEqual(decodeThrottled(0x4), { source: "firmware", ...NONE, throttled: true });
  assert.deepEqual(decodeThrottled(0x8), { source: "firmware", ...NONE, softTempLimit: true });
  assert.deepEqual(decodeThrottled(0x10000), {
    source: "firmware",
    ...NONE,
    underVoltageOccurred: true,
  });
  assert.deepEqual(decodeThrottled(0x20000), {
    source: "firmware",
    ...NONE,
    freqCappedOccurred: true,
  });
  assert.deepEqual(decodeThrottled(0x40000), {
    source: "firmware",
    ...NONE,
    throttledOccurred: true,
  });
  assert.deepEqual(decodeThrottled(0x80000), {
    source: "firmware",
    ...NONE,
    softTempLimitOccurred: true,
  });
  // Bits outside 0-3 and 16-19 mean nothing here.
  assert.deepEqual(decodeThrottled(0xfff0_fff0), { source: "firmware", ...NONE });
});

test("collectors - pi4 throttling decodes under-voltage now and since boot", async (t) => {
  const root = await copyFixture(t, "pi4");
  const vitals = await new VitalsCollector({
    root,
    os: fakeOs(),
    statfs: recordedStatFs({}),
  }).sample(NOW_MS);
  assertValid("vitals", vitals);
  // get_throttled = 50005: bits 0 and 2 (under-voltage, throttled) and 16 and 18 (the same, since boot).
  // The rpi_volt hwmon in the tree says 0, and must not win over the firmware.
  assert.deepEqual(vitals.throttling, {
    source: "firmware",
    ...NONE,
    underVoltage: true,
    throttled: true,
    underVoltageOccurred: true,
    throttledOccurred: true,
  });
});

test("collectors - pi4 throttling accepts a 0x prefix and reads the file anew each sample", async (t) => {
  const root = await copyFixture(t, "pi4");
  const collector = new VitalsCollector({ root, os: fakeOs(), statfs: recordedStatFs({}) });
  await collector.sample(NOW_MS);
  await writeFile(join(root, "sys/devices/platform/soc/soc:firmware/get_throttled"), "0x80008\n");
  const vitals = await collector.sample(NOW_MS + 10_000);
  assert.deepEqual(vitals.throttling, {
    source: "firmware",
    ...NONE,
    softTempLimit: true,
    softTempLimitOccurred: true,
  });
});

test("collectors - pi5 throttling finds get_throttled under the soc@107c000000 firmware node", async (t) => {
  const root = await copyFixture(t, "pi5");
  const vitals = await new VitalsCollector({
    root,
    os: fakeOs(),
    statfs: recordedStatFs({}),
  }).sample(NOW_MS);
  assertValid("vitals", vitals);
  // get_throttled = 50000: bits 16 and 18, under-voltage and throttling since boot, neither now.
  assert.deepEqual(vitals.throttling, {
    source: "firmware",
    ...NONE,
    underVoltageOccurred: true,
    throttledOccurred: true,
  });
});

test("collectors - get_throttled is found through the raspberrypi-firmware driver's link wherever the node sits", async (t) => {
  const root = await copyFixture(t, "pi5");
  // Move the firmware node below where the platform scan looks, and link the
  // driver's directory to it the way sysfs does: a relative symlink, next to
  // the driver's own files.
  const platform = join(root, "sys/devices/platform");
  await mkdir(join(platform, "axi"));
  await rename(join(platform, "soc@107c000000"), join(platform, "axi/soc@107c000000"));
  const driver = join(root, "sys/bus/platform/drivers/raspberrypi-firmware");
  await mkdir(driver, { recursive: true });
  await writeFile(join(driver, "bind"), "");
  await writeFile(join(driver, "uevent"), "");
  await symlink(
    "../../../../devices/platform/axi/soc@107c000000/soc@107c000000:firmware",
    join(driver, "soc@107c000000:firmware"),
  );
  const collector = new VitalsCollector({ root, os: fakeOs(), statfs: recordedStatFs({}) });
  assert.deepEqual((await collector.sample(NOW_MS)).throttling, {
    source: "firmware",
    ...NONE,
    underVoltageOccurred: true,
    throttledOccurred: true,
  });
  // Read anew each sample, through the link.
  await writeFile(
    join(platform, "axi/soc@107c000000/soc@107c000000:firmware/get_throttled"),
    "4\n",
  );
  assert.deepEqual((await collector.sample(NOW_MS + 10_000)).throttling, {
    source: "firmware",
    ...NONE,
    throttled: true,
  });
});

test("collectors - pi-zero-2w throttling falls back to the rpi_volt hwmon alarm", async (t) => {
  const root = await copyFixture(t, "pi-zero-2w");
  const vitals = await new VitalsCollector({
    root,
    os: fakeOs(),
    statfs: recordedStatFs({}),
  }).sample(NOW_MS);
  assertValid("vitals", vitals);
  assert.deepEqual(vitals.throttling, { source: "hwmon", ...NONE, underVoltage: true });
});

test("collectors - pi-zero-2w throttling clears when the hwmon alarm does", async (t) => {
  const root = await copyFixture(t, "pi-zero-2w");
  await writeFile(join(root, "sys/class/hwmon/hwmon1/in0_lcrit_alarm"), "0\n");
  const vitals = await new VitalsCollector({
    root,
    os: fakeOs(),
    statfs: recordedStatFs({}),
  }).sample(NOW_MS);
  assert.deepEqual(vitals.throttling, { source: "hwmon", ...NONE });
});

test("collectors - x86-server vitals have no throttling field", async (t) => {
  const root = await copyFixture(t, "x86-server");
  const vitals = await new VitalsCollector({
    root,
    os: fakeOs(),
    statfs: recordedStatFs({}),
  }).sample(NOW_MS);
  assert.equal("throttling" in vitals, false);
});

test("collectors - an unreadable get_throttled leaves throttling out of that sample", async (t) => {
  const root = await copyFixture(t, "pi4");
  const collector = new VitalsCollector({ root, os: fakeOs(), statfs: recordedStatFs({}) });
  await collector.sample(NOW_MS);
  await writeFile(join(root, "sys/devices/platform/soc/soc:firmware/get_throttled"), "garbage\n");
  assert.equal("throttling" in (await collector.sample(NOW_MS + 10_000)), false);
  await rm(join(root, "sys/devices/platform/soc/soc:firmware/get_throttled"));
  const vitals = await collector.sample(NOW_MS + 20_000);
  assertValid("vitals", vitals);
  assert.equal("throttling" in vitals, false);
});

test("collectors - an optional file that fails for a reason other than absence is logged at debug", async (t) => {
  const root = await copyFixture(t, "pi4");
  const lines: string[] = [];
  const log = createLogger({ write: (line) => lines.push(line) }, { level: "debug" });
  const collector = new VitalsCollector({ root, os: fakeOs(), statfs: recordedStatFs({}), log });
  await collector.sample(NOW_MS);
  const file = join(root, "sys/devices/platform/soc/soc:firmware/get_throttled");
  await rm(file);
  await mkdir(file); // reading a directory fails with EISDIR
  const vitals = await collector.sample(NOW_MS + 10_000);
  assert.equal("throttling" in vitals, false);
  const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const record = records.find((r) => r.path === file);
  assert.ok(record, `no log record for ${file} in ${lines.join("")}`);
  assert.equal(record.level, "debug");
  assert.equal(record.msg, "optional path unreadable, left out");
  assert.match(String(record.error), /EISDIR/);
});
