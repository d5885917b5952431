/**
 * Removing a node end to end: a real primary with real agents (and a
 * scripted peer where a test needs exact seqs) on loopback, alerts
 * delivered to a real webhook receiver, the CLI in its own process.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { JOIN_IDENTITY_PREFIX, type MessageMap, parseJoinToken } from "@picluster/common";
import { nextEvent, waitFor } from "@picluster/common/testing";
import type { ClusterEvent, RemovedNode } from "@picluster/primary";
import {
  auditLines,
  httpPort,
  ScriptedPeer,
  startAgent,
  startPrimary,
  type TestContext,
  type TestPrimary,
} from "./support/cluster.js";
import { startReceiver } from "./support/http-receiver.js";

const TOKEN = "remove-test-token";
const BIN = new URL("../../../cli/bin/picluster.js", import.meta.url).pathname;

function api(p: TestPrimary, path: string, init: RequestInit = {}, token = TOKEN) {
  return fetch(`http://127.0.0.1:${httpPort(p)}${path}`, {
    ...init,
    headers: token === "" ? {} : { authorization: `Bearer ${token}` },
  });
}

/** Every bus event from now on, for asserting what never happened. */
function record(t: TestContext, p: TestPrimary): ClusterEvent[] {
  const seen: ClusterEvent[] = [];
  const off = p.primary.events.on((e) => seen.push(e));
  t.after(off);
  return seen;
}

function cli(
  args: string[],
  env: Record<string, string>,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("PICLUSTER_")),
  );
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...clean, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

test("remove - a live node removed through the API is revoked and cut, its record and history are gone, its firing alert resolves without a message; it is announced and audited and never comes back, not even after a restart", async (t) => {
  const hook = await startReceiver(t);
  // The pi4 fixture reports under-voltage: the stock rule fires for pi-gone at once.
  const ini = ["[channel.hook]", "type = webhook", `url = ${hook.url}/`, ""].join("\n");
  const flags = { "http.token": TOKEN, "primary.vitals_interval": "1s" };
  const p = await startPrimary(t, flags, undefined, undefined, ini);
  const gone = startAgent(t, p, "pi-gone", { "agent.reconnect_max": "1s" });
  const stays = startAgent(t, p, "pi-stays", {}, "x86-server");
  const id = gone.agent.id;
  const since = Date.now();
  const samples = () => p.primary.store.series(id, "cpu", since - 60_000, Date.now() + 1, 1_000);
  await waitFor(
    () => p.primary.registry.get(stays.agent.id)?.state === "alive" && samples().points.length > 0,
    "both alive, pi-gone's samples stored",
    10_000,
  );
  await waitFor(() => hook.requests.length >= 1, "pi-gone's alert told", 10_000);
  const told = () =>
    hook.requests.map((r) => JSON.parse(r.body) as { status: string; rule: string });
  assert.deepEqual(
    told().map((m) => [m.status, m.rule]),
    [["firing", "under_voltage"]],
  );

  // Changing state needs the token.
  const refused = await api(p, "/api/nodes/pi-gone", { method: "DELETE" }, "");
  assert.equal(refused.status, 401);
  assert.equal(p.primary.registry.get(id)?.state, "alive", "nothing removed without the token");

  const after = record(t, p);
  const res = await api(p, "/api/nodes/pi-gone", { method: "DELETE" });
  assert.equal(res.status, 200);
  const removed = (await res.json()) as RemovedNode;
  assert.equal(removed.id, id);
  assert.equal(removed.name, "pi-gone");
  assert.equal(removed.keepHistory, false);
  assert.equal(removed.revoked.length, 1, "its credential is revoked");
  assert.equal(removed.sessionsCut, 1);
  assert.equal(removed.alertsResolved, 1);
  assert.ok(removed.vitalsRows > 0 && removed.events > 0, "its history is deleted");

  // Gone from the registry, the API, the store and the metrics at once.
  assert.equal(p.primary.registry.get(id), undefined);
  const nodes = (await (await api(p, "/api/nodes")).json()) as { nodes: Array<{ name: string }> };
  assert.deepEqual(
    nodes.nodes.map((n) => n.name),
    ["pi-stays"],
  );
  assert.equal((await api(p, `/api/nodes/${id}`)).status, 404);
  assert.doesNotMatch(await (await api(p, "/metrics")).text(), /pi-gone/);
  assert.equal(
    p.primary.store.loadNodes().some((n) => n.id === id),
    false,
  );
  assert.deepEqual(samples().points, [], "its samples are deleted");
  assert.equal(p.primary.credentials?.isRevoked(removed.revoked[0] ?? ""), true);

  // Announced (stream and store) and audited, with who asked.
  assert.deepEqual(
    after.flatMap((e) =>
      e.kind === "node.removed" ? [[e.name, e.keepHistory, e.requestedBy]] : [],
    ),
    [["pi-gone", false, "api-token"]],
  );
  await waitFor(
    () => p.primary.store.events({ node: id, kind: "node.removed", limit: 1 }).length === 1,
    "node.removed stored",
    5_000,
  );
  assert.deepEqual(
    [...new Set(p.primary.store.events({ node: id, limit: 100 }).map((e) => e.kind))].sort(),
    ["alert.resolved", "node.removed"],
    "of its events only the removal and the alert it ended are left",
  );
  const audit = await auditLines(p);
  assert.deepEqual(
    audit.filter((a) => a.event === "node.remove").map((a) => [a.node, a.nodeId, a.by]),
    [["pi-gone", id, "api-token"]],
  );

  // The agent is told, and its reconnection with the revoked key is refused.
  await waitFor(
    () =>
      gone.records.some(
        (r) => r.msg === "the primary reported an error" && r.code === "E_REMOVED",
      ) &&
      gone.records.some(
        (r) =>
          r.msg === "cannot reach the primary" &&
          String(r.err).includes("refused this node's credential"),
      ),
    "pi-gone told it was removed, then refused",
    10_000,
  );
  assert.equal(p.primary.registry.get(id), undefined, "not back after reconnecting");
  assert.deepEqual(
    after.filter((e) => "nodeId" in e && e.nodeId === id).map((e) => e.kind),
    ["alert.resolved", "node.removed"],
    "never down, never alive again",
  );
  assert.equal(
    p.primary.registry.get(stays.agent.id)?.state,
    "alive",
    "the other node is unaffected",
  );

  // Stopped, the primary hands everything still to tell to the channels: nothing about pi-gone.
  await gone.stop();
  await p.close();
  assert.deepEqual(
    told().map((m) => [m.status, m.rule]),
    [["firing", "under_voltage"]],
    "no resolved message for a removed node",
  );

  // Restarted on the same data: the removed node is not restored (not even as down).
  const again = await startPrimary(t, flags, p.dataDir, undefined, ini);
  assert.equal(again.primary.registry.get(id), undefined);
  assert.deepEqual(
    again.primary.registry.list().map((n) => n.name),
    ["pi-stays"],
  );
  assert.deepEqual(again.primary.alerts.states(), []);
});

