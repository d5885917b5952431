import assert from "node:assert/strict";
import { copyFile, mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { type CollectorContext, VitalsCollector } from "../../src/collectors/index.js";
import {
  advance,
  assertValid,
  copyFixture,
  FIXTURES,
  fakeOs,
  recordedStatFs,
} from "../support/collectors.js";

const T0_MS = 1_732_460_000_000;
const T1_MS = T0_MS + 10_000;

const PI4_DISKS = {
  "/": { sizeBytes: 31_254_605_824, usedBytes: 6_123_470_848 },
  "/boot/firmware": { sizeBytes: 535_805_952, usedBytes: 66_000_896 },
};
const ZERO_DISKS = {
  "/": { sizeBytes: 15_383_740_416, usedBytes: 2_868_903_936 },
  "/boot/firmware": { sizeBytes: 535_805_952, usedBytes: 53_983_232 },
};
const X86_DISKS = { "/": { sizeBytes: 107_321_753_600, usedBytes: 9_412_718_592 } };

async function fixtureContext(
  t: Parameters<typeof copyFixture>[0],
  name: Parameters<typeof copyFixture>[1],
  disks: Parameters<typeof recordedStatFs>[0],
): Promise<CollectorContext> {
  const root = await copyFixture(t, name);
  return { root, os: fakeOs(), statfs: recordedStatFs(disks) };
}

// ---- pi4 ------------------------------------------------------------------

test("collectors - pi4 first sample reports CPU, disk and network averages since boot", async (t) => {
  const vitals = await new VitalsCollector(await fixtureContext(t, "pi4", PI4_DISKS)).sample(T0_MS);
  assertValid("vitals", vitals);
  // Per core: busy = user + nice + system + softirq of 10 000 000 ticks.
  // cpu0 380 000 → 3.8 %, cpu1 310 000 → 3.1 %, cpu2 278 000 → 2.78 %, cpu3 468 000 → 4.68 %;
  // all: 1 436 000 of 40 000 000 → 3.59 %.
  assert.deepEqual(vitals.cpu, { total: 3.59, perCore: [3.8, 3.1, 2.78, 4.68] });
  // Up 100 000 s; mmcblk0 (not its partitions) read 4 000 000 and wrote 6 000 000 sectors.
  // 4e6 × 512 / 1e5 = 20 480 B/s, 6e6 × 512 / 1e5 = 30 720 B/s.
  assert.deepEqual(vitals.diskIo, { readBps: 20_480, writeBps: 30_720 });
  // eth0 5e9 rx / 1.2e9 tx, wlan0 3e8 / 4e7 bytes over 1e5 s; lo left out.
  assert.deepEqual(vitals.net, [
    { iface: "eth0", rxBps: 50_000, txBps: 12_000 },
    { iface: "wlan0", rxBps: 3_000, txBps: 400 },
  ]);
});

test("collectors - pi4 rates over 10 s come from the counter deltas", async (t) => {
  const ctx = await fixtureContext(t, "pi4", PI4_DISKS);
  const collector = new VitalsCollector(ctx);
  await collector.sample(T0_MS);
  await advance(ctx.root);
  const vitals = await collector.sample(T1_MS);
  assertValid("vitals", vitals);
  // 1000 ticks per core in 10 s. Busy: cpu0 150+80+20 = 250, cpu1 60+35+5 = 100,
  // cpu2 400+20+70+10 = 500, cpu3 900+100 = 1000; all 1850 of 4000 = 46.25 %.
  assert.deepEqual(vitals.cpu, { total: 46.25, perCore: [25, 10, 50, 100] });
  // mmcblk0: +4000 sectors read, +20 000 written (mmcblk0p2 moved as much and must not count twice).
  // 4000 × 512 / 10 = 204 800 B/s; 20 000 × 512 / 10 = 1 024 000 B/s.
  assert.deepEqual(vitals.diskIo, { readBps: 204_800, writeBps: 1_024_000 });
  // eth0 +1 250 000 / +300 000 bytes, wlan0 +2000 / +1000 bytes in 10 s.
  assert.deepEqual(vitals.net, [
    { iface: "eth0", rxBps: 125_000, txBps: 30_000 },
    { iface: "wlan0", rxBps: 200, txBps: 100 },
  ]);
});

test("collectors - pi4 vitals read load, frequency, temperature, memory, disks and reboot flag", async (t) => {
  const vitals = await new VitalsCollector(await fixtureContext(t, "pi4", PI4_DISKS)).sample(T0_MS);
  assert.deepEqual(vitals.load, [0.42, 0.35, 0.3]);
  assert.equal(vitals.procs, 312);
  assert.equal(vitals.uptimeS, 100_000);
  assert.equal(vitals.freqMhz, 1500);
  assert.deepEqual(vitals.temps, [{ zone: "thermal_zone0", type: "cpu-thermal", celsius: 48.686 }]);
  assert.equal(vitals.rebootRequired, true);
  // MemTotal 3 882 680 kB, MemAvailable 3 012 456 kB: used 870 224 kB.
  assert.deepEqual(vitals.memory, {
    totalBytes: 3_882_680 * 1024,
    usedBytes: 870_224 * 1024,
    availableBytes: 3_012_456 * 1024,
  });
  // SwapTotal 524 284 kB, SwapFree 498 172 kB: used 26 112 kB.
  assert.deepEqual(vitals.swap, { totalBytes: 524_284 * 1024, usedBytes: 26_112 * 1024 });
  assert.deepEqual(vitals.disks, [
    { mount: "/", ...PI4_DISKS["/"] },
    { mount: "/boot/firmware", ...PI4_DISKS["/boot/firmware"] },
  ]);
});

// ---- pi-zero-2w -----------------------------------------------------------

test("collectors - pi-zero-2w first sample reports averages since boot", async (t) => {
  const vitals = await new VitalsCollector(
    await fixtureContext(t, "pi-zero-2w", ZERO_DISKS),
  ).sample(T0_MS);
  assertValid("vitals", vitals);
  // Of 500 000 ticks per core: busy 32 000, 24 000, 16 500, 39 500; all 112 000 of 2 000 000.
  assert.deepEqual(vitals.cpu, { total: 5.6, perCore: [6.4, 4.8, 3.3, 7.9] });
  // Up 5000 s: 1 000 000 × 512 / 5000 = 102 400 B/s read, 250 000 × 512 / 5000 = 25 600 written.
  assert.deepEqual(vitals.diskIo, { readBps: 102_400, writeBps: 25_600 });
  // wlan0 5e7 / 1e7 bytes over 5000 s.
  assert.deepEqual(vitals.net, [{ iface: "wlan0", rxBps: 10_000, txBps: 2_000 }]);
});

test("collectors - pi-zero-2w rates over 10 s come from the counter deltas", async (t) => {
  const ctx = await fixtureContext(t, "pi-zero-2w", ZERO_DISKS);
  const collector = new VitalsCollector(ctx);
  await collector.sample(T0_MS);
  await advance(ctx.root);
  const vitals = await collector.sample(T1_MS);
  assertValid("vitals", vitals);
  // Busy of 1000: cpu0 0, cpu1 150+50, cpu2 600+100+50, cpu3 30+20; all 1000 of 4000.
  assert.deepEqual(vitals.cpu, { total: 25, perCore: [0, 20, 75, 5] });
  // +2000 sectors read → 102 400 B/s; +10 000 written → 512 000 B/s.
  assert.deepEqual(vitals.diskIo, { readBps: 102_400, writeBps: 512_000 });
  // wlan0 +80 000 / +25 000 bytes.
  assert.deepEqual(vitals.net, [{ iface: "wlan0", rxBps: 8_000, txBps: 2_500 }]);
});

test("collectors - pi-zero-2w vitals read load, frequency, temperature, memory and no reboot flag", async (t) => {
  const vitals = await new VitalsCollector(
    await fixtureContext(t, "pi-zero-2w", ZERO_DISKS),
  ).sample(T0_MS);
  assert.deepEqual(vitals.load, [1.05, 0.8, 0.6]);
  assert.equal(vitals.procs, 148);
  assert.equal(vitals.uptimeS, 5000);
  assert.equal(vitals.freqMhz, 1000);
  assert.deepEqual(vitals.temps, [{ zone: "thermal_zone0", type: "cpu-thermal", celsius: 51.54 }]);
  assert.equal(vitals.rebootRequired, false);
  // MemTotal 439 592 kB, MemAvailable 286 312 kB; SwapTotal 524 284 kB, SwapFree 420 000 kB.
  assert.deepEqual(vitals.memory, {
    totalBytes: 439_592 * 1024,
    usedBytes: 153_280 * 1024,
    availableBytes: 286_312 * 1024,
  });
  assert.deepEqual(vitals.swap, { totalBytes: 524_284 * 1024, usedBytes: 104_284 * 1024 });
});

// ---- x86-server -----------------------------------------------------------

test("collectors - x86-server rates over 10 s come from the captured deltas", async (t) => {
  const ctx = await fixtureContext(t, "x86-server", X86_DISKS);
  const collector = new VitalsCollector(ctx);
  const first = await collector.sample(T0_MS);
  assertValid("vitals", first);
  // Since boot: cpu busy 84783 + 15302 + 50 + 35 (steal) = 100 170 of 314 854 ticks = 31.81 %.
  assert.deepEqual(first.cpu, { total: 31.81, perCore: [31.18, 32.45] });
  await advance(ctx.root);
  const vitals = await collector.sample(T1_MS);
  assertValid("vitals", vitals);
  // all: user +74, system +15, idle +1904, iowait +1, softirq +1 = 1995; busy 90 → 4.51 %.
  // cpu0: +18 +7 busy of 996 → 2.51 %; cpu1: +56 +9 busy of 999 → 6.51 %.
  assert.deepEqual(vitals.cpu, { total: 4.51, perCore: [2.51, 6.51] });
  // vda: +10 000 sectors read, +600 written (zram0 and loop* do not count).
  assert.deepEqual(vitals.diskIo, { readBps: 512_000, writeBps: 30_720 });
  // eth0 +10 548 088 rx → 1 054 808.8, +6621 tx → 662.1, both rounded; ifb* idle; lo left out.
  assert.deepEqual(vitals.net, [
    { iface: "ifb0", rxBps: 0, txBps: 0 },
    { iface: "ifb1", rxBps: 0, txBps: 0 },
    { iface: "eth0", rxBps: 1_054_809, txBps: 662 },
  ]);
});

test("collectors - x86-server vitals have no frequency, temperatures, throttling or reboot flag", async (t) => {
  const vitals = await new VitalsCollector(await fixtureContext(t, "x86-server", X86_DISKS)).sample(
    T0_MS,
  );
  assertValid("vitals", vitals);
  assert.equal("freqMhz" in vitals, false);
  assert.equal("throttling" in vitals, false);
  assert.deepEqual(vitals.temps, []);
  assert.equal(vitals.rebootRequired, false);
  assert.deepEqual(vitals.load, [0.07, 0.72, 0.86]);
  assert.equal(vitals.procs, 81);
  assert.equal(vitals.uptimeS, 1585);
  // MemTotal 24 684 084 kB, MemAvailable 24 404 840 kB: used 279 244 kB; no swap.
  assert.deepEqual(vitals.memory, {
    totalBytes: 24_684_084 * 1024,
    usedBytes: 279_244 * 1024,
    availableBytes: 24_404_840 * 1024,
  });
  assert.deepEqual(vitals.swap, { totalBytes: 0, usedBytes: 0 });
  assert.deepEqual(vitals.disks, [{ mount: "/", ...X86_DISKS["/"] }]);
});

// ---- edge cases -----------------------------------------------------------

test("collectors - a missing optional file leaves its field out instead of failing", async (t) => {
  const ctx = await fixtureContext(t, "pi4", PI4_DISKS);
  await rm(join(ctx.root, "sys/devices/system/cpu/cpu0/cpufreq"), { recursive: true });
  await rm(join(ctx.root, "sys/class/thermal"), { recursive: true });
  await rm(join(ctx.root, "proc/diskstats"));
  const vitals = await new VitalsCollector(ctx).sample(T0_MS);
  assertValid("vitals", vitals);
  assert.equal("freqMhz" in vitals, false);
  assert.deepEqual(vitals.temps, []);
  assert.deepEqual(vitals.diskIo, { readBps: 0, writeBps: 0 });
  assert.equal(vitals.throttling?.source, "firmware");
});

test("collectors - a mount whose statfs fails is left out of disks", async (t) => {
  const ctx = await fixtureContext(t, "pi4", { "/": PI4_DISKS["/"] });
  const vitals = await new VitalsCollector(ctx).sample(T0_MS);
  assert.deepEqual(vitals.disks, [{ mount: "/", ...PI4_DISKS["/"] }]);
});

test("collectors - an unreadable mandatory file throws CollectorError naming the path", async (t) => {
  const ctx = await fixtureContext(t, "pi4", PI4_DISKS);
  await rm(join(ctx.root, "proc/meminfo"));
  await assert.rejects(new VitalsCollector(ctx).sample(T0_MS), (err: unknown) => {
    assert.ok(err instanceof Error && "code" in err);
    assert.equal(err.code, "E_COLLECTOR");
    assert.match(err.message, /proc\/meminfo: cannot read/);
    assert.ok(err.message.startsWith(ctx.root));
    return true;
  });
});

test("collectors - a counter that goes backwards reports 0 for that interval", async (t) => {
  const ctx = await fixtureContext(t, "pi4", PI4_DISKS);
  const collector = new VitalsCollector(ctx);
  await advance(ctx.root);
  await collector.sample(T0_MS);
  // Back to the earlier snapshot: as if every counter wrapped or its device was re-created.
  for (const file of ["proc/stat", "proc/diskstats", "proc/net/dev"]) {
    await copyFile(join(FIXTURES, "pi4", file), join(ctx.root, file));
  }
  const vitals = await collector.sample(T1_MS);
  assertValid("vitals", vitals);
  assert.deepEqual(vitals.cpu, { total: 0, perCore: [0, 0, 0, 0] });
  assert.deepEqual(vitals.diskIo, { readBps: 0, writeBps: 0 });
  assert.deepEqual(vitals.net, [
    { iface: "eth0", rxBps: 0, txBps: 0 },
    { iface: "wlan0", rxBps: 0, txBps: 0 },
  ]);
});

test("collectors - a sample at the same time as the previous one reports 0 rates", async (t) => {
  const ctx = await fixtureContext(t, "pi4", PI4_DISKS);
  const collector = new VitalsCollector(ctx);
  await collector.sample(T0_MS);
  await advance(ctx.root);
  const vitals = await collector.sample(T0_MS);
  assert.deepEqual(vitals.diskIo, { readBps: 0, writeBps: 0 });
  assert.deepEqual(
    vitals.net.map((n) => n.rxBps + n.txBps),
    [0, 0],
  );
  // CPU % is a ratio of ticks, not of time, so it is still right.
  assert.equal(vitals.cpu.total, 46.25);
});

test("collectors - thermal zones come in numeric order and an unreadable one is left out", async (t) => {
  const ctx = await fixtureContext(t, "pi4", PI4_DISKS);
  for (const [zone, type, temp] of [
    ["thermal_zone10", "gpu-thermal", "-5250"],
    ["thermal_zone2", "wifi-thermal", undefined],
  ] as const) {
    await mkdir(join(ctx.root, "sys/class/thermal", zone));
    await writeFile(join(ctx.root, "sys/class/thermal", zone, "type"), `${type}\n`);
    if (temp !== undefined)
      await writeFile(join(ctx.root, "sys/class/thermal", zone, "temp"), `${temp}\n`);
  }
  const vitals = await new VitalsCollector(ctx).sample(T0_MS);
  assertValid("vitals", vitals);
  assert.deepEqual(vitals.temps, [
    { zone: "thermal_zone0", type: "cpu-thermal", celsius: 48.686 },
    { zone: "thermal_zone10", type: "gpu-thermal", celsius: -5.25 },
  ]);
});
