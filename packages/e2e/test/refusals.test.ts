import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { connect as tcpConnect } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { connect as tlsConnect } from "node:tls";
import { JOIN_IDENTITY_PREFIX, parseJoinToken, systemClock } from "@picluster/common";
import { deadline, nextEvent, waitFor } from "@picluster/common/testing";
import { CredentialStore } from "@picluster/primary";
import {
  ScriptedPeer,
  startAgent,
  startPrimary,
  type TestContext,
  type TestPrimary,
} from "./support/cluster.js";

/** A well-behaved agent that must stay alive through everything the test does to the primary. */
async function bystander(t: TestContext, p: TestPrimary) {
  const a = startAgent(t, p, "bystander");
  await waitFor(
    () => p.primary.registry.get(a.agent.id)?.state === "alive",
    "bystander alive",
    3_000,
  );
  const stillFine = async () => {
    const before = p.primary.registry.get(a.agent.id)?.lastSeen ?? 0;
    await waitFor(
      () => (p.primary.registry.get(a.agent.id)?.lastSeen ?? 0) > before,
      "bystander still heard from",
      3_000,
    );
    assert.equal(p.primary.registry.get(a.agent.id)?.state, "alive");
  };
  return { agent: a, stillFine };
}

function refusedFrames(peer: ScriptedPeer) {
  return peer.received
    .filter((e) => e.type === "error")
    .map((e) => (e.type === "error" ? e.payload.code : ""));
}

test("refusals - a silent node with its socket open turns suspect, then down; when heartbeats resume it is alive", async (t) => {
  const p = await startPrimary(t, {
    "primary.suspect_after": "300ms",
    "primary.dead_after": "600ms",
    "primary.heartbeat_interval": "100ms",
  });
  const peer = await ScriptedPeer.join(t, p, "quiet", "0123456789abcdef0123456789abcdef");
  const id = "0123456789abcdef0123456789abcdef";
  const t0 = Date.now();
  const suspect = await nextEvent(p.primary.events, "node.state", {
    within: 2_000,
    where: (e) => e.nodeId === id && e.to === "suspect",
  });
  const down = await nextEvent(p.primary.events, "node.state", {
    within: 2_000,
    where: (e) => e.nodeId === id && e.to === "down",
  });
  assert.match(suspect.reason, /^silent for 0\.[3-9] s$/);
  assert.match(down.reason, /^silent for 0\.[6-9] s$/);
  assert.ok(down.at - t0 < 1_500);
  assert.equal(peer.closed, false, "silence alone does not cut the connection");
  const back = nextEvent(p.primary.events, "node.state", {
    within: 2_000,
    where: (e) => e.nodeId === id && e.to === "alive",
  });
  peer.send({ v: 1, type: "heartbeat", ts: Date.now(), payload: { dropped: 0 } });
  assert.equal((await back).reason, "heard from again");
});

test("refusals - an agent's connection destroyed abruptly is down at once", async (t) => {
  const p = await startPrimary(t);
  const peer = await ScriptedPeer.join(t, p, "crasher", "fedcba9876543210fedcba9876543210");
  const down = nextEvent(p.primary.events, "node.state", {
    within: 1_000,
    where: (e) => e.to === "down",
  });
  const t0 = Date.now();
  // No bye, no FIN handshake of ours: the socket is torn down as a crash would.
  peer.socket.destroy();
  const e = await down;
  assert.match(e.reason, /ECONNRESET|closed by peer/);
  t.diagnostic(`reset to down in ${Date.now() - t0} ms`);
});