/** A scripted node joined with a fresh token; returns the peer and the primary's welcome. */
async function joinScripted(t: TestContext, p: TestPrimary, name: string, nodeId: string) {
  const token = parseJoinToken(p.addNode(name));
  const peer = await ScriptedPeer.connect(t, p.port, {
    identity: `${JOIN_IDENTITY_PREFIX}${token.id}`,
    key: token.secret,
  });
  peer.send({
    v: 1,
    type: "hello",
    ts: Date.now(),
    payload: { nodeId, name, version: "0.1.0-test", protocols: [1], labels: {} },
  });
  const welcome = await peer.next("welcome", 2_000);
  if (welcome.type !== "welcome") throw new Error("not a welcome");
  return { peer, welcome: welcome.payload };
}

const SAMPLE: MessageMap["vitals"] = {
  cpu: { total: 5, perCore: [5] },
  load: [0, 0, 0],
  temps: [],
  rebootRequired: false,
  memory: { totalBytes: 1, usedBytes: 0, availableBytes: 1 },
  swap: { totalBytes: 0, usedBytes: 0 },
  disks: [],
  diskIo: { readBps: 0, writeBps: 0 },
  net: [],
  uptimeS: 1,
  procs: 1,
};

test("remove - with keepHistory its samples and events stay, and the same node joining again continues its numbering after them", async (t) => {
  const p = await startPrimary(t, { "http.token": TOKEN });
  const nodeId = "0badc0de0badc0de0badc0de0badc0de";
  const { peer } = await joinScripted(t, p, "pi-kept", nodeId);
  for (const seq of [1, 2, 3])
    peer.send({ v: 1, type: "vitals", ts: Date.now(), seq, payload: SAMPLE });
  await peer.next("ack", 2_000, (e) => e.type === "ack" && e.payload.seq === 3);

  const res = await api(p, "/api/nodes/pi-kept?keepHistory=true", { method: "DELETE" });
  assert.equal(res.status, 200);
  const removed = (await res.json()) as RemovedNode;
  assert.deepEqual([removed.keepHistory, removed.vitalsRows, removed.events], [true, 0, 0]);
  await peer.closedWithin(2_000);
  assert.equal(p.primary.registry.get(nodeId), undefined);
  assert.equal(
    p.primary.store.loadNodes().some((n) => n.id === nodeId),
    false,
    "the record goes even so",
  );
  const kept = p.primary.store.series(nodeId, "cpu", Date.now() - 60_000, Date.now() + 1, 1_000);
  assert.equal(kept.points.length > 0, true, "its samples are kept");
  assert.ok(
    p.primary.store.events({ node: nodeId, kind: "node.joined", limit: 10 }).length > 0,
    "its events are kept",
  );

  // Joined again (a new token: the old credential is revoked): its new samples come after the kept ones.
  const back = await joinScripted(t, p, "pi-kept", nodeId);
  assert.equal(back.welcome.lastSeq, 3, "numbering continues after the kept samples");
  back.peer.send({ v: 1, type: "vitals", ts: Date.now(), seq: 4, payload: SAMPLE });
  await back.peer.next("ack", 2_000, (e) => e.type === "ack" && e.payload.seq === 4);
  assert.equal(
    p.primary.store.lastStoredSeq(nodeId),
    4,
    "the new sample is stored, not taken for a replay",
  );
});

