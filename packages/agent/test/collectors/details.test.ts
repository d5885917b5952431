import assert from "node:assert/strict";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { collectDetails } from "../../src/collectors/index.js";
import {
  assertValid,
  copyFixture,
  fakeOs,
  PI4_INTERFACES,
  recordedStatFs,
  X86_INTERFACES,
  ZERO_INTERFACES,
} from "../support/collectors.js";

const EXTRA = { agentVersion: "0.1.0", nodeVersion: "v20.20.2" };

test("collectors - pi4 details", async (t) => {
  const root = await copyFixture(t, "pi4");
  const details = await collectDetails(
    {
      root,
      os: fakeOs({
        hostname: () => "pi-rack-01",
        arch: () => "arm64",
        networkInterfaces: () => PI4_INTERFACES,
      }),
      statfs: recordedStatFs({
        "/": { sizeBytes: 31_254_605_824, usedBytes: 6_123_470_848 },
        "/boot/firmware": { sizeBytes: 535_805_952, usedBytes: 66_000_896 },
      }),
    },
    EXTRA,
  );
  assertValid("details", details);
  assert.deepEqual(details, {
    hostname: "pi-rack-01",
    os: { name: "Debian GNU/Linux", version: "12" },
    kernel: "6.6.51+rpt-rpi-v8",
    arch: "arm64",
    cpu: { model: "Cortex-A72", cores: 4, minMhz: 600, maxMhz: 1800 },
    memory: { totalBytes: 3_882_680 * 1024, swapBytes: 524_284 * 1024 },
    disks: [
      { mount: "/", fs: "ext4", sizeBytes: 31_254_605_824 },
      { mount: "/boot/firmware", fs: "vfat", sizeBytes: 535_805_952 },
    ],
    interfaces: [
      {
        name: "eth0",
        mac: "dc:a6:32:4b:7e:10",
        addresses: ["192.168.1.41/24", "fe80::dea6:32ff:fe4b:7e10/64"],
      },
      { name: "wlan0", mac: "dc:a6:32:4b:7e:11", addresses: ["192.168.1.42/24"] },
    ],
    bootTime: 1_732_360_000_000,
    agentVersion: "0.1.0",
    nodeVersion: "v20.20.2",
    board: {
      model: "Raspberry Pi 4 Model B Rev 1.4",
      serial: "10000000a3c1f2e7",
      revision: "c03114",
    },
  });
});

test("collectors - pi-zero-2w details name the core from CPU part, not the 32-bit model name", async (t) => {
  const root = await copyFixture(t, "pi-zero-2w");
  const details = await collectDetails(
    {
      root,
      os: fakeOs({
        hostname: () => "pi-zero-01",
        arch: () => "arm",
        networkInterfaces: () => ZERO_INTERFACES,
      }),
      statfs: recordedStatFs({
        "/": { sizeBytes: 15_383_740_416, usedBytes: 2_868_903_936 },
        "/boot/firmware": { sizeBytes: 535_805_952, usedBytes: 53_983_232 },
      }),
    },
    EXTRA,
  );
  assertValid("details", details);
  assert.deepEqual(details, {
    hostname: "pi-zero-01",
    os: { name: "Raspbian GNU/Linux", version: "12" },
    kernel: "6.6.51+rpt-rpi-v7",
    arch: "arm",
    cpu: { model: "Cortex-A53", cores: 4, minMhz: 600, maxMhz: 1000 },
    memory: { totalBytes: 439_592 * 1024, swapBytes: 524_284 * 1024 },
    disks: [
      { mount: "/", fs: "ext4", sizeBytes: 15_383_740_416 },
      { mount: "/boot/firmware", fs: "vfat", sizeBytes: 535_805_952 },
    ],
    interfaces: [{ name: "wlan0", mac: "d8:3a:dd:5c:21:9e", addresses: ["192.168.1.57/24"] }],
    bootTime: 1_732_455_000_000,
    agentVersion: "0.1.0",
    nodeVersion: "v20.20.2",
    board: {
      model: "Raspberry Pi Zero 2 W Rev 1.0",
      serial: "00000000b8e5c2a1",
      revision: "902120",
    },
  });
});