test("refusals - garbage, wrong types and invalid payloads get error replies and strikes; past the limit the session ends; others are unaffected", async (t) => {
  const p = await startPrimary(t, { "primary.strike_limit": "3" });
  const { stillFine } = await bystander(t, p);
  const peer = await ScriptedPeer.join(t, p, "noisy", "00000000000000000000000000000001");
  peer.writeRaw("this is not json\n");
  peer.writeRaw('{"v":1,"type":"vitlas","ts":1,"payload":{}}\n');
  peer.writeRaw(
    '{"v":1,"type":"welcome","ts":1,"payload":{"protocol":1,"heartbeatMs":1,"vitalsMs":1,"lastSeq":0,"primaryVersion":"x"}}\n',
  );
  await waitFor(() => refusedFrames(peer).length === 3, "three error replies", 2_000);
  assert.deepEqual(refusedFrames(peer), ["E_BAD_JSON", "E_UNKNOWN_TYPE", "E_WRONG_DIRECTION"]);
  assert.equal(peer.closed, false, "the session lives on up to the strike limit");
  peer.writeRaw('{"v":1,"type":"heartbeat","ts":1,"payload":{"dropped":"many"}}\n');
  const invalid = await peer.next(
    "error",
    2_000,
    (e) => e.type === "error" && e.payload.code === "E_INVALID_PAYLOAD",
  );
  assert.deepEqual(invalid.type === "error" ? [invalid.payload.code, invalid.payload.path] : [], [
    "E_INVALID_PAYLOAD",
    "/payload/dropped",
  ]);
  await peer.closedWithin(2_000);
  await stillFine();
});

test("refusals - an oversized frame is refused naming the limit and closes the connection", async (t) => {
  const p = await startPrimary(t, { "primary.max_frame_bytes": "4KB" });
  const { stillFine } = await bystander(t, p);
  const peer = await ScriptedPeer.join(t, p, "big", "00000000000000000000000000000002");
  peer.writeRaw(
    `{"v":1,"type":"log","ts":1,"payload":{"level":"info","msg":"${"x".repeat(10_000)}"}}\n`,
  );
  const err = await peer.next("error", 2_000);
  assert.equal(err.type === "error" ? err.payload.code : "", "E_FRAME_TOO_LARGE");
  assert.match(err.type === "error" ? err.payload.message : "", /4096 bytes/);
  await peer.closedWithin(2_000);
  await stillFine();
});

test("refusals - a handshake left half-done is closed at the deadline, before TLS and after it", async (t) => {
  const p = await startPrimary(t, { "primary.handshake_timeout": "300ms" });
  const { stillFine } = await bystander(t, p);
  // TCP only, never starting TLS.
  const raw = tcpConnect({ host: "127.0.0.1", port: p.port });
  t.after(() => {
    raw.destroy();
  });
  const rawClosed = new Promise<void>((resolve) => raw.once("close", () => resolve()));
  // TLS done, but no hello.
  const token = p.addNode("shy");
  const { parseJoinToken, JOIN_IDENTITY_PREFIX } = await import("@picluster/common");
  const parsed = parseJoinToken(token);
  const peer = await ScriptedPeer.connect(t, p.port, {
    identity: `${JOIN_IDENTITY_PREFIX}${parsed.id}`,
    key: parsed.secret,
  });
  const started = Date.now();
  await peer.closedWithin(2_000);
  await deadline(rawClosed, 3_000, "raw TCP connection closed");
  assert.ok(Date.now() - started < 1_500);
  assert.equal(p.primary.registry.list().length, 1, "only the bystander is registered");
  await stillFine();
});

