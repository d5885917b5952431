/**
 * Requests and tasks that cannot run are told so at once: a request the
 * node's agent has no handler for, a task no selected node allows, nodes
 * that do not allow a task, a node that cannot be pinged.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { AgentLink, dial, Outbox } from "@picluster/agent";
import { silentLogger, systemClock } from "@picluster/common";
import { waitFor } from "@picluster/common/testing";
import { httpPort, startPrimary } from "./support/cluster.js";

const TOKEN = "unanswerable-token";

test("requests - an agent without a handler for a request answers at once, and the API says so within a second", async (t) => {
  const p = await startPrimary(t, { "primary.tls": "off", "http.token": TOKEN });
  // The agent's own link, built without a processes.top handler: what an
  // agent that predates the request, or leaves it out, runs.
  const link = new AgentLink({
    clock: systemClock,
    log: silentLogger(),
    outbox: new Outbox(100),
    target: () => ({ host: "127.0.0.1", port: p.port, credential: undefined, timeoutMs: 2_000 }),
    dial,
    hello: () => ({
      nodeId: "older-node",
      name: "older",
      version: "0.0.9",
      protocols: [1],
      labels: {},
    }),
    details: async () => ({
      hostname: "older",
      os: { name: "Debian", version: "12" },
      kernel: "6.6",
      arch: "arm64",
      cpu: { model: "Cortex-A72", cores: 4 },
      memory: { totalBytes: 1, swapBytes: 0 },
      disks: [],
      interfaces: [],
      bootTime: 1,
      agentVersion: "0.0.9",
      nodeVersion: "v20",
    }),
    onCredential: () => {},
    onWelcome: () => {},
    reconnectMaxMs: 1_000,
    maxFrameBytes: 1024 * 1024,
  });
  link.start();
  t.after(() => link.stop());
  await waitFor(
    () => p.primary.registry.get("older-node")?.state === "alive",
    "older alive",
    5_000,
  );

  const started = performance.now();
  const res = await fetch(`http://127.0.0.1:${httpPort(p)}/api/nodes/older/processes`, {
    headers: { authorization: `Bearer ${TOKEN}` },
    signal: AbortSignal.timeout(5_000),
  });
  const took = performance.now() - started;
  const body = (await res.json()) as { error: { code: string; message: string } };
  assert.ok(took < 1_000, `answered in ${Math.round(took)} ms, not at the request's deadline`);
  assert.equal(res.status, 501);
  assert.equal(body.error.code, "E_UNSUPPORTED");
  assert.match(body.error.message, /older.*picluster 0\.0\.9\) does not answer "processes\.top"/);
});
