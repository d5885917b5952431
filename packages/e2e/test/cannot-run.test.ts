/**
 * Requests and tasks that cannot run are told so at once: a request the
 * node's agent has no handler for, a task no selected node allows, nodes
 * that do not allow a task, a node that cannot be pinged.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { AgentLink, dial, Outbox } from "@picluster/agent";
import { silentLogger, systemClock } from "@picluster/common";
import { deadline, waitFor } from "@picluster/common/testing";
import { type ClusterEvent, NOT_ALLOWED } from "@picluster/primary";
import {
  httpPort,
  scratchDir,
  startAgent,
  startPrimary,
  type TestContext,
  type TestPrimary,
} from "./support/cluster.js";

const TOKEN = "cannot-run-token";
const BIN = new URL("../../../cli/bin/picluster.js", import.meta.url).pathname;

/** `picluster ARGS` in its own process against `p`'s API, with the token. */
function cli(
  t: TestContext,
  p: TestPrimary,
  ...args: string[]
): Promise<{ status: number | null; out: string; err: string }> {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("PICLUSTER_")),
  );
  const child = spawn(
    process.execPath,
    [BIN, ...args, "--http-port", String(httpPort(p)), "--http-token", TOKEN],
    { env, cwd: scratchDir(t, "picluster-cannot-run-cwd-") },
  );
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    err += d;
  });
  return deadline(
    new Promise((resolve) => child.on("close", (status) => resolve({ status, out, err }))),
    15_000,
    `picluster ${args.join(" ")}`,
  );
}

