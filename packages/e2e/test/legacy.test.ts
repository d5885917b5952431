import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { connect } from "node:net";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { deadline, nextEvent, waitFor } from "@picluster/common/testing";
import { launch, NO_BROWSER, until } from "./support/browser.js";
import { httpPort, spawnAgent, startAgent, startPrimary } from "./support/cluster.js";
import { startReceiver } from "./support/http-receiver.js";

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

/**
 * A tutorial node by hand: connects (from `localAddress`, any of 127/8),
 * sends its node_baseinfo, and tells when the primary closes the connection.
 */
async function tutorialNode(
  t: Parameters<typeof startPrimary>[0],
  port: number,
  hostname: string,
  opts: { localAddress?: string; baseinfo?: Record<string, unknown> } = {},
) {
  const socket = connect({ host: "127.0.0.1", port, localAddress: opts.localAddress });
  t.after(() => {
    socket.destroy();
  });
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  const send = (type: string, payload: unknown) =>
    socket.write(`${JSON.stringify({ type, payload })}\r`);
  send("node_baseinfo", {
    hostname,
    ram: 4 * 1024 ** 3,
    swap: 0,
    cpu: "ARMv7 Processor rev 3 (v7l)",
    cpu_cores: 4,
    cpu_frequency_max: 1500,
    cpu_frequency_min: 600,
    ...opts.baseinfo,
  });
  return { socket, closed, send };
}

const legacyNames = (p: {
  primary: { registry: { list(): Array<{ legacy: boolean; name: string }> } };
}) =>
  p.primary.registry
    .list()
    .filter((n) => n.legacy)
    .map((n) => n.name)
    .sort();

test("legacy - new tutorial nodes are capped per address a minute and in all; refused peers are closed and logged by the count; known nodes come back", async (t) => {
  const p = await startPrimary(t, {
    "legacy.port": "0",
    "legacy.host": "127.0.0.1",
    "legacy.max_nodes": "5",
    "legacy.new_nodes_per_minute": "3",
  });
  const port = await portOf(p);
  const first = new Map<string, Awaited<ReturnType<typeof tutorialNode>>>();
  const admitted = async (host: string, localAddress: string) => {
    first.set(host, await tutorialNode(t, port, host, { localAddress }));
    await waitFor(
      () => p.primary.registry.get(`legacy-${host}`)?.state === "alive",
      `${host} admitted`,
      2_000,
    );
  };
  for (const host of ["a-1", "a-2", "a-3"]) await admitted(host, "127.0.0.1");
  // A fourth new name from the same address within the minute, and ten more: each closed.
  for (let i = 4; i <= 13; i++) {
    const refused = await tutorialNode(t, port, `a-${i}`, { localAddress: "127.0.0.1" });
    await deadline(refused.closed, 2_000, `a-${i} closed`);
  }
  assert.deepEqual(legacyNames(p), ["a-1", "a-2", "a-3"]);
  assert.equal(p.primary.legacy?.refusedTotals.too_many_new, 10, "every refusal counted");
  const rateLines = p.records.filter(
    (r) => r.msg === "tutorial node refused: too many new tutorial nodes from one address",
  );
  assert.equal(rateLines.length, 1, "one line for ten refusals: the rest are counted");
  assert.deepEqual(
    [rateLines[0]?.reason, rateLines[0]?.refused, rateLines[0]?.host, rateLines[0]?.address],
    ["too_many_new", 1, "a-4", "127.0.0.1"],
  );
  assert.equal(rateLines[0]?.limit, 3);
  assert.equal(rateLines[0]?.key, "[legacy] new_nodes_per_minute");

  // Another address may add its own, up to the cap of five in all.
  for (const host of ["b-1", "b-2"]) await admitted(host, "127.0.0.2");
  const over = await tutorialNode(t, port, "b-3", { localAddress: "127.0.0.2" });
  await deadline(over.closed, 2_000, "b-3 closed");
  assert.deepEqual(legacyNames(p), ["a-1", "a-2", "a-3", "b-1", "b-2"]);
  const capLine = p.records.find(
    (r) => r.msg === "tutorial node refused: the primary keeps no more tutorial nodes",
  );
  assert.deepEqual(
    [capLine?.reason, capLine?.host, capLine?.limit, capLine?.key],
    ["too_many_nodes", "b-3", 5, "[legacy] max_nodes"],
  );

  // A node it knows comes back whatever the limits, from any address.
  const again = await tutorialNode(t, port, "a-2", { localAddress: "127.0.0.3" });
  await deadline(
    first.get("a-2")?.closed ?? Promise.reject(new Error("no a-2")),
    2_000,
    "the older a-2 connection replaced",
  );
  await waitFor(
    () => p.primary.registry.get("legacy-a-2")?.address.startsWith("127.0.0.3:") === true,
    "a-2 back from its new address",
    2_000,
  );
  assert.equal(again.socket.destroyed, false, "the new connection stays");
  assert.equal(p.primary.registry.list().filter((n) => n.legacy).length, 5, "never a sixth");
});

