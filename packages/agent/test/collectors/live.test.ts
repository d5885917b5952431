import assert from "node:assert/strict";
import { test } from "node:test";
import { collectDetails, nodeOsFacts, VitalsCollector } from "../../src/collectors/index.js";
import { assertValid } from "../support/collectors.js";

// The machine running the tests: values are unknown, but must be sane and valid.
test("collectors - live machine gives plausible, valid details and vitals", {
  skip: process.platform !== "linux",
}, async () => {
  const ctx = { root: "/", os: nodeOsFacts() };
  const details = await collectDetails(ctx, {
    agentVersion: "0.1.0",
    nodeVersion: process.version,
  });
  assertValid("details", details);
  assert.ok(details.cpu.cores >= 1 && details.cpu.cores <= 1024);
  assert.ok(details.memory.totalBytes > 64 * 1024 ** 2);
  assert.ok(details.bootTime > Date.UTC(2000, 0, 1) && details.bootTime <= Date.now());
  assert.ok(
    details.disks.some((d) => d.mount === "/" && d.sizeBytes > 0),
    "/ is a real filesystem",
  );
  assert.ok(details.interfaces.every((i) => i.name !== "lo"));

  const collector = new VitalsCollector(ctx);
  const first = await collector.sample(Date.now());
  // Back to back: a near-zero interval must still give in-range values.
  const vitals = await collector.sample(Date.now());
  for (const v of [first, vitals]) {
    assertValid("vitals", v);
    assert.ok(v.cpu.total >= 0 && v.cpu.total <= 100);
    assert.ok(v.cpu.perCore.length >= 1);
    assert.ok(v.memory.usedBytes > 0 && v.memory.usedBytes < v.memory.totalBytes);
    assert.equal(v.memory.totalBytes, details.memory.totalBytes);
    assert.ok(v.uptimeS > 0);
    assert.ok(v.procs > 0);
    assert.ok(v.load.every((l) => l >= 0));
    assert.ok(v.diskIo.readBps >= 0 && v.diskIo.writeBps >= 0);
    assert.ok(v.net.every((n) => n.rxBps >= 0 && n.txBps >= 0 && n.iface !== "lo"));
    for (const d of v.disks) assert.ok(d.usedBytes <= d.sizeBytes);
  }
});
