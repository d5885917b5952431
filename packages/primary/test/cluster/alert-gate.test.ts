/**
 * The scale-out mode's alert gate against a real nats-server's key-value
 * bucket: only the leader tells, a follower keeps what it would have told,
 * and a new leader tells exactly what the last one did not.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { loadConfig, silentLogger } from "@picluster/common";
import { ManualClock, NO_NATS, startNatsCluster, waitFor } from "@picluster/common/testing";
import type { AlertMessage } from "../../src/alerts/message.js";
import { AlertGate } from "../../src/cluster/alert-gate.js";
import { bucket, connectNats } from "../../src/cluster/nats.js";

function message(status: "firing" | "resolved", node: string, at: number): AlertMessage {
  return {
    status,
    rule: "node_down",
    severity: "critical",
    title: `${node} is ${status === "firing" ? "down" : "back"}`,
    text: "",
    nodes: [{ id: `id-${node}`, name: node }],
    at,
  };
}

test("alert gate - only the leader tells; a follower's message is dropped once the leader told it, and told by it when it leads before anyone did", {
  skip: NO_NATS,
}, async (t) => {
  const nats = await startNatsCluster(t, 1);
  const config = loadConfig({
    env: {},
    flags: { "cluster.nats": nats.urls.join(",") },
    paths: { cwd: "/nonexistent", home: "/nonexistent", uid: 1000 },
  }).config.cluster;
  const clock = new ManualClock(1_000_000);
  const gates = await Promise.all(
    ["a", "b"].map(async (name) => {
      const nc = await connectNats(config, name);
      t.after(() => nc.close());
      const told: AlertMessage[] = [];
      const gate = new AlertGate({
        deliver: (_channels, msg) => told.push(msg),
        holdMs: 10_000,
        clock,
        log: silentLogger(),
      });
      gate.self = name;
      await gate.attach(await bucket(nc, "picluster-alerts", { history: 1 }));
      t.after(() => gate.stop());
      return { gate, told };
    }),
  );
  const [a, b] = gates as [(typeof gates)[0], (typeof gates)[0]];
  a.gate.setLeader(true);
  b.gate.setLeader(false);

  // Both engines judge pi-1 down: the leader tells, the follower keeps it until it sees that.
  a.gate.deliver(["hook"], message("firing", "pi-1", clock.now()));
  b.gate.deliver(["hook"], message("firing", "pi-1", clock.now()));
  await waitFor(() => a.told.length === 1, "the leader told pi-1 down", 5_000);
  // pi-2 goes down as the leader dies: only the follower's engine got to it.
  b.gate.deliver(["hook"], message("firing", "pi-2", clock.now()));
  await waitFor(
    () => b.gate.lastTold(message("firing", "pi-1", 0)) === "firing",
    "the follower saw the leader tell pi-1 down",
    5_000,
  );
  a.gate.setLeader(false);
  b.gate.setLeader(true);
  await waitFor(() => b.told.length === 1, "the new leader told pi-2 down", 5_000);
  await waitFor(
    () => a.gate.lastTold(message("firing", "pi-2", 0)) === "firing",
    "the old leader saw the new one tell pi-2 down",
    5_000,
  );
  assert.deepEqual(
    a.told.map((m) => m.title),
    ["pi-1 is down"],
  );
  assert.deepEqual(
    b.told.map((m) => m.title),
    ["pi-2 is down"],
    "the new leader told what the old one did not, and nothing twice",
  );
  // From now on the new leader tells at once, and the old one keeps quiet.
  b.gate.deliver(["hook"], message("resolved", "pi-1", clock.now()));
  a.gate.deliver(["hook"], message("resolved", "pi-1", clock.now()));
  await waitFor(() => b.told.length === 2, "pi-1 back, told by the new leader", 5_000);
  assert.equal(a.told.length, 1);
});