test("legacy - a figure out of range is refused naming the field and never stored: no 1e300 cores, no negative memory", async (t) => {
  const p = await startPrimary(t, { "legacy.port": "0", "legacy.host": "127.0.0.1" });
  const port = await portOf(p);
  const base = `http://127.0.0.1:${httpPort(p)}`;
  const cluster = async () =>
    (await (await fetch(`${base}/api/cluster`)).json()) as {
      nodes: number;
      totals: { cores: number; memoryBytes: number };
    };
  const invalid = (msg: string) => p.records.filter((r) => r.msg === msg).map((r) => r.error);

  const huge = await tutorialNode(t, port, "huge", { baseinfo: { cpu_cores: 1e300 } });
  await waitFor(
    () => invalid("invalid details from a tutorial node, ignored").length === 1,
    "the details refused",
    2_000,
  );
  assert.match(
    String(invalid("invalid details from a tutorial node, ignored")[0]),
    /^payload\/cpu_cores: /,
  );
  huge.send("node_baseinfo", { hostname: "huge", ram: -1, cpu_cores: 4 });
  huge.send("node_baseinfo", { hostname: "huge\u001b]0;owned\u0007", ram: 1024, cpu_cores: 4 });
  huge.send("node_baseinfo", { hostname: "huge", ram: 2 ** 60, cpu_cores: 4 });
  await waitFor(
    () => invalid("invalid details from a tutorial node, ignored").length === 4,
    "each refused",
    2_000,
  );
  assert.deepEqual(
    invalid("invalid details from a tutorial node, ignored").map((e) => String(e).split(":")[0]),
    ["payload/cpu_cores", "payload/ram", "payload/hostname", "payload/ram"],
  );
  assert.equal(p.primary.registry.get("legacy-huge"), undefined, "no node made of them");
  assert.deepEqual((await cluster()).totals, { cores: 0, memoryBytes: 0 });

  // Each was a strike: a new connection with valid details, then vitals with one figure out of range each.
  const node = await tutorialNode(t, port, "huge");
  await waitFor(() => p.primary.registry.get("legacy-huge") !== undefined, "huge admitted", 2_000);
  assert.equal(huge.socket.destroyed, false, "four strikes are within the limit of five");
  const good = {
    cpu_percentage: 12.5,
    cpu_frequency: 1500,
    ram_free: 1024 ** 3,
    swap_free: 0,
    cpu_temperature: 51,
  };
  for (const bad of [
    { cpu_percentage: 250 },
    { cpu_temperature: 1e300 },
    { ram_free: -5 },
    { cpu_frequency: 1e12 },
  ])
    node.send("vitals", { ...good, ...bad });
  await waitFor(
    () => invalid("invalid vitals from a tutorial node, ignored").length === 4,
    "each sample refused",
    2_000,
  );
  assert.deepEqual(
    invalid("invalid vitals from a tutorial node, ignored").map((e) => String(e).split(":")[0]),
    [
      "payload/cpu_percentage",
      "payload/cpu_temperature",
      "payload/ram_free",
      "payload/cpu_frequency",
    ],
  );
  assert.equal(p.primary.registry.get("legacy-huge")?.vitals, undefined, "none of them kept");
  assert.equal(p.primary.store.samplesStored, 0, "none of them stored");
  assert.deepEqual((await cluster()).totals, { cores: 4, memoryBytes: 4 * 1024 ** 3 });

  // Within range, it is kept; past the strike limit of bad messages, the connection is closed.
  node.send("vitals", good);
  await waitFor(
    () => p.primary.registry.get("legacy-huge")?.vitals?.cpu.total === 12.5,
    "a good sample kept",
    2_000,
  );
  for (let i = 0; i < 2; i++) node.send("vitals", { ...good, cpu_percentage: -1 });
  await deadline(node.closed, 2_000, "closed past the strike limit");
});