test("collectors - x86-server details have no board and no frequency range", async (t) => {
  const root = await copyFixture(t, "x86-server");
  const details = await collectDetails(
    {
      root,
      os: fakeOs({
        hostname: () => "vm",
        arch: () => "x64",
        networkInterfaces: () => X86_INTERFACES,
      }),
      statfs: recordedStatFs({ "/": { sizeBytes: 107_321_753_600, usedBytes: 9_412_718_592 } }),
    },
    EXTRA,
  );
  assertValid("details", details);
  assert.deepEqual(details, {
    hostname: "vm",
    os: { name: "Debian GNU/Linux", version: "12" },
    kernel: "6.18.44-fc-v669",
    arch: "x64",
    cpu: { model: "AMD EPYC", cores: 2 },
    memory: { totalBytes: 24_684_084 * 1024, swapBytes: 0 },
    disks: [{ mount: "/", fs: "ext4", sizeBytes: 107_321_753_600 }],
    interfaces: [
      { name: "ifb0", mac: "be:98:eb:20:05:50", addresses: [] },
      { name: "ifb1", mac: "72:16:23:db:eb:dc", addresses: [] },
      {
        name: "eth0",
        mac: "02:fc:00:00:00:01",
        addresses: ["192.0.2.2/24", "fd00::2/64", "fe80::fc:ff:fe00:1/64"],
      },
    ],
    bootTime: 1_795_633_265_000,
    agentVersion: "0.1.0",
    nodeVersion: "v20.20.2",
  });
});

test("collectors - details without cpufreq, os-release, device-tree model or os hostname fall back field by field", async (t) => {
  const root = await copyFixture(t, "pi4");
  await rm(join(root, "sys/devices/system/cpu/cpu0/cpufreq"), { recursive: true });
  await rm(join(root, "etc/os-release"));
  await rm(join(root, "proc/device-tree/model"));
  const details = await collectDetails(
    {
      root,
      os: fakeOs({ hostname: () => "", type: () => "Linux", release: () => "6.6.0-os" }),
      statfs: recordedStatFs({}),
    },
    EXTRA,
  );
  assertValid("details", details);
  assert.equal(details.hostname, "pi-rack-01");
  assert.deepEqual(details.os, { name: "Linux", version: "6.6.0-os" });
  assert.equal(details.kernel, "6.6.51+rpt-rpi-v8");
  assert.deepEqual(details.cpu, { model: "Cortex-A72", cores: 4 });
  assert.deepEqual(details.disks, []);
  // The board from cpuinfo's Model line, which Pi kernels print too.
  assert.deepEqual(details.board, {
    model: "Raspberry Pi 4 Model B Rev 1.4",
    serial: "10000000a3c1f2e7",
    revision: "c03114",
  });
});

test("collectors - board serial and revision fall back to the device tree", async (t) => {
  const root = await copyFixture(t, "pi4");
  const cpuinfo = join(root, "proc/cpuinfo");
  const text = await readFile(cpuinfo, "utf8");
  await writeFile(cpuinfo, text.replace(/^(Serial|Revision).*\n/gm, ""));
  // linux,revision is one 32-bit big-endian cell: 0x00c03114.
  await mkdir(join(root, "proc/device-tree/system"));
  await writeFile(
    join(root, "proc/device-tree/system/linux,revision"),
    Buffer.from([0x00, 0xc0, 0x31, 0x14]),
  );
  const details = await collectDetails({ root, os: fakeOs(), statfs: recordedStatFs({}) }, EXTRA);
  assert.deepEqual(details.board, {
    model: "Raspberry Pi 4 Model B Rev 1.4",
    serial: "10000000a3c1f2e7",
    revision: "c03114",
  });
});
