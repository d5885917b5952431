/**
 * What a node meets when the primary will not have it: a join token that is
 * unknown, used or expired, and a credential revoked while it runs.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { formatJoinToken, newJoinToken } from "@picluster/common";
import { deadline, waitFor } from "@picluster/common/testing";
import type { ClusterEvent } from "@picluster/primary";
import { httpPort, scratchDir, spawnAgent, startAgent, startPrimary } from "./support/cluster.js";

const BIN = new URL("../../../cli/bin/picluster.js", import.meta.url).pathname;

test("join refused - an unknown token is said in words that name the fix, and the agent gives up after [agent] join_refusals with exit 1", async (t) => {
  const p = await startPrimary(t);
  const dir = scratchDir(t, "picluster-refused-");
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, `${formatJoinToken(newJoinToken())}\n`, { mode: 0o600 });
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("PICLUSTER_")),
  );
  const child = spawn(
    process.execPath,
    [
      BIN,
      "agent",
      "--node-data-dir",
      dir,
      "--agent-primary-host",
      "127.0.0.1",
      "--agent-primary-port",
      String(p.port),
      "--agent-join-token-file",
      tokenFile,
      "--agent-reconnect-max",
      "1s",
      "--agent-join-refusals",
      "3",
      "--log-format",
      "json",
    ],
    { env, stdio: ["ignore", "pipe", "pipe"] },
  );
  t.after(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  let out = "";
  child.stdout.on("data", (c: Buffer) => {
    out += c.toString();
  });
  child.stderr.on("data", (c: Buffer) => {
    out += c.toString();
  });
  const code = await deadline(
    new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c))),
    20_000,
    "the agent to give up",
  );
  assert.equal(code, 1, out);
  const records = out
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const refused = records.filter((r) => String(r.msg).startsWith("this join token was refused"));
  assert.equal(refused.length, 3, out);
  assert.match(String(refused[0]?.msg), /picluster node add NAME/);
  assert.ok(
    records.some((r) => r.msg === "giving up: the join token was refused every time"),
    out,
  );
  // No TLS alert as the message, and no "cannot reach" retry lines for a refusal.
  assert.ok(!records.some((r) => r.msg === "cannot reach the primary"), out);
});

test("join refused - a revoked node is left, never down, and nothing is told about it; a down node revoked has its alert ended silently", async (t) => {
  const p = await startPrimary(t, {}, undefined, undefined, "[alert.node_down]\nfor = 1s\n");
  const seen: ClusterEvent[] = [];
  p.primary.events.on((e) => seen.push(e));
  const a = startAgent(t, p, "pi-revoked");
  const b = spawnAgent(t, p, "pi-gone");
  await waitFor(
    () => p.primary.registry.list().filter((n) => n.state === "alive").length === 2,
    "two nodes alive",
    10_000,
  );
  const bId = p.primary.registry.list().find((n) => n.name === "pi-gone")?.id ?? "";
  // One node dies for good: down, and its alert fires after the rule's 1 s.
  b.kill("SIGKILL");
  await waitFor(
    () => seen.some((e) => e.kind === "alert.firing" && e.nodeId === bId),
    "pi-gone's down alert firing",
    10_000,
  );
  const firstSeen = seen.length;
  p.primary.credentials?.revoke("pi-revoked");
  p.primary.credentials?.revoke("pi-gone");
  await waitFor(
    () => p.primary.registry.get(a.agent.id)?.state === "left",
    "the revoked node left",
    5_000,
  );
  assert.match(p.primary.registry.get(a.agent.id)?.stateReason ?? "", /revoked/);
  await waitFor(() => p.primary.registry.get(bId)?.state === "left", "the dead node left", 5_000);
  await waitFor(
    () => seen.slice(firstSeen).some((e) => e.kind === "alert.resolved" && e.nodeId === bId),
    "pi-gone's alert ended",
    5_000,
  );
  // Well past the rule's `for`: the revoked node never went down and nothing fired for it.
  const until = Date.now() + 2_500;
  await waitFor(() => Date.now() > until, "the rule's for to pass", 5_000, 100);
  const about = (id: string) =>
    seen
      .filter((e) => "nodeId" in e && e.nodeId === id)
      .map((e) => e.kind + ("to" in e ? `:${e.to}` : ""));
  assert.ok(!about(a.agent.id).includes("node.state:down"), about(a.agent.id).join(" "));
  assert.ok(!about(a.agent.id).includes("alert.firing"), about(a.agent.id).join(" "));
  assert.deepEqual(
    p.primary.alerts.states().filter((s) => s.state === "firing"),
    [],
  );
});

test("join refused - node add beside a primary that keeps its nodes elsewhere refuses instead of making a token nobody accepts; node list shows a pending token's expiry", async (t) => {
  const p = await startPrimary(t);
  const port = httpPort(p);
  const env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PICLUSTER_"))),
    PICLUSTER_HTTP_PORT: String(port),
  };
  const elsewhere = join(scratchDir(t, "picluster-elsewhere-"), "data");
  // Run asynchronously: the primary answering the CLI lives in this process.
  const cli = (args: string[]) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [BIN, ...args], { env });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (c: Buffer) => {
        stdout += c.toString();
      });
      child.stderr.on("data", (c: Buffer) => {
        stderr += c.toString();
      });
      child.on("close", (status) => resolve({ status, stdout, stderr }));
    });
  const wrong = await cli(["node", "add", "pi-x", "--node-data-dir", elsewhere]);
  assert.equal(wrong.status, 1, wrong.stdout);
  assert.match(wrong.stderr, /keeps its nodes in another data directory/);
  assert.match(wrong.stderr, /--http-token/);
  assert.doesNotMatch(wrong.stdout, /pcj1\./);
  assert.equal(existsSync(join(elsewhere, "picluster.db")), false, "no second credential store");

  // Where the primary keeps its nodes, the same command works (the primary re-reads the store).
  const right = await cli(["node", "add", "pi-x", "--node-data-dir", p.dataDir, "--json"]);
  assert.equal(right.status, 0, right.stderr);
  const list = await cli(["node", "list", "--node-data-dir", p.dataDir]);
  assert.equal(list.status, 0, list.stderr);
  assert.match(list.stdout, /^NAME\s+STATUS\s+CREATED \(UTC\)/);
  assert.match(list.stdout, /pi-x\s+pending\s+.*token expires in 2[34]h/);
  const json = await cli(["node", "list", "--node-data-dir", p.dataDir, "--json"]);
  const rows = JSON.parse(json.stdout) as Array<{
    name: string;
    status: string;
    expiresAt?: number;
  }>;
  const pending = rows.find((r) => r.name === "pi-x");
  assert.equal(pending?.status, "pending");
  assert.ok((pending?.expiresAt ?? 0) > Date.now() + 23 * 3_600_000);
});
