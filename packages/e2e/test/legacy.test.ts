import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { connect } from "node:net";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { deadline, nextEvent, waitFor } from "@picluster/common/testing";
import { startPrimary } from "./support/cluster.js";

const CLIENT = new URL("../../test/support/tutorial_secondary.py", import.meta.url).pathname;
const PYTHON = process.env.PYTHON ?? "python3";

test("legacy - the tutorial's Python secondary joins unchanged: uuid, primary info, details and vitals; killed, it is down", async (t) => {
  const p = await startPrimary(t, { "legacy.port": "0", "legacy.host": "127.0.0.1" });
  assert.ok(p.primary.legacy !== undefined, "the legacy listener is on");
  const legacyPort = await portOf(p);
  const child = spawn(
    PYTHON,
    [CLIENT, "127.0.0.1", String(legacyPort), "tutorial-pi", "0.2", "0.5"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  t.after(() => {
    child.kill("SIGKILL");
  });
  const replies: Array<{ type: string; payload: unknown }> = [];
  createInterface({ input: child.stdout }).on("line", (line) =>
    replies.push(JSON.parse(line) as { type: string; payload: unknown }),
  );
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });

  const id = "legacy-tutorial-pi";
  await waitFor(
    () => p.primary.registry.get(id)?.vitals !== undefined,
    `tutorial node with vitals (python stderr: ${stderr})`,
    5_000,
  );
  const node = p.primary.registry.get(id);
  assert.equal(node?.name, "tutorial-pi");
  assert.equal(node?.legacy, true);
  assert.deepEqual(node?.labels, { legacy: "true" });
  assert.equal(node?.state, "alive");
  assert.equal(node?.details?.cpu.cores, 4);
  assert.equal(node?.details?.cpu.maxMhz, 1500);
  assert.equal(node?.details?.memory.totalBytes, 4 * 1024 ** 3);
  assert.equal(node?.vitals?.cpu.total, 12.5);
  assert.deepEqual(node?.vitals?.temps, [{ zone: "cpu", type: "cpu_temperature", celsius: 51.1 }]);
  assert.equal(node?.vitals?.memory.usedBytes, 1024 ** 3);
  assert.equal(node?.vitals?.load, undefined, "what the tutorial does not report stays absent");

  assert.deepEqual(
    replies.map((r) => r.type),
    ["uuid", "primary_info", "secondary_details", "bad_message"],
  );
  assert.match(String(replies[0]?.payload), /^[0-9a-f]{32}$/);
  const info = replies[1]?.payload as Record<string, unknown>;
  for (const key of [
    "hostname",
    "ram",
    "swap",
    "cpu",
    "cpu_cores",
    "cpu_frequency_max",
    "cpu_frequency_min",
  ]) {
    assert.ok(key in info, `primary_info has ${key}`);
  }
  const secondaries = replies[2]?.payload as Record<string, { uuid: string; address: string }>;
  const uuid = String(replies[0]?.payload);
  assert.equal(secondaries[uuid]?.uuid, uuid);
  assert.match(secondaries[uuid]?.address ?? "", /^127\.0\.0\.1:\d+$/);
  assert.equal(replies[3]?.payload, "unknown");

  const down = nextEvent(p.primary.events, "node.state", {
    within: 2_000,
    where: (e) => e.nodeId === id && e.to === "down",
  });
  child.kill("SIGKILL");
  assert.equal((await down).reason, "connection lost");

  // It comes back as the same node, keyed by hostname.
  const again = spawn(
    PYTHON,
    [CLIENT, "127.0.0.1", String(legacyPort), "tutorial-pi", "0.2", "0.5"],
    { stdio: "ignore" },
  );
  t.after(() => {
    again.kill("SIGKILL");
  });
  await nextEvent(p.primary.events, "node.state", {
    within: 5_000,
    where: (e) => e.nodeId === id && e.to === "alive",
  });
  assert.equal(p.primary.registry.list().filter((n) => n.legacy).length, 1, "never a duplicate");
});

test("legacy - unknown types and bad frames are logged and counted, never fatal to the primary", async (t) => {
  const { p, socket } = await rawLegacyClient(t);
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  socket.write('{"type":"node_baseinfo","payload":{"hostname":"odd","ram":1,"cpu_cores":1}}\r');
  socket.write(
    '{"type":"telemetry","payload":{}}\rnot json at all\r{"type":"telemetry","payload":{}}\r',
  );
  await waitFor(() => p.primary.legacy?.unknownTypes === 2, "two unknown types counted", 2_000);
  assert.equal(p.primary.registry.get("legacy-odd")?.state, "alive", "the node is fine");
  assert.ok(
    p.records.some(
      (r) =>
        r.msg === "unknown message type from a tutorial node, ignored" && r.type === "telemetry",
    ),
  );
  assert.ok(
    p.records.some((r) => r.msg === "bad frame from a tutorial node" && r.code === "E_BAD_JSON"),
  );
  assert.ok(
    p.records.some(
      (r) =>
        r.msg ===
        "legacy listener for tutorial nodes is ON: it is plaintext and unauthenticated; bind it only on a trusted network",
    ),
  );
});

async function portOf(p: { records: Array<Record<string, unknown>> }): Promise<number> {
  await waitFor(
    () => p.records.some((r) => r.msg === "listening for tutorial nodes"),
    "legacy listener up",
    2_000,
  );
  return Number(p.records.find((r) => r.msg === "listening for tutorial nodes")?.port);
}

test("legacy - a client that asks and never reads is cut off before its answers pile up", async (t) => {
  const { p, socket } = await rawLegacyClient(t);
  socket.on("error", () => {});
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  socket.pause();
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  const ask = Buffer.from('{"type":"info","payload":"node_baseinfo"}\r'.repeat(10_000));
  for (let i = 0; i < 20 && !socket.destroyed; i++) socket.write(ask);
  await deadline(closed, 5_000, "the primary closes a client that never reads");
  assert.ok(p.records.some((r) => r.msg === "tutorial node is not reading its answers, closing"));
});

/** A primary with the legacy listener on, and a raw TCP client connected to it. */
async function rawLegacyClient(t: Parameters<typeof startPrimary>[0]) {
  const p = await startPrimary(t, { "legacy.port": "0", "legacy.host": "127.0.0.1" });
  const port = await portOf(p);
  const socket = connect({ host: "127.0.0.1", port });
  t.after(() => {
    socket.destroy();
  });
  return { p, socket };
}
