import assert from "node:assert/strict";
import { test } from "node:test";
import { nextEvent, waitFor } from "@picluster/common/testing";
import type { ClusterEvent } from "@picluster/primary";
import { startAgent, startPrimary } from "./support/cluster.js";

test("cluster - 50 agents in one process are all alive within 2 s, with details and vitals in the registry", async (t) => {
  const p = await startPrimary(t, { "primary.vitals_interval": "1s" });
  const started = Date.now();
  const agents = Array.from({ length: 50 }, (_, i) =>
    startAgent(t, p, `pi-${String(i).padStart(2, "0")}`),
  );
  await waitFor(
    () => p.primary.registry.list().filter((n) => n.state === "alive").length === 50,
    "50 nodes alive",
    2_000,
  );
  const aliveAfterMs = Date.now() - started;
  await waitFor(
    () => p.primary.registry.list().every((n) => n.details !== undefined && n.vitals !== undefined),
    "details and vitals of all 50",
    5_000,
  );
  const nodes = p.primary.registry.list();
  assert.equal(nodes.length, 50, "no duplicates");
  assert.deepEqual(
    nodes.map((n) => n.name).sort(),
    agents.map((_, i) => `pi-${String(i).padStart(2, "0")}`),
  );
  for (const n of nodes) {
    assert.equal(
      n.details?.board?.model.startsWith("Raspberry Pi 4"),
      true,
      `${n.name} has its board details`,
    );
    assert.equal(typeof n.vitals?.cpu.total, "number");
    assert.equal(n.vitals?.throttling?.underVoltage, true, "the pi4 fixture is under-voltage");
  }
  t.diagnostic(`50 agents alive after ${aliveAfterMs} ms`);
});

test("cluster - a node said bye is left; its under-voltage was reported as an event of its own", async (t) => {
  const p = await startPrimary(t, { "primary.vitals_interval": "1s" });
  const events: ClusterEvent[] = [];
  p.primary.events.on((e) => events.push(e));
  const a = startAgent(t, p, "pi-bye");
  await nextEvent(p.primary.events, "node.throttling", {
    within: 5_000,
    where: (e) => e.flag === "underVoltage" && e.on,
  });
  await a.stop();
  const left = await nextEvent(p.primary.events, "node.state", {
    within: 2_000,
    where: (e) => e.to === "left",
  }).catch(() => undefined);
  const node = p.primary.registry.list()[0];
  assert.equal(node?.state, "left", `state after bye (event: ${JSON.stringify(left)})`);
  assert.equal(node?.stateReason, "test over");
  assert.ok(
    !events.some((e) => e.kind === "node.state" && e.to === "down"),
    "a clean goodbye is never down",
  );
});

test("cluster - the primary restarted while agents run: all reconnect, and no vitals sample is lost or duplicated", async (t) => {
  const flags = { "primary.vitals_interval": "1s" };
  const p1 = await startPrimary(t, flags);
  const received = new Map<string, number[]>();
  const record = (e: ClusterEvent) => {
    if (e.kind !== "node.vitals" || e.seq === undefined) return;
    const list = received.get(e.nodeId) ?? [];
    list.push(e.seq);
    received.set(e.nodeId, list);
  };
  p1.primary.events.on(record);
  const agents = Array.from({ length: 5 }, (_, i) =>
    startAgent(t, p1, `pi-r${i}`, { "agent.reconnect_max": "1s" }),
  );
  await waitFor(
    () => [...received.values()].filter((s) => s.length >= 2).length === 5,
    "two samples from each agent",
    10_000,
  );

  await p1.close();
  const closedAt = Date.now();
  // Let every agent take at least one sample while the primary is gone.
  await waitFor(
    () => agents.every((a) => a.agent.outbox.pending().some((e) => e.ts > closedAt)),
    "samples taken while the primary is down",
    5_000,
  );
  const p2 = await startPrimary(t, { ...flags, "primary.port": String(p1.port) }, p1.dataDir);
  p2.primary.events.on(record);
  await waitFor(
    () => p2.primary.registry.list().filter((n) => n.state === "alive").length === 5,
    "all 5 reconnected",
    10_000,
  );
  await waitFor(
    () => agents.every((a) => a.agent.outbox.size === 0),
    "every queued sample acknowledged",
    10_000,
  );
  for (const a of agents) await a.stop();

  assert.equal(received.size, 5);
  for (const [nodeId, seqs] of received) {
    const first = seqs[0] ?? 0;
    const expected = Array.from({ length: seqs.length }, (_, i) => first + i);
    assert.deepEqual(seqs, expected, `node ${nodeId}: every seq exactly once, in order`);
  }
  for (const a of agents) {
    const seqs = received.get(a.agent.id) ?? [];
    assert.equal(a.agent.outbox.dropped, 0);
    assert.ok(seqs.length >= 3, `${a.agent.id} sent samples before, during and after the restart`);
  }
});

test("cluster - a primary that cannot start (port taken) says why and leaves nothing running", async (t) => {
  const p = await startPrimary(t);
  await assert.rejects(startPrimary(t, { "primary.port": String(p.port) }), /EADDRINUSE/);
});