test("refusals - wrong, unknown and revoked credentials are refused, logged, and never registered", async (t) => {
  const p = await startPrimary(t);
  const { stillFine } = await bystander(t, p);
  const tryConnect = (identity: string, key: Buffer) =>
    new Promise<string>((resolve) => {
      const s = tlsConnect({
        host: "127.0.0.1",
        port: p.port,
        minVersion: "TLSv1.3",
        pskCallback: () => ({ identity, psk: key }),
        checkServerIdentity: () => undefined,
      });
      s.once("secureConnect", () => {
        s.destroy();
        resolve("connected");
      });
      s.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? "error"));
    });
  assert.notEqual(await tryConnect("n-unknown", randomBytes(32)), "connected");

  // A real node joins, then its credential is used with a wrong key.
  const a = startAgent(t, p, "victim");
  await waitFor(() => p.primary.registry.get(a.agent.id)?.state === "alive", "victim alive", 3_000);
  // The agent saves its credential just after the primary sees it alive.
  const { existsSync } = await import("node:fs");
  await waitFor(
    () => existsSync(`${a.dataDir}/credential.json`),
    "victim's credential saved",
    3_000,
  );
  const cred = JSON.parse(
    (await import("node:fs")).readFileSync(`${a.dataDir}/credential.json`, "utf8"),
  ) as { identity: string; key: string };
  assert.notEqual(await tryConnect(cred.identity, randomBytes(32)), "connected");
  await waitFor(
    () =>
      p.records.some(
        (r) => r.msg === "refused a connection" && r.reason === "wrong key for its credential",
      ),
    "wrong key logged",
    2_000,
  );
  assert.ok(
    p.records.some(
      (r) =>
        r.msg === "refused a node: unknown, expired or revoked credential" &&
        r.identity === "n-unknown",
    ),
  );

  // Revoked from another process (the CLI's way): the live session is cut and reconnects are refused.
  const cut = nextEvent(p.primary.events, "node.state", {
    within: 3_000,
    // A revoked node is `left` ("credential revoked"), never `down`: nobody is paged.
    where: (e) => e.nodeId === a.agent.id && e.to === "left",
  });
  new CredentialStore(join(p.dataDir, "picluster.db"), systemClock).load().revoke("victim");
  assert.equal((await cut).reason, "credential revoked");
  assert.notEqual(
    await tryConnect(cred.identity, Buffer.from(cred.key, "base64url")),
    "connected",
    "a revoked credential cannot reconnect",
  );
  await waitFor(
    () =>
      a.records.some(
        (r) =>
          r.msg === "cannot reach the primary" &&
          String(r.err).includes("refused this node's credential"),
      ),
    "agent logs the refusal",
    5_000,
  );
  assert.equal(p.primary.registry.get(a.agent.id)?.state, "left");
  assert.equal(p.primary.registry.list().length, 2, "no node was added by the refused attempts");
  await stillFine();
});

test("refusals - connections in handshake are capped per address", async (t) => {
  const p = await startPrimary(t, {
    "primary.max_handshakes_per_address": "3",
    "primary.handshake_timeout": "5s",
  });
  const sockets = Array.from({ length: 4 }, () => tcpConnect({ host: "127.0.0.1", port: p.port }));
  t.after(() => {
    for (const s of sockets) s.destroy();
  });
  const fourthClosed = new Promise<void>((resolve) => sockets[3]?.once("close", () => resolve()));
  await deadline(fourthClosed, 2_000, "fourth connection closed");
  assert.equal(
    sockets.slice(0, 3).every((s) => !s.destroyed),
    true,
    "the first three wait in their handshake",
  );
  await waitFor(
    () =>
      p.records.some(
        (r) => r.msg === "too many connections in handshake from one address, closing",
      ),
    "the cap is logged",
    1_000,
  );
});

test("refusals - a revoke is acted on even when a handshake read the changed file first", async (t) => {
  const p = await startPrimary(t);
  const a = startAgent(t, p, "victim2");
  await waitFor(() => p.primary.registry.get(a.agent.id)?.state === "alive", "victim alive", 3_000);
  const cut = nextEvent(p.primary.events, "node.state", {
    within: 3_000,
    where: (e) => e.nodeId === a.agent.id && e.to === "left",
  });
  new CredentialStore(join(p.dataDir, "picluster.db"), systemClock).load().revoke("victim2");
  // An unknown identity makes the listener re-read the file before the poll does.
  const probe = tlsConnect({
    host: "127.0.0.1",
    port: p.port,
    minVersion: "TLSv1.3",
    pskCallback: () => ({ identity: "n-probe", psk: randomBytes(32) }),
    checkServerIdentity: () => undefined,
  });
  probe.on("error", () => {});
  t.after(() => {
    probe.destroy();
  });
  assert.equal((await cut).reason, "credential revoked");
});

