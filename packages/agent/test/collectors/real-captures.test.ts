import assert from "node:assert/strict";
import { test } from "node:test";
import { collectDetails, VitalsCollector } from "../../src/collectors/index.js";
import {
  assertValid,
  copyRealCapture,
  fakeOs,
  type RealCaptureName,
  recordedStatFs,
} from "../support/collectors.js";

// The captures under fixtures/real/ (see their SOURCES), each laid over the
// x86-server tree, through the same collectors a node runs.

const EXTRA = { agentVersion: "0.1.0", nodeVersion: "v20.20.2" };
const NOW_MS = 1_732_460_000_000;

interface Expected {
  capture: RealCaptureName;
  why: string;
  cpu: { model: string; cores: number };
  board?: { model: string; serial: string; revision: string };
}

const CASES: Expected[] = [
  {
    capture: "procfs-pi4-armv7",
    why: "a Pi 4 on a 32-bit kernel with neither device tree nor Model line: the revision code names it",
    cpu: { model: "Cortex-A72", cores: 4 },
    board: { model: "Raspberry Pi 4 Model B Rev 1.1", serial: "", revision: "c03111" },
  },
  {
    capture: "py-cpuinfo-pi1-model-b",
    why: "a Pi 1 Model B on a pre-3.8 kernel: old-style code 000d, one core without a processor line",
    // No "processor" line: the count falls back to os.cpus() (one, from fakeOs).
    cpu: { model: "ARM1176", cores: 1 },
    board: { model: "Raspberry Pi Model B Rev 2.0", serial: "0000000066564a8f", revision: "000d" },
  },
  {
    capture: "py-cpuinfo-pi1-model-b-plus",
    why: "a Pi 1 Model B+: old-style code 0010",
    cpu: { model: "ARM1176", cores: 1 },
    board: {
      model: "Raspberry Pi Model B Plus Rev 1.2",
      serial: "00000000be6d9ba0",
      revision: "0010",
    },
  },
  {
    capture: "procfs-imapx200-arm1136",
    why: "an ARM1136 (part 0xb36) board with Revision 0000 is named by its core and is no Pi",
    cpu: { model: "ARM1136", cores: 1 },
  },
  {
    capture: "procfs-sun8i-armv7-legacy",
    why: "an Allwinner board with Revision 0000 is no Pi",
    cpu: { model: "Cortex-A7", cores: 2 },
  },
  {
    capture: "gopsutil-mt8183-android",
    why: "a big.LITTLE MediaTek with a Revision and a Serial is no Pi",
    cpu: { model: "Cortex-A53 + Cortex-A73", cores: 8 },
  },
];

for (const c of CASES) {
  test(`real captures - ${c.capture} details: ${c.why}`, async (t) => {
    const root = await copyRealCapture(t, c.capture);
    const details = await collectDetails(
      { root, os: fakeOs({ arch: () => "arm" }), statfs: recordedStatFs({}) },
      EXTRA,
    );
    assertValid("details", details);
    assert.deepEqual(details.cpu, c.cpu);
    if (c.board === undefined) assert.equal("board" in details, false);
    else assert.deepEqual(details.board, c.board);
  });
}

test("real captures - procfs thermal zones: bcm2835_thermal and a zone below zero, in zone order", async (t) => {
  const root = await copyRealCapture(t, "procfs-thermal");
  const vitals = await new VitalsCollector({
    root,
    os: fakeOs(),
    statfs: recordedStatFs({}),
  }).sample(NOW_MS);
  assertValid("vitals", vitals);
  assert.deepEqual(vitals.temps, [
    { zone: "thermal_zone0", type: "bcm2835_thermal", celsius: 49.925 },
    { zone: "thermal_zone1", type: "acpitz", celsius: -44 },
  ]);
  // A thermal zone says nothing about Pi firmware.
  assert.equal("throttling" in vitals, false);
});