test("remove - refused with a clear code: without a token configured, an unknown node, a name two nodes share, a connected node nothing could keep out", async (t) => {
  const open = await startPrimary(t);
  const noToken = await api(open, "/api/nodes/anything", { method: "DELETE" }, "");
  assert.equal(noToken.status, 403);
  assert.equal(
    ((await noToken.json()) as { error: { code: string } }).error.code,
    "E_NO_TOKEN_CONFIGURED",
  );

  const p = await startPrimary(t, { "http.token": TOKEN });
  const code = async (path: string) => {
    const r = await api(p, path, { method: "DELETE" });
    const body = (await r.json()) as { error?: { code: string; message: string } } & RemovedNode;
    return { status: r.status, code: body.error?.code, message: body.error?.message, body };
  };
  assert.deepEqual((await code("/api/nodes/nobody")).status, 404);
  assert.equal((await code("/api/nodes/nobody")).code, "E_NO_SUCH_NODE");

  // The same name twice: revoked and joined again with a new machine (new node id).
  const first = await joinScripted(t, p, "pi-dup", "11111111111111111111111111111111");
  const cut = nextEvent(p.primary.events, "node.state", {
    within: 3_000,
    where: (e) => e.name === "pi-dup" && e.to === "left",
  });
  p.primary.credentials?.revoke("pi-dup");
  await cut;
  await first.peer.closedWithin(2_000);
  await joinScripted(t, p, "pi-dup", "22222222222222222222222222222222");
  const ambiguous = await code("/api/nodes/pi-dup");
  assert.equal(ambiguous.status, 409);
  assert.equal(ambiguous.code, "E_AMBIGUOUS_NODE");
  assert.match(ambiguous.message ?? "", /11111111111111111111111111111111/);
  assert.equal(p.primary.registry.list().length, 2, "nothing removed");
  const byId = await code("/api/nodes/11111111111111111111111111111111");
  assert.equal(byId.status, 200);
  assert.deepEqual([byId.body.sessionsCut, byId.body.revoked], [0, []], "it was revoked already");
  assert.equal((await code("/api/nodes/pi-dup")).body.id, "22222222222222222222222222222222");
  assert.deepEqual(p.primary.registry.list(), []);

  // With TLS off nothing keeps an agent out: a connected one is refused until it stops.
  const plain = await startPrimary(t, { "primary.tls": "off", "http.token": TOKEN });
  const a = startAgent(t, { port: plain.port }, "pi-plain", { "agent.tls": "off" });
  await waitFor(
    () => plain.primary.registry.get(a.agent.id)?.state === "alive",
    "pi-plain alive",
    5_000,
  );
  const connected = await api(plain, "/api/nodes/pi-plain", { method: "DELETE" });
  assert.equal(connected.status, 409);
  assert.match(
    ((await connected.json()) as { error: { code: string; message: string } }).error.message,
    /"pi-plain" is connected and has no credential to revoke \(TLS is off\)/,
  );
  await a.stop();
  await waitFor(
    () => plain.primary.registry.get(a.agent.id)?.state === "left",
    "pi-plain left",
    3_000,
  );
  assert.equal((await api(plain, "/api/nodes/pi-plain", { method: "DELETE" })).status, 200);
});

test("remove - picluster node remove goes through the running primary and prints what it did; with no primary it refuses and says why", async (t) => {
  const p = await startPrimary(t, { "http.token": TOKEN });
  await joinScripted(t, p, "pi-cli", "33333333333333333333333333333333");
  const env = {
    PICLUSTER_HTTP_PORT: String(httpPort(p)),
    PICLUSTER_HTTP_TOKEN: TOKEN,
    PICLUSTER_NODE_DATA_DIR: p.dataDir,
  };
  const human = await cli(["node", "remove", "pi-cli", "--keep-history"], env);
  assert.equal(human.status, 0, human.stderr);
  assert.match(
    human.stdout,
    /^removed pi-cli \(id 3{32}\): credential revoked, 1 connection cut, 0 firing alerts resolved \(nobody told\), samples and events kept\n$/,
  );
  assert.equal(p.primary.registry.get("33333333333333333333333333333333"), undefined);
  await p.primary.audit.flushed();
  const audit = readFileSync(join(p.dataDir, "audit.log"), "utf8");
  assert.match(
    audit,
    /"event":"node.remove","node":"pi-cli".*"keepHistory":true,"by":"api-token \(/,
  );

  const again = await cli(["node", "remove", "pi-cli", "--json"], env);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /^error: E_NO_SUCH_NODE: no node "pi-cli"\n$/);

  await p.close();
  const offline = await cli(["node", "remove", "pi-cli"], env);
  assert.equal(offline.status, 1);
  assert.match(
    offline.stderr,
    /^error: E_NO_PRIMARY: cannot reach the primary at http:\/\/127\.0\.0\.1:\d+/,
  );
  assert.match(offline.stderr, /node remove works through the running primary only/);
});