test("legacy - a tutorial node never takes the name of a node with credentials: refused at once, or cut off (left) when the name gets one; the name finds the real node", async (t) => {
  const p = await startPrimary(t, { "legacy.port": "0", "legacy.host": "127.0.0.1" });
  const port = await portOf(p);
  const base = `http://127.0.0.1:${httpPort(p)}`;
  const real = startAgent(t, p, "vm");
  await waitFor(() => p.primary.registry.get(real.agent.id)?.state === "alive", "vm alive", 5_000);

  const impostor = await tutorialNode(t, port, "vm");
  await deadline(impostor.closed, 2_000, "the impostor closed");
  assert.equal(p.primary.registry.get("legacy-vm"), undefined);
  assert.deepEqual(
    p.primary.registry.list().map((n) => [n.name, n.legacy]),
    [["vm", false]],
    "one vm: the real one",
  );
  const line = p.records.find(
    (r) => r.msg === "tutorial node refused: a node with credentials has its name",
  );
  assert.deepEqual([line?.reason, line?.host, line?.refused], ["name_taken", "vm", 1]);

  // A refused connection reads no further, not even the rest of the same packet.
  const sneaky = connect({ host: "127.0.0.1", port });
  t.after(() => {
    sneaky.destroy();
  });
  sneaky.on("error", () => {});
  const sneakyClosed = new Promise<void>((resolve) => sneaky.once("close", () => resolve()));
  const baseinfo = (hostname: string) =>
    `${JSON.stringify({ type: "node_baseinfo", payload: { hostname, ram: 1024, cpu_cores: 1 } })}\r`;
  sneaky.write(baseinfo("vm") + baseinfo("sneaky"));
  await deadline(sneakyClosed, 2_000, "the second try closed");
  assert.equal(p.primary.registry.get("legacy-sneaky"), undefined, "nothing after the refusal");

  // A pending join token reserves its name too.
  p.addNode("pi-next");
  const early = await tutorialNode(t, port, "pi-next");
  await deadline(early.closed, 2_000, "a name with a pending token refused");

  // A tutorial node first; then `node add` gives its name a credential: it is cut off, left.
  const first = await tutorialNode(t, port, "pi-old");
  await waitFor(
    () => p.primary.registry.get("legacy-pi-old")?.state === "alive",
    "pi-old as a tutorial node",
    2_000,
  );
  const left = nextEvent(p.primary.events, "node.state", {
    within: 5_000,
    where: (e) => e.nodeId === "legacy-pi-old" && e.to === "left",
  });
  const agent = startAgent(t, p, "pi-old");
  assert.equal((await left).reason, "its name now belongs to a node with credentials");
  await deadline(first.closed, 2_000, "the tutorial pi-old closed");
  await waitFor(
    () => p.primary.registry.get(agent.agent.id)?.state === "alive",
    "the real pi-old alive",
    5_000,
  );
  // Both are known now; the name leads to the real one.
  const shown = (await (await fetch(`${base}/api/nodes/pi-old`)).json()) as {
    id: string;
    legacy: boolean;
  };
  assert.deepEqual([shown.id, shown.legacy], [agent.agent.id, false]);
  const back = await tutorialNode(t, port, "pi-old");
  await deadline(back.closed, 2_000, "the tutorial pi-old refused from now on");
});

