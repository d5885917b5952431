import assert from "node:assert/strict";
import { test } from "node:test";
import { silentLogger } from "@picluster/common";
import { ManualClock } from "@picluster/common/testing";
import { type ClusterEvent, EventBus } from "../src/events.js";
import { LivenessDetector } from "../src/liveness.js";
import { MemoryRegistry } from "../src/registry.js";

function setup() {
  const clock = new ManualClock(1_000_000);
  const events = new EventBus(silentLogger());
  const seen: ClusterEvent[] = [];
  events.on((e) => seen.push(e));
  const registry = new MemoryRegistry(events);
  const liveness = new LivenessDetector({
    registry,
    clock,
    suspectAfterMs: 2_500,
    deadAfterMs: 4_500,
  });
  const ac = new AbortController();
  liveness.start(ac.signal);
  const hello = {
    id: "n1",
    name: "pi-01",
    labels: {},
    address: "127.0.0.1:5000",
    agentVersion: "0.1.0",
    legacy: false,
  };
  const states = () =>
    seen
      .filter((e) => e.kind === "node.state")
      .map((e) => (e.kind === "node.state" ? [e.to, e.at, e.reason] : []));
  return { clock, registry, liveness, ac, hello, seen, states };
}

test("liveness - a silent node turns suspect at suspect_after and down at dead_after, each an event with time and reason", () => {
  const { clock, registry, liveness, ac, hello, states } = setup();
  registry.connected(hello, clock.now());
  liveness.watch("n1");
  const t0 = clock.now();
  clock.advance(2_400);
  assert.equal(registry.get("n1")?.state, "alive");
  clock.advance(100);
  assert.equal(registry.get("n1")?.state, "suspect", "suspect once 2.5 s of silence have passed");
  clock.advance(1_900);
  assert.equal(registry.get("n1")?.state, "suspect");
  clock.advance(100);
  assert.equal(registry.get("n1")?.state, "down");
  assert.deepEqual(states(), [
    ["alive", t0, "connected"],
    ["suspect", t0 + 2_500, "silent for 2.5 s"],
    ["down", t0 + 4_500, "silent for 4.5 s"],
  ]);
  ac.abort();
  assert.equal(clock.pending, 0, "the sweep timer stops with the signal");
});

test("liveness - a node heard from again comes back alive from suspect and from down", () => {
  const { clock, registry, liveness, ac, hello, states } = setup();
  registry.connected(hello, clock.now());
  liveness.watch("n1");
  clock.advance(3_000);
  registry.seen("n1", clock.now());
  assert.equal(registry.get("n1")?.state, "alive");
  clock.advance(5_000);
  assert.equal(registry.get("n1")?.state, "down");
  registry.seen("n1", clock.now());
  assert.equal(registry.get("n1")?.state, "alive");
  assert.deepEqual(
    states().map((s) => s[0]),
    ["alive", "suspect", "alive", "suspect", "down", "alive"],
  );
  ac.abort();
});

test("liveness - heartbeats every second keep a node alive indefinitely", () => {
  const { clock, registry, liveness, ac, hello } = setup();
  registry.connected(hello, clock.now());
  liveness.watch("n1");
  for (let i = 0; i < 600; i++) {
    clock.advance(1_000);
    registry.seen("n1", clock.now());
  }
  assert.equal(registry.get("n1")?.state, "alive");
  assert.equal(registry.get("n1")?.stateReason, "connected");
  ac.abort();
});

test("liveness - a scaled node (legacy, 5 s keep-alive) gets proportionally longer thresholds", () => {
  const { clock, registry, liveness, ac, hello } = setup();
  registry.connected({ ...hello, legacy: true }, clock.now());
  liveness.watch("n1", 5);
  clock.advance(12_400);
  assert.equal(registry.get("n1")?.state, "alive");
  clock.advance(100);
  assert.equal(registry.get("n1")?.state, "suspect");
  clock.advance(10_000);
  assert.equal(registry.get("n1")?.state, "down");
  ac.abort();
});

test("liveness - an unwatched node (disconnected or said bye) is not swept", () => {
  const { clock, registry, liveness, ac, hello } = setup();
  registry.connected(hello, clock.now());
  liveness.watch("n1");
  registry.setState("n1", "left", "said bye", clock.now());
  liveness.unwatch("n1");
  clock.advance(60_000);
  assert.equal(registry.get("n1")?.state, "left");
  ac.abort();
});