async function post(p: TestPrimary, path: string, body: unknown) {
  const res = await fetch(`http://127.0.0.1:${httpPort(p)}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Until `n` nodes are alive with their task catalogue known. */
async function catalogued(p: TestPrimary, n: number): Promise<void> {
  await waitFor(
    () =>
      p.primary.registry.list().filter((x) => x.state === "alive" && x.details?.tasks !== undefined)
        .length === n,
    `${n} nodes alive with their task catalogue`,
    10_000,
  );
}

const HELLO = "[task.hello]\ncommand = /usr/bin/printf hello\n";
const FAIL = "[task.fail]\ncommand = /bin/sh -c 'exit 3'\n";
/** A node that allows no task at all. */
const NOTHING = "[tasks]\nupdates_check = off\ntime = off\nversion = off\n";

test("tasks - nodes that do not allow a task are skipped as not allowed, never sent it; only a node that tried and failed fails the run", async (t) => {
  const p = await startPrimary(t);
  const a = startAgent(t, p, "pi-a", {}, "pi4", HELLO + FAIL);
  const b = startAgent(t, p, "pi-b", {}, "pi4", HELLO);
  const c = startAgent(t, p, "pi-c", {}, "pi4", NOTHING);
  await catalogued(p, 3);

  const hello = p.primary.tasks.start({ task: "hello", on: "all", args: {}, requestedBy: "test" });
  await p.primary.tasks.settled(hello.id);
  const ran = p.primary.store.taskRun(hello.id);
  assert.equal(ran?.status, "ok", "a node that does not allow the task does not fail the run");
  const status = (run: typeof ran) =>
    Object.fromEntries((run?.nodes ?? []).map((n) => [n.name, [n.status, n.error ?? ""]]));
  assert.deepEqual(status(ran), {
    "pi-a": ["ok", ""],
    "pi-b": ["ok", ""],
    "pi-c": ["skipped", NOT_ALLOWED],
  });

  const failing = p.primary.tasks.start({ task: "fail", on: "all", args: {}, requestedBy: "test" });
  await p.primary.tasks.settled(failing.id);
  const failed = p.primary.store.taskRun(failing.id);
  assert.equal(failed?.status, "failed", "the node that tried and failed fails the run");
  assert.deepEqual(status(failed), {
    "pi-a": ["failed", "exit code 3"],
    "pi-b": ["skipped", NOT_ALLOWED],
    "pi-c": ["skipped", NOT_ALLOWED],
  });
  // The agents were never asked: none of them refused anything.
  for (const agent of [a, b, c])
    assert.equal(agent.records.filter((r) => r.msg === "task refused").length, 0);
});

test("tasks - a task no selected node allows is refused before anything is sent or stored: 400 E_TASK_NOT_ALLOWED naming what is allowed; the CLI prints it and exits 1", async (t) => {
  const p = await startPrimary(t, { "http.token": TOKEN });
  const events: ClusterEvent[] = [];
  p.primary.events.on((e) => events.push(e));
  startAgent(t, p, "pi-a", {}, "pi4", HELLO + FAIL);
  startAgent(t, p, "pi-b", {}, "pi4", HELLO);
  await catalogued(p, 2);

  const typo = await post(p, "/api/tasks", { task: "nosuch", on: "all" });
  assert.equal(typo.status, 400);
  assert.deepEqual(typo.body, {
    error: {
      code: "E_TASK_NOT_ALLOWED",
      message: 'no node allows "nosuch"; allowed here: fail, hello, time, updates.check, version',
      field: "task",
    },
  });
  // Allowed elsewhere, not on the selection: said so.
  const elsewhere = await post(p, "/api/tasks", { task: "fail", on: "pi-b" });
  assert.equal(elsewhere.status, 400);
  assert.equal(
    (elsewhere.body.error as { message: string }).message,
    'no selected node allows "fail" (pi-a allows it; "pi-b" does not select it); allowed here: hello, time, updates.check, version',
  );

  const run = await cli(t, p, "run", "nosuch");
  assert.equal(run.status, 1, run.err);
  assert.match(run.err, /E_TASK_NOT_ALLOWED: no node allows "nosuch"; allowed here: fail, hello/);
  assert.equal(run.out, "");

  // Not a run: nothing stored, announced or audited.
  assert.deepEqual(p.primary.store.taskRuns(10), []);
  assert.equal(events.filter((e) => e.kind.startsWith("task.")).length, 0);
  await p.primary.audit.flushed();
  assert.equal(existsSync(join(p.dataDir, "audit.log")), false);
});

test("ping - a tutorial node is skipped, not failed: the API says skipped, the CLI says why and exits 0 when every pingable node answered", async (t) => {
  const p = await startPrimary(t, {
    "http.token": TOKEN,
    "legacy.port": "0",
    "legacy.host": "127.0.0.1",
  });
  startAgent(t, p, "pi-a");
  const legacyPort = Number(
    p.records.find((r) => r.msg === "listening for tutorial nodes")?.port ?? 0,
  );
  const tutorial = connect({ host: "127.0.0.1", port: legacyPort });
  t.after(() => {
    tutorial.destroy();
  });
  tutorial.on("error", () => {});
  tutorial.write(
    `${JSON.stringify({ type: "node_baseinfo", payload: { hostname: "tut", ram: 1024, cpu_cores: 1 } })}\r`,
  );
  await waitFor(
    () => p.primary.registry.list().filter((n) => n.state === "alive").length === 2,
    "the agent and the tutorial node alive",
    10_000,
  );

  const results = await p.primary.tasks.ping("all");
  const byName = Object.fromEntries(results.map((r) => [r.name, r]));
  assert.equal(byName["pi-a"]?.ok, true);
  assert.deepEqual(
    { ...byName.tut, nodeId: "" },
    { nodeId: "", name: "tut", ok: false, skipped: true, error: "tutorial node, no ping" },
  );

  const ping = await cli(t, p, "ping", "--on", "all");
  assert.equal(ping.status, 0, `${ping.out}${ping.err}`);
  assert.match(ping.out, /^tut +– +– +skipped: tutorial node, no ping$/m);
  assert.match(ping.out, /^pi-a +\d+\.\d ms /m);
});

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