test("legacy - in quiet hours a tutorial node's critical alert waits, while a real node's goes out", async (t) => {
  const hook = await startReceiver(t);
  const hhmm = (ms: number) => {
    const d = new Date(ms);
    return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
  };
  const now = Date.now();
  const ini = [
    "[alerts]",
    // From a minute ago to an hour from now, in the primary's local time.
    `quiet_hours = ${hhmm(now - 60_000)}-${hhmm(now + 3_600_000)}`,
    "[alert.node_down]",
    "for = 0s",
    "[channel.hook]",
    "type = webhook",
    `url = ${hook.url}/`,
    "",
  ].join("\n");
  const p = await startPrimary(
    t,
    { "legacy.port": "0", "legacy.host": "127.0.0.1" },
    undefined,
    undefined,
    ini,
  );
  const port = await portOf(p);
  const tutorial = await tutorialNode(t, port, "tut");
  const real = spawnAgent(t, p, "real");
  await waitFor(
    () =>
      p.primary.registry.get("legacy-tut")?.state === "alive" &&
      p.primary.registry.list().some((n) => n.name === "real" && n.state === "alive"),
    "both alive",
    10_000,
  );
  const tutorialFired = nextEvent(p.primary.events, "alert.firing", {
    within: 3_000,
    where: (e) => e.nodeId === "legacy-tut" && e.rule === "node_down",
  });
  tutorial.socket.destroy();
  assert.equal((await tutorialFired).severity, "critical");
  real.kill("SIGKILL");
  // Messages to one channel go out in order: once the real node's is in, the tutorial one's would be.
  await waitFor(
    () => hook.requests.some((r) => r.body.includes("real is down")),
    "the real node's message delivered",
    5_000,
  );
  assert.deepEqual(
    hook.requests.map((r) => (JSON.parse(r.body) as { title: string }).title),
    ["real is down"],
    "the tutorial node's message waits for the end of quiet hours",
  );
  assert.deepEqual(
    p.primary.alerts
      .states()
      .filter((s) => s.rule === "node_down")
      .map((s) => [s.name, s.state, s.legacy])
      .sort(),
    [
      ["real", "firing", false],
      ["tut", "firing", true],
    ],
    "both fire",
  );
});

test("legacy - the dashboard shows a tutorial node as NAME (tutorial), on its tile and its page", {
  skip: NO_BROWSER,
}, async (t) => {
  const p = await startPrimary(t, { "legacy.port": "0", "legacy.host": "127.0.0.1" });
  const port = await portOf(p);
  await tutorialNode(t, port, "tut");
  const agent = startAgent(t, p, "pi-real");
  await waitFor(
    () =>
      p.primary.registry.get("legacy-tut")?.state === "alive" &&
      p.primary.registry.get(agent.agent.id)?.state === "alive",
    "both alive",
    5_000,
  );
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${httpPort(p)}/`);
  await until(page, 'document.querySelectorAll("[data-node]").length === 2');
  assert.equal(await page.textContent('[data-node="tut"] .name'), "tut (tutorial)");
  assert.equal(await page.textContent('[data-node="pi-real"] .name'), "pi-real");
  await page.click('[data-node="tut"]');
  await until(page, `document.querySelector(".node-page h1") !== null`);
  assert.match((await page.textContent(".node-page h1")) ?? "", /tut \(tutorial\)/);
});
