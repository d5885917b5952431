import assert from "node:assert/strict";
import type { CpuInfo } from "node:os";
import { type TestContext, test } from "node:test";
import { scratchDir } from "@picluster/common/testing";
import { collectDetails, VitalsCollector } from "../../src/collectors/index.js";
import { assertValid, fakeOs } from "../support/collectors.js";

/** A root with no proc/ at all, as on macOS or Windows. */
async function emptyRoot(t: TestContext): Promise<string> {
  const root = scratchDir(t, "picluster-nolinux-");
  return root;
}

function cpu(user: number, sys: number, idle: number): CpuInfo {
  return { model: "Apple M2", speed: 3504, times: { user, nice: 0, sys, idle, irq: 0 } };
}

test("collectors - off Linux, details and vitals fall back to os facts", async (t) => {
  const root = await emptyRoot(t);
  let cpus = [cpu(1000, 1000, 8000), cpu(3000, 1000, 6000)];
  const os = fakeOs({
    hostname: () => "macbook",
    arch: () => "arm64",
    platform: () => "darwin",
    type: () => "Darwin",
    release: () => "23.6.0",
    cpus: () => cpus,
    totalmem: () => 16 * 1024 ** 3,
    freemem: () => 4 * 1024 ** 3,
    loadavg: () => [1.5, 1.25, 1],
    uptime: () => 3600.7,
    networkInterfaces: () => ({
      lo0: [
        {
          address: "127.0.0.1",
          netmask: "255.0.0.0",
          family: "IPv4",
          mac: "00:00:00:00:00:00",
          internal: true,
          cidr: "127.0.0.1/8",
        },
      ],
      en0: [
        {
          address: "10.0.0.5",
          netmask: "255.255.255.0",
          family: "IPv4",
          mac: "a4:83:e7:00:00:01",
          internal: false,
          cidr: "10.0.0.5/24",
        },
      ],
    }),
  });
  const ctx = { root, os };

  const details = await collectDetails(ctx, {
    agentVersion: "0.1.0",
    nodeVersion: "v20.20.2",
    nowMs: 1_732_460_000_000,
  });
  assertValid("details", details);
  assert.deepEqual(details, {
    hostname: "macbook",
    os: { name: "Darwin", version: "23.6.0" },
    kernel: "23.6.0",
    arch: "arm64",
    cpu: { model: "Apple M2", cores: 2 },
    memory: { totalBytes: 16 * 1024 ** 3, swapBytes: 0 },
    disks: [],
    interfaces: [{ name: "en0", mac: "a4:83:e7:00:00:01", addresses: ["10.0.0.5/24"] }],
    bootTime: 1_732_460_000_000 - 3_600_700,
    agentVersion: "0.1.0",
    nodeVersion: "v20.20.2",
  });

  const collector = new VitalsCollector(ctx);
  const first = await collector.sample(1_000);
  assertValid("vitals", first);
  // Since boot: core 0 busy 2000 of 10 000 ms, core 1 4000 of 10 000; all 6000 of 20 000.
  assert.deepEqual(first, {
    cpu: { total: 30, perCore: [20, 40] },
    load: [1.5, 1.25, 1],
    temps: [],
    rebootRequired: false,
    memory: {
      totalBytes: 16 * 1024 ** 3,
      usedBytes: 12 * 1024 ** 3,
      availableBytes: 4 * 1024 ** 3,
    },
    swap: { totalBytes: 0, usedBytes: 0 },
    disks: [],
    diskIo: { readBps: 0, writeBps: 0 },
    net: [],
    uptimeS: 3600,
    procs: 0,
  });

  // 10 s later: core 0 +500 user +9500 idle, core 1 +10 000 user.
  cpus = [cpu(1500, 1000, 17_500), cpu(13_000, 1000, 6000)];
  const next = await collector.sample(11_000);
  assertValid("vitals", next);
  assert.deepEqual(next.cpu, { total: 52.5, perCore: [5, 100] });
});
