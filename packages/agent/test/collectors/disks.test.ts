import assert from "node:assert/strict";
import { test } from "node:test";
import { type DiskSpace, STATFS_TIMEOUT_MS, VitalsCollector } from "../../src/collectors/index.js";
import { copyFixture, fakeOs } from "../support/collectors.js";

const ROOT_SPACE: DiskSpace = { sizeBytes: 31_254_605_824, usedBytes: 6_123_470_848 };
const BOOT_SPACE: DiskSpace = { sizeBytes: 535_805_952, usedBytes: 66_000_896 };

test("collectors - a statfs that hangs is dropped at its deadline and not called again until it answers", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const root = await copyFixture(t, "pi4");
  const calls: string[] = [];
  let hungCalled: () => void = () => {};
  const hungCall = new Promise<void>((resolve) => {
    hungCalled = resolve;
  });
  let answerHung: (space: DiskSpace) => void = () => {};
  const statfs = (mount: string): Promise<DiskSpace> => {
    calls.push(mount);
    if (mount === "/") return Promise.resolve(ROOT_SPACE);
    if (calls.filter((m) => m === mount).length > 1) return Promise.resolve(BOOT_SPACE);
    hungCalled();
    return new Promise((resolve) => {
      answerHung = resolve;
    });
  };
  const collector = new VitalsCollector({ root, os: fakeOs(), statfs });

  const first = collector.sample(0);
  await hungCall;
  // Let the answered "/" settle (microtasks only; setImmediate is not mocked) before the deadline.
  await new Promise((resolve) => setImmediate(resolve));
  t.mock.timers.tick(STATFS_TIMEOUT_MS);
  assert.deepEqual((await first).disks, [{ mount: "/", ...ROOT_SPACE }]);

  // Still hanging: skipped at once, without a second call piling up behind the first.
  assert.deepEqual((await collector.sample(10_000)).disks, [{ mount: "/", ...ROOT_SPACE }]);
  assert.deepEqual(calls, ["/", "/boot/firmware", "/"]);

  // Once it answers, the next sample asks again.
  answerHung(BOOT_SPACE);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual((await collector.sample(20_000)).disks, [
    { mount: "/", ...ROOT_SPACE },
    { mount: "/boot/firmware", ...BOOT_SPACE },
  ]);
  assert.deepEqual(calls, ["/", "/boot/firmware", "/", "/", "/boot/firmware"]);
});

test("collectors - a statfs that throws leaves its mount out", async (t) => {
  const root = await copyFixture(t, "pi4");
  const statfs = (mount: string): Promise<DiskSpace> => {
    if (mount === "/") return Promise.resolve(ROOT_SPACE);
    throw new Error("EACCES");
  };
  const vitals = await new VitalsCollector({ root, os: fakeOs(), statfs }).sample(0);
  assert.deepEqual(vitals.disks, [{ mount: "/", ...ROOT_SPACE }]);
});
