import assert from "node:assert/strict";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { collectDetails, type Details } from "../../src/collectors/index.js";
import { piModelFromRevision } from "../../src/collectors/pi-revision.js";
import {
  assertValid,
  copyFixture,
  type FixtureName,
  fakeOs,
  recordedStatFs,
} from "../support/collectors.js";

const EXTRA = { agentVersion: "0.1.0", nodeVersion: "v20.20.2" };

/** Details of a copy of `name` after `edit` has changed the copy. */
async function detailsAfter(
  t: Parameters<typeof copyFixture>[0],
  name: FixtureName,
  edit: (root: string) => Promise<void>,
): Promise<Details> {
  const root = await copyFixture(t, name);
  await edit(root);
  const details = await collectDetails({ root, os: fakeOs(), statfs: recordedStatFs({}) }, EXTRA);
  assertValid("details", details);
  return details;
}

/** Rewrite proc/cpuinfo, dropping lines whose key matches. */
async function dropCpuinfoLines(root: string, keys: RegExp): Promise<void> {
  const path = join(root, "proc/cpuinfo");
  const text = await readFile(path, "utf8");
  const kept = text.split("\n").filter((line) => !keys.test(line.split(":")[0]?.trim() ?? ""));
  assert.notEqual(kept.length, text.split("\n").length, `no line of ${path} matched ${keys}`);
  await writeFile(path, kept.join("\n"));
}

test("collectors - board revision codes decode to the device tree's board names", () => {
  const cases: Array<[string, string | undefined]> = [
    // Old-style codes, 0002-0015 (0001, 000a-000c were never used).
    ["0002", "Raspberry Pi Model B Rev 1.0"],
    ["0003", "Raspberry Pi Model B Rev 1.0"],
    ["0004", "Raspberry Pi Model B Rev 2.0"],
    ["0007", "Raspberry Pi Model A Rev 2.0"],
    ["000d", "Raspberry Pi Model B Rev 2.0"],
    ["000e", "Raspberry Pi Model B Rev 2.0"],
    ["0010", "Raspberry Pi Model B Plus Rev 1.2"],
    ["0011", "Raspberry Pi Compute Module Rev 1.0"],
    ["0012", "Raspberry Pi Model A Plus Rev 1.1"],
    ["0015", "Raspberry Pi Model A Plus Rev 1.1"],
    // An old-style code with the warranty bit (24) set.
    ["100000e", "Raspberry Pi Model B Rev 2.0"],
    // New-style codes (bit 23 set): type in bits 4-11, revision in bits 0-3.
    ["900021", "Raspberry Pi Model A Plus Rev 1.1"],
    ["900032", "Raspberry Pi Model B Plus Rev 1.2"],
    ["900092", "Raspberry Pi Zero Rev 1.2"],
    ["9000c1", "Raspberry Pi Zero W Rev 1.1"],
    ["a01041", "Raspberry Pi 2 Model B Rev 1.1"],
    ["a02082", "Raspberry Pi 3 Model B Rev 1.2"],
    ["a020a0", "Raspberry Pi Compute Module 3 Rev 1.0"],
    ["a020d3", "Raspberry Pi 3 Model B Plus Rev 1.3"],
    ["9020e0", "Raspberry Pi 3 Model A Plus Rev 1.0"],
    ["a02100", "Raspberry Pi Compute Module 3 Plus Rev 1.0"],
    ["c03111", "Raspberry Pi 4 Model B Rev 1.1"],
    ["d03115", "Raspberry Pi 4 Model B Rev 1.5"],
    ["902120", "Raspberry Pi Zero 2 W Rev 1.0"],
    ["c03130", "Raspberry Pi 400 Rev 1.0"],
    ["b03140", "Raspberry Pi Compute Module 4 Rev 1.0"],
    ["a03150", "Raspberry Pi Compute Module 4S Rev 1.0"],
    ["c04170", "Raspberry Pi 5 Model B Rev 1.0"],
    ["d04180", "Raspberry Pi Compute Module 5 Rev 1.0"],
    ["d04190", "Raspberry Pi 500 Rev 1.0"],
    ["b041a0", "Raspberry Pi Compute Module 5 Lite Rev 1.0"],
    // The warranty bit (25) of a new-style code changes nothing.
    ["2a02082", "Raspberry Pi 3 Model B Rev 1.2"],
    ["0x00c03111", "Raspberry Pi 4 Model B Rev 1.1"],
    // Not a known board: unused old codes, internal types, types yet to come, not hex.
    ["0000", undefined],
    ["0001", undefined],
    ["000a", undefined],
    ["0016", undefined],
    ["9000f0", undefined],
    ["c031f0", undefined],
    ["", undefined],
    ["c03111x", undefined],
    ["123456789", undefined],
  ];
  for (const [code, name] of cases) {
    assert.equal(piModelFromRevision(code), name, `revision ${JSON.stringify(code)}`);
  }
});

test("collectors - board falls back to cpuinfo's Model line without the device tree's model", async (t) => {
  const details = await detailsAfter(t, "pi4", (root) => rm(join(root, "proc/device-tree/model")));
  assert.deepEqual(details.board, {
    model: "Raspberry Pi 4 Model B Rev 1.4",
    serial: "10000000a3c1f2e7",
    revision: "c03114",
  });
});

test("collectors - board falls back to the decoded revision without a model in device tree or cpuinfo", async (t) => {
  const details = await detailsAfter(t, "pi-zero-2w", async (root) => {
    await rm(join(root, "proc/device-tree/model"));
    await dropCpuinfoLines(root, /^Model$/);
  });
  assert.deepEqual(details.board, {
    model: "Raspberry Pi Zero 2 W Rev 1.0",
    serial: "00000000b8e5c2a1",
    revision: "902120",
  });
});

test("collectors - board decodes an arm64 cpuinfo's revision, which comes without a Hardware line", async (t) => {
  const details = await detailsAfter(t, "pi5", async (root) => {
    await rm(join(root, "proc/device-tree/model"));
    await dropCpuinfoLines(root, /^Model$/);
  });
  assert.deepEqual(details.board, {
    model: "Raspberry Pi 5 Model B Rev 1.0",
    serial: "8e3d1c5a7b204f19",
    revision: "d04170",
  });
});

test("collectors - board is not guessed from a revision code under another SoC's Hardware line", async (t) => {
  const details = await detailsAfter(t, "pi4", async (root) => {
    await rm(join(root, "proc/device-tree/model"));
    await dropCpuinfoLines(root, /^Model$/);
    const path = join(root, "proc/cpuinfo");
    const text = await readFile(path, "utf8");
    await writeFile(path, text.replace("Hardware\t: BCM2835", "Hardware\t: Allwinner sun8i"));
  });
  assert.equal("board" in details, false);
});

test("collectors - board from a device tree naming another board wins over cpuinfo", async (t) => {
  const details = await detailsAfter(t, "pi4", (root) =>
    writeFile(join(root, "proc/device-tree/model"), "Pine64 RockPro64 v2.1\0"),
  );
  assert.equal("board" in details, false);
});

test("collectors - pi5 details name the Cortex-A76 and the board from the device tree", async (t) => {
  const details = await detailsAfter(t, "pi5", async () => {});
  assert.deepEqual(details.cpu, { model: "Cortex-A76", cores: 4, minMhz: 1500, maxMhz: 2400 });
  assert.deepEqual(details.board, {
    model: "Raspberry Pi 5 Model B Rev 1.0",
    serial: "8e3d1c5a7b204f19",
    revision: "d04170",
  });
});
