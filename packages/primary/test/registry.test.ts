import assert from "node:assert/strict";
import { test } from "node:test";
import { silentLogger } from "@picluster/common";
import { type ClusterEvent, EventBus } from "../src/events.js";
import { MemoryRegistry } from "../src/registry.js";
import { details } from "./support/details.js";
import { vitals } from "./support/vitals.js";

const hello = {
  id: "n1",
  name: "pi-01",
  labels: { rack: "a" },
  address: "10.0.0.2:4000",
  agentVersion: "0.1.0",
  legacy: false,
};

function setup() {
  const events = new EventBus(silentLogger());
  const seen: ClusterEvent[] = [];
  events.on((e) => seen.push(e));
  return { registry: new MemoryRegistry(events), seen, events };
}

test("registry - a node that reconnects is the same node, never a duplicate", () => {
  const { registry, seen } = setup();
  registry.connected(hello, 1);
  registry.setState("n1", "down", "connection lost (ECONNRESET)", 2);
  registry.connected({ ...hello, address: "10.0.0.2:4001" }, 3);
  assert.equal(registry.list().length, 1);
  const node = registry.get("n1");
  assert.equal(node?.state, "alive");
  assert.equal(node?.address, "10.0.0.2:4001");
  assert.equal(node?.firstSeen, 1);
  assert.deepEqual(
    seen.map((e) => (e.kind === "node.state" ? `${e.kind}:${e.to}:${e.reason}` : e.kind)),
    [
      "node.joined",
      "node.state:alive:connected",
      "node.state:down:connection lost (ECONNRESET)",
      "node.state:alive:reconnected",
    ],
  );
});

test("registry - a throttling flag turning on or off is an event of its own; staying on is not", () => {
  const { registry, seen } = setup();
  registry.connected(hello, 1);
  registry.setVitals("n1", vitals({}), 1, 10);
  registry.setVitals("n1", vitals({ underVoltage: true, underVoltageOccurred: true }), 2, 20);
  registry.setVitals("n1", vitals({ underVoltage: true, underVoltageOccurred: true }), 3, 30);
  registry.setVitals("n1", vitals({ underVoltage: false, throttled: true }), 4, 40);
  const flags = seen
    .filter((e) => e.kind === "node.throttling")
    .map((e) => (e.kind === "node.throttling" ? [e.flag, e.on, e.at] : []));
  assert.deepEqual(flags, [
    ["underVoltage", true, 20],
    ["underVoltage", false, 40],
    ["throttled", true, 40],
  ]);
  assert.equal(registry.get("n1")?.lastSeq, 0, "a sample is not stored until the store says so");
  registry.markStored("n1", 4);
  registry.markStored("n1", 2);
  assert.equal(registry.get("n1")?.lastSeq, 4, "only forward");
});

test("registry - a container changing state between samples is an event, with its exit code; first seen, unchanged or gone is not", () => {
  const { registry, seen } = setup();
  registry.connected(hello, 1);
  const c = (name: string, state: string, exitCode?: number) => ({
    id: `${name}-id`,
    name,
    image: "nginx:1",
    state,
    restarts: 0,
    ...(exitCode === undefined ? {} : { exitCode }),
  });
  const withContainers = (...containers: ReturnType<typeof c>[]) => ({ ...vitals({}), containers });
  registry.setVitals("n1", withContainers(c("web", "running"), c("job", "exited", 0)), 1, 10);
  registry.setVitals("n1", withContainers(c("web", "running"), c("job", "exited", 0)), 2, 20);
  registry.setVitals("n1", withContainers(c("web", "exited", 137)), 3, 30);
  registry.setVitals("n1", withContainers(c("web", "running"), c("new", "exited", 1)), 4, 40);
  const changes = seen.flatMap((e) =>
    e.kind === "container.state" ? [[e.container, e.from, e.to, e.exitCode, e.at]] : [],
  );
  assert.deepEqual(changes, [
    ["web", "running", "exited", 137, 30],
    ["web", "exited", "running", undefined, 40],
  ]);
});

test("registry - a listener that throws does not stop the others", () => {
  const { registry, events } = setup();
  let after = 0;
  events.on(() => {
    throw new Error("broken reader");
  });
  events.on(() => {
    after += 1;
  });
  registry.connected(hello, 1);
  assert.equal(after, 2, "joined and state events both reached the second listener");
});

test("registry - a removed node is gone, and what its cut session still sends changes nothing and announces nothing", () => {
  const { registry, seen } = setup();
  registry.connected(hello, 1);
  const before = seen.length;
  assert.equal(registry.remove("n1")?.name, "pi-01");
  assert.equal(registry.get("n1"), undefined);
  assert.deepEqual(registry.list(), []);
  registry.seen("n1", 2);
  registry.setState("n1", "down", "node removed", 3);
  registry.setVitals("n1", vitals(), 1, 4);
  registry.markStored("n1", 1);
  assert.equal(registry.get("n1"), undefined, "not brought back");
  assert.equal(seen.length, before, "no event: the removal itself is announced by the caller");
  assert.equal(registry.remove("n1"), undefined);
});

test("registry - details are an event only when something a person cares about changed, saying what", () => {
  const { registry, seen } = setup();
  registry.connected(hello, 1);
  const first = details();
  registry.setDetails("n1", first, 2);
  // An agent sends details again when any field differs: a boot time a second off, an update count.
  registry.setDetails("n1", { ...first, bootTime: (first.bootTime ?? 0) + 1_000 }, 3);
  registry.setDetails(
    "n1",
    { ...first, bootTime: 1_700_000_001_000, updates: { available: 3, checkedAt: 4 } },
    4,
  );
  registry.setDetails(
    "n1",
    {
      ...first,
      kernel: "6.6.62+rpt-rpi-v8",
      agentVersion: "0.2.0",
      memory: { ...first.memory, totalBytes: first.memory.totalBytes + 4096 },
      disks: [...first.disks, { mount: "/mnt/usb", fs: "vfat", sizeBytes: 64 * 1024 ** 3 }],
      interfaces: [{ name: "eth0", mac: "dc:a6:32:00:00:01", addresses: ["192.168.1.22"] }],
    },
    5,
  );
  assert.equal(registry.get("n1")?.details?.agentVersion, "0.2.0", "the registry keeps the latest");
  assert.deepEqual(
    seen
      .filter((e) => e.kind === "node.details")
      .map((e) => (e.kind === "node.details" ? [e.at, e.first === true, e.changes] : [])),
    [
      [
        2,
        true,
        [
          "Raspberry Pi 4 Model B Rev 1.4, 4 cores, 3.7 GiB, Debian GNU/Linux 12 (bookworm), kernel 6.6.51+rpt-rpi-v8, agent 0.1.0",
        ],
      ],
      [
        5,
        false,
        [
          "kernel 6.6.51+rpt-rpi-v8 → 6.6.62+rpt-rpi-v8",
          "agent 0.1.0 → 0.2.0",
          "disk /mnt/usb added (64 GiB, vfat)",
          "address 192.168.1.22 added",
          "address 192.168.1.21 removed",
        ],
      ],
    ],
  );
});