test("refusals - a join token cannot take over another node's id", async (t) => {
  const p = await startPrimary(t);
  const { stillFine, agent } = await bystander(t, p);
  const token = parseJoinToken(p.addNode("evil"));
  const peer = await ScriptedPeer.connect(t, p.port, {
    identity: `${JOIN_IDENTITY_PREFIX}${token.id}`,
    key: token.secret,
  });
  peer.send({
    v: 1,
    type: "hello",
    ts: Date.now(),
    payload: { nodeId: agent.agent.id, name: "evil", version: "x", protocols: [1], labels: {} },
  });
  const err = await peer.next("error", 2_000);
  assert.equal(err.type === "error" ? err.payload.code : "", "E_NODE_ID_TAKEN");
  await peer.closedWithin(2_000);
  assert.equal(p.primary.registry.get(agent.agent.id)?.name, "bystander");
  await stillFine();
});

test("refusals - with TLS off the per-address cap counts only connections still in their handshake", async (t) => {
  const p = await startPrimary(t, {
    "primary.tls": "off",
    "primary.max_handshakes_per_address": "2",
  });
  const agents = Array.from({ length: 4 }, (_, i) =>
    startAgent(t, { port: p.port }, `plain-${i}`, { "agent.tls": "off" }),
  );
  await waitFor(
    () => agents.every((a) => p.primary.registry.get(a.agent.id)?.state === "alive"),
    "all 4 alive",
    5_000,
  );
  assert.ok(
    p.records.some(
      (r) => typeof r.msg === "string" && r.msg.startsWith("AGENT LISTENER WITHOUT TLS"),
    ),
  );
});

/** Whether a TLS-PSK handshake with `identity` and `key` completes. */
function handshakes(port: number, identity: string, key: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tlsConnect({
      host: "127.0.0.1",
      port,
      minVersion: "TLSv1.3",
      pskCallback: () => ({ identity, psk: key }),
      checkServerIdentity: () => undefined,
    });
    s.once("secureConnect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

test("refusals - a used join token presented again with the same node id gets a fresh key: the first redeemer's key and session are cut", async (t) => {
  const p = await startPrimary(t);
  const nodeId = "00112233445566778899aabbccddeeff";
  const token = parseJoinToken(p.addNode("pi-twice"));
  const redeem = async () => {
    const peer = await ScriptedPeer.connect(t, p.port, {
      identity: `${JOIN_IDENTITY_PREFIX}${token.id}`,
      key: token.secret,
    });
    peer.send({
      v: 1,
      type: "hello",
      ts: Date.now(),
      payload: { nodeId, name: "pi-twice", version: "x", protocols: [1], labels: {} },
    });
    const credential = await peer.next("credential", 2_000);
    await peer.next("welcome", 2_000);
    if (credential.type !== "credential") throw new Error("not a credential");
    return { peer, identity: credential.payload.identity, key: credential.payload.key };
  };
  const first = await redeem();
  // Someone else with the token and the (public) node id, or the node itself after a crash.
  const second = await redeem();
  assert.notEqual(second.key, first.key, "the second redeemer does not get the first one's key");
  assert.notEqual(second.identity, first.identity);
  await first.peer.closedWithin(2_000);
  assert.equal(second.peer.closed, false, "the last redeemer's session stays");
  assert.equal(
    await handshakes(p.port, first.identity, Buffer.from(first.key, "base64url")),
    false,
    "the superseded key no longer completes a handshake",
  );
  assert.equal(
    await handshakes(p.port, second.identity, Buffer.from(second.key, "base64url")),
    true,
    "the fresh key does (a node that crashed before saving its key recovers this way)",
  );
  assert.ok(
    p.records.some(
      (r) =>
        r.msg === "join token presented again: a fresh credential replaces the earlier one" &&
        r.superseded === first.identity,
    ),
  );
  assert.equal(p.primary.registry.list().length, 1);
});
