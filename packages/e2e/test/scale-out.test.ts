/**
 * The scale-out mode (`[cluster] nats`): several primaries on a real
 * three-server NATS cluster with JetStream (Debian's nats-server, ports
 * chosen free on loopback), real agents over TLS-PSK.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { Agent, nodeOsFacts } from "@picluster/agent";
import { silentLogger } from "@picluster/common";
import { NO_NATS, processAlive, startNatsCluster, waitFor } from "@picluster/common/testing";
import Database from "better-sqlite3";
import { launch, NO_BROWSER } from "./support/browser.js";
import {
  httpPort,
  killed,
  runCli,
  scratchDir,
  spawnAgent,
  spawnPrimary,
  startAgent,
  startPrimary,
  type TestPrimary,
  testConfig,
} from "./support/cluster.js";
import { startReceiver } from "./support/http-receiver.js";

type Ctx = Parameters<typeof startPrimary>[0];

const CLI = new URL("../../../cli/bin/picluster.js", import.meta.url).pathname;
const BUNDLE = new URL("../../../cli/dist/agent-bundle.cjs", import.meta.url).pathname;

async function startPrimaries(
  t: Ctx,
  urls: string[],
  names: string[],
  flags: Record<string, string> = {},
  ini?: string,
  bundle?: string,
): Promise<TestPrimary[]> {
  const out: TestPrimary[] = [];
  for (const name of names) {
    const p = await startPrimary(
      t,
      {
        "cluster.nats": urls.join(","),
        "cluster.name": name,
        "cluster.lease": "1s",
        ...flags,
      },
      undefined,
      bundle,
      ini,
    );
    await p.primary.clusterReady();
    out.push(p);
  }
  return out;
}

function status(p: TestPrimary) {
  const s = p.primary.clusterStatus();
  assert.ok(s !== undefined, "the primary runs in the scale-out mode");
  return s;
}

/** Every primary sees all `names` and they agree on one leader among them. */
async function agreed(ps: TestPrimary[], names: string[]): Promise<string> {
  await waitFor(
    () =>
      ps.every((p) => {
        const s = status(p);
        const leader = s.leader;
        return (
          JSON.stringify(s.primaries.map((x) => x.name)) === JSON.stringify([...names].sort()) &&
          leader !== null &&
          names.includes(leader) &&
          ps.every((q) => status(q).leader === leader)
        );
      }),
    `the primaries ${names.join(", ")} see each other and agree on a leader`,
    15_000,
  );
  return status(ps[0] as TestPrimary).leader as string;
}

/**
 * A primary of the cluster in a child process (so that it can be SIGKILLed),
 * joined before this returns; killed when the test ends.
 */
async function spawnClusterPrimary(
  t: Ctx,
  urls: string[],
  name: string,
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; port: number }> {
  const p = spawnPrimary(scratchDir(t, `picluster-${name}-`), 0, {
    PICLUSTER_CLUSTER_NATS: urls.join(","),
    PICLUSTER_CLUSTER_NAME: name,
    PICLUSTER_CLUSTER_LEASE: "1s",
    ...env,
  });
  t.after(() => killed(p.child));
  const port = await p.port;
  await p.joined();
  return { child: p.child, port };
}

/** A three-server NATS cluster and three primaries on it (p1, p2, p3) that agree on a leader. */
async function threePrimaries(t: Ctx): Promise<[TestPrimary, TestPrimary, TestPrimary]> {
  const nats = await startNatsCluster(t, 3);
  const ps = (await startPrimaries(t, nats.urls, ["p1", "p2", "p3"])) as [
    TestPrimary,
    TestPrimary,
    TestPrimary,
  ];
  await agreed(ps, ["p1", "p2", "p3"]);
  return ps;
}

/** Every sample 1..upTo[i] of each agent is in `p`'s store, once (waits for its consumer). */
async function allAckedStored(
  p: TestPrimary,
  agents: Array<{ agent: { id: string } }>,
  upTo: number[],
): Promise<void> {
  await waitFor(
    () => {
      const db = new Database(join(p.dataDir, "picluster.db"), { readonly: true });
      try {
        return agents.every((a, i) => {
          const row = db
            .prepare(
              "SELECT count(*) AS n, min(seq) AS lo, max(seq) AS hi FROM vitals_raw WHERE node_id = ? AND seq <= ?",
            )
            .get(a.agent.id, upTo[i]) as { n: number; lo: number; hi: number };
          return row.n === upTo[i] && row.lo === 1 && row.hi === upTo[i];
        });
      } finally {
        db.close();
      }
    },
    `every acked sample of every agent in ${p.primary.clusterStatus()?.self}'s store`,
    15_000,
  );
}

test("scale-out - three primaries on three NATS servers see each other and one leader; when the leader stops another takes over within the lease", {
  skip: NO_NATS,
}, async (t) => {
  const nats = await startNatsCluster(t, 3);
  const ps = await startPrimaries(t, nats.urls, ["p1", "p2", "p3"]);
  let leader = await agreed(ps, ["p1", "p2", "p3"]);
  const s = status(ps[0] as TestPrimary);
  assert.equal(s.self, "p1");
  assert.equal(s.nats.connected, true);
  assert.match(s.nats.server ?? "", /127\.0\.0\.1/);
  assert.equal(s.primaries.filter((p) => p.leader).length, 1, "one leader in the list");
  assert.ok(s.primaries.every((p) => /^127\.0\.0\.1:\d+$|:\d+$/.test(p.agentAddress)));

  // The same from the command line, on any primary.
  const cli = await runCli(t, ["cluster", "status"], {
    port: httpPort(ps[2] as TestPrimary),
    token: null,
  });
  assert.equal(cli.status, 0, cli.err);
  // The lease may change hands between two reads on a loaded machine (a renewal
  // later than the lease is a legitimate hand-over), so the command's output is
  // checked against itself: one leader, named in the header and in the list.
  const header = /^3 primaries, leader (p[123]); p3 is on NATS 127\.0\.0\.1:\d+/.exec(cli.out);
  assert.ok(header !== null, cli.out);
  assert.match(cli.out, new RegExp(`^${header[1]}( \\(this\\))? +leader `, "m"));
  assert.match(
    cli.out,
    /^p3 \(this\) +(leader|follower) +0 +\S+:\d+ +http:\/\/127\.0\.0\.1:\d+\//m,
  );
  assert.equal(
    cli.out.split("\n").filter((l) => /^\S+( \(this\))? +leader /.test(l)).length,
    1,
    cli.out,
  );
  const json = await runCli(t, ["cluster", "status", "--json"], {
    port: httpPort(ps[0] as TestPrimary),
    token: null,
  });
  const parsed = JSON.parse(json.out) as { mode: string; leader: string; primaries: unknown[] };
  assert.equal(parsed.mode, "scale-out");
  assert.ok(["p1", "p2", "p3"].includes(parsed.leader), parsed.leader);
  assert.equal(parsed.primaries.length, 3);
  leader = await agreed(ps, ["p1", "p2", "p3"]);
  const index = ["p1", "p2", "p3"].indexOf(leader);
  const gone = ps[index] as TestPrimary;
  const rest = ps.filter((p) => p !== gone);
  const restNames = ["p1", "p2", "p3"].filter((n) => n !== leader);
  const at = Date.now();
  await gone.close();
  const next = await agreed(rest, restNames);
  const tookMs = Date.now() - at;
  assert.notEqual(next, leader);
  t.diagnostic(`leader ${leader} stopped; ${next} leads after ${tookMs} ms`);
});

test("scale-out - a node added on one primary joins through another; a revocation on a third cuts it where it is connected", {
  skip: NO_NATS,
}, async (t) => {
  const [p1, p2, p3] = await threePrimaries(t);
  // The token comes from p1 and reaches p2 through the bucket; the agent knows a primary
  // that is not there (port 1), then p2.
  const token = p1.addNode("pi-a");
  await waitFor(
    () =>
      p2.primary.credentials?.list().some((c) => c.name === "pi-a" && c.status === "pending") ===
      true,
    "pi-a's join token on p2",
    10_000,
  );
  const agent = startAgent(t, { port: p1.port, addNode: () => token }, "pi-a", {
    "agent.primary_host": `127.0.0.1:1, 127.0.0.1:${p2.port}`,
    "agent.reconnect_max": "1s",
  });
  await waitFor(
    () => p2.primary.registry.list().some((n) => n.name === "pi-a" && n.state === "alive"),
    "pi-a alive on p2",
    15_000,
  );
  const nodeId = agent.agent.id;
  // Its credential reached every primary.
  await waitFor(
    () =>
      [p1, p2, p3].every((p) =>
        p.primary.credentials?.list().some((c) => c.nodeId === nodeId && c.status === "active"),
      ),
    "pi-a's credential on every primary",
    10_000,
  );
  p3.primary.credentials?.revoke("pi-a");
  await waitFor(
    () => p2.primary.registry.get(nodeId)?.state === "left",
    "pi-a cut on p2 and left",
    10_000,
  );
  assert.equal(p2.primary.registry.get(nodeId)?.stateReason, "credential revoked");
});

test("scale-out - an agent with several primaries stays on the one it reached and moves to another when it is lost", {
  skip: NO_NATS,
}, async (t) => {
  const nats = await startNatsCluster(t, 3);
  const [p1, p2] = (await startPrimaries(t, nats.urls, ["p1", "p2"])) as [TestPrimary, TestPrimary];
  await agreed([p1, p2], ["p1", "p2"]);
  const agent = startAgent(t, { port: p1.port, addNode: (n) => p1.addNode(n) }, "pi-b", {
    "agent.primary_host": `127.0.0.1:${p1.port}, 127.0.0.1:${p2.port}`,
    "agent.reconnect_max": "1s",
  });
  const onP1 = () =>
    p1.primary.registry.list().some((n) => n.name === "pi-b" && n.state === "alive");
  await waitFor(onP1, "pi-b alive on p1", 15_000);
  assert.equal(p1.primary.sessions.has(agent.agent.id), true);
  assert.equal(
    p2.primary.sessions.has(agent.agent.id),
    false,
    "it stays on the primary it reached",
  );
  // p2 knows it all the same, from the node records the primaries share.
  await waitFor(
    () => p2.primary.registry.get(agent.agent.id)?.state === "alive",
    "pi-b alive on p2 too",
    5_000,
  );
  const at = Date.now();
  await p1.close();
  await waitFor(
    () => p2.primary.sessions.has(agent.agent.id),
    "pi-b connected to p2 after p1 stopped",
    15_000,
  );
  t.diagnostic(`pi-b on p2 ${Date.now() - at} ms after p1 stopped`);
  assert.equal(p2.primary.registry.get(agent.agent.id)?.state, "alive");
});

test("scale-out - the leader killed with SIGKILL: its lease runs out, another primary leads within the lease and the dead one leaves the list", {
  skip: NO_NATS,
}, async (t) => {
  const nats = await startNatsCluster(t, 3);
  // The first primary up takes the lease: the one in a child process, so that it can be killed.
  const doomed = await spawnClusterPrimary(t, nats.urls, "doomed");
  const ps = await startPrimaries(t, nats.urls, ["p1", "p2"]);
  const leader = await agreed(ps, ["doomed", "p1", "p2"]);
  assert.equal(leader, "doomed");
  const at = Date.now();
  await killed(doomed.child);
  const next = await agreed(ps, ["p1", "p2"]);
  const tookMs = Date.now() - at;
  assert.ok(["p1", "p2"].includes(next));
  t.diagnostic(
    `leader killed; ${next} leads and the list is p1, p2 after ${tookMs} ms (lease 1 s)`,
  );
});

test("scale-out - every primary shows every node; a primary killed with SIGKILL: an agent that knows another is alive there within seconds, one that knows only the dead primary is suspect, then down, by the leader", {
  skip: NO_NATS,
}, async (t) => {
  const nats = await startNatsCluster(t, 3);
  const doomed = await spawnClusterPrimary(t, nats.urls, "doomed");
  const doomedPort = doomed.port;
  const [p1, p2] = (await startPrimaries(t, nats.urls, ["p1", "p2"], {
    "primary.dead_after": "3s",
  })) as [TestPrimary, TestPrimary];
  await agreed([p1, p2], ["doomed", "p1", "p2"]);
  // Tokens from p1 (shared with every primary); both agents reach the doomed primary first.
  const both = startAgent(t, { port: doomedPort, addNode: (n) => p1.addNode(n) }, "pi-both", {
    "agent.primary_host": `127.0.0.1:${doomedPort}, 127.0.0.1:${p2.port}`,
    "agent.reconnect_max": "1s",
  });
  const only = startAgent(t, { port: doomedPort, addNode: (n) => p1.addNode(n) }, "pi-only", {
    "agent.reconnect_max": "1s",
  });
  const stateOn = (p: TestPrimary, id: string) => p.primary.registry.get(id)?.state;
  await waitFor(
    () =>
      [p1, p2].every(
        (p) => stateOn(p, both.agent.id) === "alive" && stateOn(p, only.agent.id) === "alive",
      ),
    "both agents, connected to the doomed primary, alive on p1 and p2",
    15_000,
  );
  await waitFor(
    () => p1.primary.registry.get(both.agent.id)?.details?.hostname === "pi-both",
    "its details reached p1",
    5_000,
  );
  const at = Date.now();
  await killed(doomed.child);
  await waitFor(
    () =>
      p2.primary.registry.get(both.agent.id)?.state === "alive" &&
      p2.primary.clusterStatus()?.primaries.some((x) => x.name === "p2" && x.sessions === 1) ===
        true,
    "pi-both connected to p2",
    15_000,
  );
  const movedMs = Date.now() - at;
  await waitFor(
    () => stateOn(p1, only.agent.id) === "down" && stateOn(p2, only.agent.id) === "down",
    "pi-only down on p1 and p2",
    20_000,
  );
  const downMs = Date.now() - at;
  assert.equal(stateOn(p1, both.agent.id), "alive", "the agent that moved stays alive");
  const reason = p1.primary.registry.get(only.agent.id)?.stateReason ?? "";
  assert.match(reason, /its primary doomed vanished/);
  p1.primary.store.flush();
  const states = p1.primary.store
    .events({ node: only.agent.id, kind: "node.state", limit: 50 })
    .sort((a, b) => a.id - b.id)
    .map((e) => e.data.to);
  assert.deepEqual(states.slice(-2), ["suspect", "down"], `pi-only's states on p1: ${states}`);
  t.diagnostic(
    `pi-both alive on p2 ${movedMs} ms after the kill; pi-only down ${downMs} ms after (lease 1 s, dead_after 3 s)`,
  );
});

test("scale-out - a primary killed with SIGKILL during ingest: its agents go on through the others, and every sample any primary acknowledged is in every surviving primary's store and in the stream exactly once", {
  skip: NO_NATS,
}, async (t) => {
  const nats = await startNatsCluster(t, 3);
  const doomed = await spawnClusterPrimary(t, nats.urls, "doomed");
  const doomedPort = doomed.port;
  const [p1, p2] = (await startPrimaries(t, nats.urls, ["p1", "p2"], {
    "primary.vitals_interval": "1s",
  })) as [TestPrimary, TestPrimary];
  const agents = ["pi-1", "pi-2", "pi-3"].map((name, i) =>
    startAgent(t, { port: doomedPort, addNode: (n) => p1.addNode(n) }, name, {
      "agent.primary_host": `127.0.0.1:${doomedPort}, 127.0.0.1:${(i % 2 === 0 ? p1 : p2).port}`,
      "agent.reconnect_max": "1s",
    }),
  );
  const acked = () => agents.map((a) => a.agent.outbox.ackedUpTo);
  await waitFor(
    () => acked().every((n) => n >= 3),
    "three samples acked by the doomed primary",
    20_000,
  );
  await killed(doomed.child);
  const atKill = acked();
  await waitFor(
    () => acked().every((n, i) => n >= (atKill[i] as number) + 3),
    "three more samples acked each, through p1 and p2",
    20_000,
  );
  for (const a of agents) await a.stop();
  const upTo = acked();
  // Every acked sample, in both survivors' stores, once.
  for (const p of [p1, p2]) await allAckedStored(p, agents, upTo);
  // And once in the stream: samples sent again after the kill were dropped as duplicates.
  const nc = await connect({ servers: nats.urls });
  t.after(() => nc.close());
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info("picluster-vitals", { subjects_filter: ">" });
  const subjects = info.state.subjects ?? {};
  for (const [i, a] of agents.entries()) {
    const inStream = subjects[`picluster.vitals.${a.agent.id}`] ?? 0;
    assert.ok(
      inStream >= (upTo[i] as number),
      `${a.agent.id}: ${inStream} samples in the stream, ${upTo[i]} acked`,
    );
    const db = new Database(join(p1.dataDir, "picluster.db"), { readonly: true });
    const stored = (
      db.prepare("SELECT count(*) AS n FROM vitals_raw WHERE node_id = ?").get(a.agent.id) as {
        n: number;
      }
    ).n;
    db.close();
    assert.equal(inStream, stored, `${a.agent.id}: each sample in the stream once`);
  }
  t.diagnostic(
    `acked at the kill ${atKill.join("/")}, at the end ${upTo.join("/")}; all in p1's and p2's stores and once in the stream`,
  );
});

test("scale-out - the leader killed while a node goes down: exactly one message for that node, from the new leader", {
  skip: NO_NATS,
}, async (t) => {
  const hook = await startReceiver(t);
  const ini = [
    "[alert.node_down]",
    "for = 2s",
    "[channel.hook]",
    "type = webhook",
    `url = ${hook.url}/hook`,
    "",
  ].join("\n");
  const iniFile = join(scratchDir(t, "picluster-alerts-ini-"), "picluster.ini");
  writeFileSync(iniFile, ini);
  const nats = await startNatsCluster(t, 3);
  const leader = await spawnClusterPrimary(t, nats.urls, "leader", { PICLUSTER_CONFIG: iniFile });
  const [p1, p2] = (await startPrimaries(t, nats.urls, ["p1", "p2"], {}, ini)) as [
    TestPrimary,
    TestPrimary,
  ];
  assert.equal(await agreed([p1, p2], ["leader", "p1", "p2"]), "leader");
  const agent = spawnAgent(t, p1, "pi-falling");
  await waitFor(
    () =>
      [p1, p2].every((p) =>
        p.primary.registry.list().some((n) => n.name === "pi-falling" && n.state === "alive"),
      ),
    "pi-falling alive everywhere",
    15_000,
  );
  // Killed once on its own credential (the join's first connection has ended).
  const falling = () => p1.primary.registry.list().find((n) => n.name === "pi-falling");
  await waitFor(
    () => {
      const id = falling()?.id;
      const session = id === undefined ? undefined : p1.primary.sessions.get(id);
      return session?.credentialIdentity?.startsWith("n-") === true;
    },
    "pi-falling on p1 with its own credential",
    10_000,
  );
  agent.kill("SIGKILL");
  await waitFor(
    () => p2.primary.registry.list().some((n) => n.name === "pi-falling" && n.state === "down"),
    "pi-falling down on p2",
    10_000,
  );
  // Within the rule's 2 s: the leader dies before it may tell.
  await killed(leader.child);
  const next = await agreed([p1, p2], ["p1", "p2"]);
  await waitFor(() => hook.requests.length >= 1, "the down message", 15_000);
  // Nothing more comes: a check of absence needs a window (a follower keeps what it
  // would have told for two leases and five seconds; 3 s covers the new leader's next ticks).
  await new Promise((r) => setTimeout(r, 3_000));
  const messages = hook.requests.map(
    (r) => JSON.parse(r.body) as { status: string; rule: string; title: string },
  );
  assert.deepEqual(
    messages.map((m) => [m.status, m.rule, m.title]),
    [["firing", "node_down", "pi-falling is down"]],
  );
  // Delivered by the new leader; the other follower delivered nothing.
  const delivered = (p: TestPrimary) => p.records.filter((r) => r.msg === "alert delivered").length;
  const [newLeader, follower] = (next === "p1" ? [p1, p2] : [p2, p1]) as [TestPrimary, TestPrimary];
  assert.equal(delivered(newLeader), 1, `${next} told it`);
  assert.equal(delivered(follower), 0, "the follower told nothing");
  t.diagnostic(`told once, by ${next} (the new leader)`);
});

test("scale-out - without [cluster] nats nothing changes: /api/cluster has no scaleOut and `cluster status` says the primary is embedded", async (t) => {
  const p = await startPrimary(t);
  assert.equal(p.primary.clusterStatus(), undefined);
  const body = (await (await fetch(`http://127.0.0.1:${httpPort(p)}/api/cluster`)).json()) as {
    scaleOut?: unknown;
  };
  assert.equal("scaleOut" in body, false);
  const cli = await runCli(t, ["cluster", "status"], { port: httpPort(p), token: null });
  assert.equal(cli.status, 0);
  assert.match(cli.out, /^embedded mode: one primary on its own SQLite store/);
  const json = await runCli(t, ["cluster", "status", "--json"], { port: httpPort(p), token: null });
  assert.deepEqual(JSON.parse(json.out), { mode: "embedded" });
});

test("scale-out - one NATS server killed: samples keep being acknowledged and stored by every primary, and nobody is paged", {
  skip: NO_NATS,
}, async (t) => {
  const hook = await startReceiver(t);
  const ini = ["[channel.hook]", "type = webhook", `url = ${hook.url}/hook`, ""].join("\n");
  const nats = await startNatsCluster(t, 3);
  // Each primary is given one server first, so that killing s1 cuts p1's own connection.
  const p1 = (
    await startPrimaries(
      t,
      [nats.urls[0], nats.urls[1]] as string[],
      ["p1"],
      {
        "primary.vitals_interval": "1s",
      },
      ini,
    )
  )[0] as TestPrimary;
  const p2 = (
    await startPrimaries(
      t,
      [nats.urls[1], nats.urls[2]] as string[],
      ["p2"],
      {
        "primary.vitals_interval": "1s",
      },
      ini,
    )
  )[0] as TestPrimary;
  await agreed([p1, p2], ["p1", "p2"]);
  // x86 fixtures: a Pi fixture reports under-voltage, which would page.
  const agents = [p1, p2].map((p, i) => startAgent(t, p, `pi-${i + 1}`, {}, "x86-server"));
  const acked = () => agents.map((a) => a.agent.outbox.ackedUpTo);
  await waitFor(() => acked().every((n) => n >= 2), "samples acked", 15_000);
  const before = acked();
  await nats.kill(0);
  await waitFor(
    () => acked().every((n, i) => n >= (before[i] as number) + 4),
    "four more samples acked by each agent with one NATS server gone",
    20_000,
  );
  // No primary was taken for gone (its nodes judged suspect) for the loss of a NATS server.
  // (An agent whose acks waited out JetStream's election longer than three vitals intervals
  // reconnects, which may show as a moment down and alive again: that pages nobody.)
  const transitions: string[] = [];
  for (const p of [p1, p2]) {
    p.primary.store.flush();
    for (const a of agents)
      for (const e of p.primary.store.events({ node: a.agent.id, kind: "node.state", limit: 50 }))
        transitions.push(`${e.data.to} (${e.data.reason})`);
  }
  assert.deepEqual(
    transitions.filter((x) => /vanished/.test(x)),
    [],
    transitions.join("; "),
  );
  for (const p of [p1, p2])
    for (const a of agents) assert.equal(p.primary.registry.get(a.agent.id)?.state, "alive");
  for (const a of agents) await a.stop();
  const upTo = acked();
  for (const p of [p1, p2]) await allAckedStored(p, agents, upTo);
  assert.equal(
    p1.primary.clusterStatus()?.nats.connected,
    true,
    "p1 reconnected to another server",
  );
  assert.deepEqual(hook.requests, [], "nobody was paged");
  t.diagnostic(`acked before the kill ${before.join("/")}, after ${upTo.join("/")}`);
});

test("scale-out - any primary runs a task, a ping or a job on nodes held by the others: each request goes through the node's primary, the output comes back, the run is stored where it was asked", {
  skip: NO_NATS,
}, async (t) => {
  const [p1, p2, p3] = await threePrimaries(t);
  const tasks = [
    "[task.hello]",
    "command = /usr/bin/printf '%%s from the node' {greeting}",
    "arg.greeting = string [a-z]{1,16}",
    "",
  ].join("\n");
  const a = startAgent(t, p1, "pi-a", {}, "x86-server", tasks);
  const b = startAgent(t, p2, "pi-b", {}, "x86-server", tasks);
  await waitFor(
    () =>
      [a, b].every(
        (x) =>
          p3.primary.registry.get(x.agent.id)?.state === "alive" &&
          p3.primary.registry.get(x.agent.id)?.details?.tasks !== undefined,
      ),
    "both nodes alive with their tasks on p3",
    15_000,
  );
  // Asked on p3, which holds neither.
  const hello = async (on: string) => {
    const run = p3.primary.tasks.start({
      task: "hello",
      on,
      args: { greeting: "hi" },
      requestedBy: "test",
    });
    await p3.primary.tasks.settled(run.id);
    return p3.primary.tasks.get(run.id);
  };
  const done = await hello("all");
  assert.equal(done?.status, "ok", JSON.stringify(done?.nodes));
  assert.deepEqual(done?.nodes.map((n) => [n.name, n.status, n.output]).sort(), [
    ["pi-a", "ok", "hi from the node"],
    ["pi-b", "ok", "hi from the node"],
  ]);
  const pings = await p3.primary.tasks.ping("all", 5_000);
  assert.deepEqual(pings.map((r) => [r.name, r.ok]).sort(), [
    ["pi-a", true],
    ["pi-b", true],
  ]);
  // A job from p3: its items run on nodes held by p1 and p2.
  const job = await p3.primary.jobs.submit({
    task: "hello",
    on: "all",
    items: { kind: "list", values: ["one", "two", "three", "four", "five", "six"] },
    args: { greeting: "{item}" },
    requestedBy: "test",
  });
  await p3.primary.jobs.settled(job.id);
  const items = await p3.primary.jobs.items(job.id, { limit: 10 });
  assert.deepEqual(
    items.map((i) => [i.state, i.output]),
    ["one", "two", "three", "four", "five", "six"].map((w) => ["ok", `${w} from the node`]),
  );
  // A node held by nobody (its agent stopped): refused at once, as when embedded.
  await a.stop();
  await waitFor(
    () => p3.primary.registry.get(a.agent.id)?.state === "left",
    "pi-a left on p3",
    10_000,
  );
  assert.equal((await hello("pi-a"))?.nodes[0]?.status, "skipped");
});

test("scale-out - the dashboard's header shows how many primaries there are and which one leads, each with its agents in the tooltip", {
  skip: NO_NATS ?? NO_BROWSER,
}, async (t) => {
  const nats = await startNatsCluster(t, 1);
  const [p1, p2] = (await startPrimaries(t, nats.urls, ["p1", "p2"])) as [TestPrimary, TestPrimary];
  const leader = await agreed([p1, p2], ["p1", "p2"]);
  startAgent(t, p1, "pi-a", {}, "x86-server");
  await waitFor(
    () => p1.primary.clusterStatus()?.primaries.find((p) => p.name === "p1")?.sessions === 1,
    "p1 says it holds one agent",
    10_000,
  );
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${httpPort(p2)}/`);
  await page.waitForSelector('[data-testid="primaries"]');
  assert.equal(
    await page.textContent('[data-testid="primaries"]'),
    `2 primaries · leader ${leader}`,
  );
  const title = (await page.getAttribute('[data-testid="primaries"]', "title")) ?? "";
  assert.match(title, /^This page: p2 \(NATS 127\.0\.0\.1:\d+\)$/m);
  assert.match(title, /^p1( \(leader\))?: 1 agent, \S+:\d+$/m);
  // Embedded: no badge at all.
  const solo = await startPrimary(t);
  await page.goto(`http://127.0.0.1:${httpPort(solo)}/`);
  await page.waitForSelector('[data-testid="stream-status"]');
  assert.equal(await page.$('[data-testid="primaries"]'), null);
});

test("scale-out - `picluster demo cluster` starts three NATS servers, three primaries and its agents, prints the dashboards, and Ctrl-C ends everything it started", {
  skip: NO_NATS,
}, async (t) => {
  const child = spawn(process.execPath, [CLI, "demo", "cluster", "--agents", "2"], {
    env: Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith("PICLUSTER_")),
    ),
    stdio: ["ignore", "pipe", "pipe"],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  // What it printed by then, in the failure (the message is built before the wait).
  await waitFor(() => out.includes("Ctrl-C ends everything."), "the demo is up", 60_000).catch(
    (err: unknown) => {
      throw new Error(
        `${String(err)}; it printed:\n${out}(exit ${child.exitCode}, ${child.signalCode})`,
      );
    },
  );
  const lines = [...out.matchAll(/^ {2}(p\d) {2}dashboard (http:\/\/\S+) .* pid (\d+)$/gm)];
  assert.equal(lines.length, 3, out);
  const dir = /\((\/\S+picluster-demo-\S+)\)/.exec(out)?.[1] as string;
  assert.ok(existsSync(dir));
  for (const [, , url] of lines)
    await waitFor(
      async () => {
        const c = (await (await fetch(`${url}api/cluster`)).json()) as {
          states: { alive: number };
          scaleOut?: { primaries: unknown[]; leader: string | null };
        };
        return (
          c.states.alive === 2 && c.scaleOut?.primaries.length === 3 && c.scaleOut.leader !== null
        );
      },
      `${url}: two agents alive and three primaries with a leader`,
      20_000,
    );
  child.kill("SIGINT");
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  assert.equal(code, 0, out);
  assert.match(out, /stopping…/);
  assert.equal(existsSync(dir), false, "its directory is removed");
  for (const [, , , pid] of lines)
    assert.equal(processAlive(Number(pid)), false, `primary ${pid} ended`);
});

test("scale-out - the join lines name every primary: this one first, then the others with their ports", {
  skip: NO_NATS,
}, async (t) => {
  const nats = await startNatsCluster(t, 1);
  const ps = (await startPrimaries(
    t,
    nats.urls,
    ["p1", "p2", "p3"],
    { "http.token": "join-test-token" },
    undefined,
    BUNDLE,
  )) as [TestPrimary, TestPrimary, TestPrimary];
  await agreed(ps, ["p1", "p2", "p3"]);
  const [p1] = ps;
  const others = status(p1)
    .primaries.filter((p) => p.name !== "p1")
    .map((p) => p.agentAddress);
  assert.equal(others.length, 2);
  const res = await fetch(`http://127.0.0.1:${httpPort(p1)}/api/nodes/pi-new/join-token`, {
    method: "POST",
    headers: { authorization: "Bearer join-test-token" },
  });
  assert.equal(res.status, 201);
  const body = (await res.json()) as { manual: string; command: string; primaries: number };
  assert.equal(body.primaries, 3);
  const own = status(p1).primaries.find((p) => p.name === "p1")?.agentAddress as string;
  assert.ok(
    body.manual.includes(`--agent-primary-host '${[own, ...others].join(",")}'`),
    body.manual,
  );
  // The script the one-line command fetches, and its hash in that line, agree and name all three.
  const script = await (await fetch(`http://127.0.0.1:${httpPort(p1)}/join.sh`)).text();
  assert.ok(script.includes(`PRIMARY_HOST='${[own, ...others].join(",")}'`), script.slice(0, 400));
  assert.ok(body.command.includes(createHash("sha256").update(script).digest("hex")));
});

test("scale-out - an embedded primary turned into one of several brings its nodes' credentials and records: its agent joins another primary without a new token", {
  skip: NO_NATS,
}, async (t) => {
  // An embedded install with a joined node.
  const embedded = await startPrimary(t);
  const agent = startAgent(t, embedded, "pi-old", { "agent.reconnect_max": "1s" }, "x86-server");
  await waitFor(
    () => embedded.primary.registry.get(agent.agent.id)?.state === "alive",
    "pi-old alive on the embedded primary",
    10_000,
  );
  await agent.stop();
  await embedded.close();
  // The same data directory, now with [cluster] nats; a second primary beside it.
  const nats = await startNatsCluster(t, 1);
  const moved = await startPrimary(
    t,
    { "cluster.nats": nats.urls.join(","), "cluster.name": "moved", "cluster.lease": "1s" },
    embedded.dataDir,
  );
  await moved.primary.clusterReady();
  const [other] = (await startPrimaries(t, nats.urls, ["other"])) as [TestPrimary];
  await agreed([moved, other], ["moved", "other"]);
  await waitFor(
    () => other.primary.registry.get(agent.agent.id)?.name === "pi-old",
    "the node's record reached the other primary",
    10_000,
  );
  // The agent, restarted on its data directory (its credential, no token), reaches only the other.
  const again = new Agent({
    config: testConfig({
      "agent.primary_host": `127.0.0.1:${other.port}`,
      "node.name": "pi-old",
      "log.liveness_interval": "1h",
    }),
    dataDir: agent.dataDir,
    log: silentLogger(),
    version: "0.1.0-test",
    collectors: {
      root: join(agent.dataDir, "root"),
      os: { ...nodeOsFacts(), hostname: () => "pi-old" },
    },
  });
  again.start();
  t.after(() => again.stop("test over"));
  await waitFor(
    () => other.primary.sessions.has(agent.agent.id),
    "pi-old connected to the other primary with the credential it got from the embedded one",
    15_000,
  );
  assert.equal(again.id, agent.agent.id);
});

test("scale-out - a job keeps going across the death of its primary: the leader takes it over, what was out runs again, and every item ends ok on every survivor", {
  skip: NO_NATS,
}, async (t) => {
  const nats = await startNatsCluster(t, 3);
  const token = "job-across-primaries-token";
  const doomed = await spawnClusterPrimary(t, nats.urls, "doomed", {
    PICLUSTER_HTTP_TOKEN: token,
  });
  const [p1, p2] = (await startPrimaries(t, nats.urls, ["p1", "p2"])) as [TestPrimary, TestPrimary];
  await agreed([p1, p2], ["doomed", "p1", "p2"]);
  const tasks = ["[task.work]", "command = /usr/bin/sleep 0.3", ""].join("\n");
  const agents = [
    startAgent(t, p1, "pi-a", {}, "x86-server", tasks),
    startAgent(t, p2, "pi-b", {}, "x86-server", tasks),
    // Held by the doomed primary; moves to p2 when it dies.
    startAgent(
      t,
      { port: doomed.port, addNode: (n) => p1.addNode(n) },
      "pi-c",
      {
        "agent.primary_host": `127.0.0.1:${doomed.port}, 127.0.0.1:${p2.port}`,
        "agent.reconnect_max": "1s",
      },
      "x86-server",
      tasks,
    ),
  ];
  await waitFor(
    () =>
      agents.every(
        (a) =>
          p1.primary.registry.get(a.agent.id)?.state === "alive" &&
          p1.primary.registry.get(a.agent.id)?.details?.tasks !== undefined,
      ),
    "the three nodes alive with their tasks",
    15_000,
  );
  const httpUrl = status(p1).primaries.find((x) => x.name === "doomed")?.httpUrl;
  assert.ok(httpUrl, "the doomed primary's address is in its presence");
  // Accepted by the doomed primary: it owns and drives the job.
  const total = 36;
  const res = await fetch(new URL("/api/jobs", httpUrl), {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({
      task: "work",
      on: "all",
      items: { kind: "range", from: 1, to: total },
      perNode: 1,
    }),
  });
  assert.equal(res.status, 202, await res.clone().text());
  const { id } = (await res.json()) as { id: number };
  const okOn = async (p: TestPrimary) => (await p.primary.jobs.get(id))?.counts.ok ?? 0;
  await waitFor(async () => (await okOn(p1)) >= 6, "a few items done, as p1 sees them", 15_000);
  const before = await okOn(p1);
  const killedAt = Date.now();
  await killed(doomed.child);
  await waitFor(
    async () =>
      (await p1.primary.jobs.get(id))?.status === "ok" &&
      (await p2.primary.jobs.get(id))?.status === "ok",
    "the job finished ok on p1 and p2",
    40_000,
  );
  const finishedMs = Date.now() - killedAt;
  for (const p of [p1, p2]) {
    const job = await p.primary.jobs.get(id);
    assert.deepEqual(job?.counts, {
      total,
      queued: 0,
      running: 0,
      ok: total,
      failed: 0,
      cancelled: 0,
    });
  }
  const items = await p1.primary.jobs.items(id, { limit: 100 });
  assert.deepEqual(
    items.map((i) => [i.index, i.state]),
    Array.from({ length: total }, (_, i) => [i, "ok"]),
  );
  assert.deepEqual(items, await p2.primary.jobs.items(id, { limit: 100 }), "the replicas agree");
  const after = items.filter((i) => (i.finishedAt ?? 0) > killedAt);
  assert.ok(after.length > 0, "items finished after the owner died");
  assert.ok(before < total, "the kill came before the end");
  t.diagnostic(
    `${before}/${total} items done when the owner was killed; the rest done ${finishedMs} ms later through the new owner (lease 1 s); ${items.filter((i) => i.attempts > 1).length} items ran again`,
  );
});

test("scale-out - `picluster cluster import` copies an embedded store's credentials, nodes, vitals history and custom and container series into the cluster: every primary stores it, and a second run adds nothing", {
  skip: NO_NATS,
}, async (t) => {
  const embedded = await startPrimary(t, { "primary.vitals_interval": "1s" });
  const agent = startAgent(t, embedded, "pi-old", {}, "x86-server");
  const storeOf = (dir: string) => join(dir, "picluster.db");
  const count = (dir: string, sql: string, ...params: unknown[]) => {
    const db = new Database(storeOf(dir), { readonly: true });
    try {
      return (db.prepare(sql).get(...params) as { n: number }).n;
    } finally {
      db.close();
    }
  };
  const rawOf = (dir: string) =>
    count(dir, "SELECT count(*) AS n FROM vitals_raw WHERE node_id = ?", agent.agent.id);
  await waitFor(() => rawOf(embedded.dataDir) >= 4, "a few samples stored", 15_000);
  await agent.stop();
  await embedded.close();
  // An hour of a month ago, as a store that ran then keeps it (its raw samples long pruned).
  const monthAgo = Math.floor((Date.now() - 30 * 86_400_000) / 3_600_000) * 3_600_000;
  {
    const db = new Database(storeOf(embedded.dataDir));
    const cols = (db.prepare("PRAGMA table_info(vitals_1h)").all() as Array<{ name: string }>)
      .map((c) => c.name)
      .filter((c) => !["node_id", "bucket", "samples"].includes(c));
    db.prepare(
      `INSERT INTO vitals_1h (node_id, bucket, samples, ${cols.join(", ")}) VALUES (?, ?, 360, ${cols.map((c) => (c.endsWith("_n") ? "360" : "42")).join(", ")})`,
    ).run(agent.agent.id, monthAgo);
    // The node's own series and a container's: a sample each, and the old hour of one.
    const custom = db.prepare(
      "INSERT INTO custom_raw (node_id, series, ts, value) VALUES (?, ?, ?, ?)",
    );
    custom.run(agent.agent.id, "queue_depth", Date.now() - 60_000, 7);
    custom.run(agent.agent.id, 'container.cpu{name="web"}', Date.now() - 60_000, 3.5);
    db.prepare(
      "INSERT INTO custom_1h (node_id, series, bucket, min, max, sum, n) VALUES (?, 'queue_depth', ?, 1, 9, 50, 10)",
    ).run(agent.agent.id, monthAgo);
    db.close();
  }
  const samples = rawOf(embedded.dataDir);
  const nats = await startNatsCluster(t, 1);
  const ps = await startPrimaries(t, nats.urls, ["p1", "p2"]);
  await agreed(ps, ["p1", "p2"]);
  const importOnce = async () => {
    const run = await runCli(t, ["cluster", "import", "--json"], {
      port: ps[0]?.port ?? 0,
      token: null,
      env: {
        PICLUSTER_NODE_DATA_DIR: embedded.dataDir,
        PICLUSTER_CLUSTER_NATS: nats.urls.join(","),
      },
      timeoutMs: 30_000,
    });
    assert.equal(run.status, 0, run.err);
    return {
      summary: JSON.parse(run.out) as {
        credentials: { added: number; present: number };
        nodes: { added: number; present: number };
        rows: { raw: number; minute: number; hour: number; custom: number };
      },
      progress: run.err,
    };
  };
  const first = await importOnce();
  assert.ok(first.summary.credentials.added >= 1, JSON.stringify(first.summary));
  assert.deepEqual(first.summary.nodes, { added: 1, present: 0 });
  assert.equal(first.summary.rows.raw, samples);
  assert.ok(first.summary.rows.hour >= 1);
  assert.equal(first.summary.rows.custom, 3, "two samples of own series and an hour of one");
  assert.match(first.progress, new RegExp(`raw: ${samples}/${samples}`), "progress is shown");
  for (const p of ps) {
    await waitFor(
      () =>
        rawOf(p.dataDir) === samples &&
        count(
          p.dataDir,
          "SELECT count(*) AS n FROM vitals_1h WHERE node_id = ? AND bucket = ? AND cpu_max = 42",
          agent.agent.id,
          monthAgo,
        ) === 1,
      `every sample and the old hour in ${status(p).self}'s store`,
      15_000,
    );
    await waitFor(
      () =>
        count(
          p.dataDir,
          "SELECT count(*) AS n FROM custom_raw WHERE node_id = ?",
          agent.agent.id,
        ) === 2 &&
        count(
          p.dataDir,
          "SELECT count(*) AS n FROM custom_1h WHERE node_id = ? AND series = 'queue_depth' AND bucket = ? AND max = 9",
          agent.agent.id,
          monthAgo,
        ) === 1,
      `the node's own series and its container's in ${status(p).self}'s store`,
      15_000,
    );
    assert.equal(p.primary.registry.get(agent.agent.id)?.name, "pi-old", "the node is known");
  }
  const second = await importOnce();
  assert.equal(second.summary.credentials.added, 0);
  assert.equal(second.summary.credentials.present, first.summary.credentials.added);
  assert.deepEqual(second.summary.nodes, { added: 0, present: 1 });
  // Once p1's consumer has taken (stored and acknowledged) the second run's rows: still once each.
  const nc = await connect({ servers: nats.urls });
  t.after(() => nc.close());
  const jsm = await jetstreamManager(nc);
  await waitFor(
    async () => {
      const c = await jsm.consumers.info("picluster-vitals", "vitals-p1");
      return c.num_pending === 0 && c.num_ack_pending === 0;
    },
    "p1's consumer took everything",
    15_000,
  );
  assert.equal(rawOf((ps[0] as TestPrimary).dataDir), samples, "a second run stores nothing twice");
  assert.equal(
    count(
      (ps[0] as TestPrimary).dataDir,
      "SELECT count(*) AS n FROM custom_raw WHERE node_id = ?",
      agent.agent.id,
    ),
    2,
  );
});

test("scale-out - an API token made on one primary works on the others; revoked on another, it is refused everywhere", {
  skip: NO_NATS,
}, async (t) => {
  const nats = await startNatsCluster(t, 1);
  const admin = "scale-out-admin-token";
  const [p1, p2, p3] = (await startPrimaries(t, nats.urls, ["p1", "p2", "p3"], {
    "http.token": admin,
  })) as [TestPrimary, TestPrimary, TestPrimary];
  await agreed([p1, p2, p3], ["p1", "p2", "p3"]);
  // Made with the CLI on p1's machine (its store), as a user would.
  const made = await runCli(t, ["token", "add", "grafana", "--role", "viewer", "--json"], {
    port: httpPort(p1),
    token: null,
    env: { PICLUSTER_NODE_DATA_DIR: p1.dataDir },
  });
  assert.equal(made.status, 0, made.err);
  const { token } = JSON.parse(made.out) as { token: string };
  const whoOn = async (p: TestPrimary) =>
    (await (
      await fetch(`http://127.0.0.1:${httpPort(p)}/api/whoami`, {
        headers: { authorization: `Bearer ${token}` },
      })
    ).json()) as { name: string; refused?: string };
  await waitFor(
    async () => (await whoOn(p2)).name === "grafana" && (await whoOn(p3)).name === "grafana",
    "the token known on p2 and p3",
    10_000,
  );
  // Revoked through p2's API: refused on p1 and p3 from then on.
  const revoked = await fetch(`http://127.0.0.1:${httpPort(p2)}/api/tokens/grafana`, {
    method: "DELETE",
    headers: { authorization: `Bearer ${admin}` },
  });
  assert.equal(revoked.status, 200);
  await waitFor(
    async () =>
      /revoked/.test((await whoOn(p1)).refused ?? "") &&
      /revoked/.test((await whoOn(p3)).refused ?? ""),
    "the token refused on p1 and p3",
    10_000,
  );
});

test("scale-out - the job log is compacted: the leader stores snapshots and purges what they hold; a primary that joins later has every job from the newest snapshot", {
  skip: NO_NATS,
}, async (t) => {
  const nats = await startNatsCluster(t, 1);
  const flags = { "cluster.jobs_snapshot_every": "10" };
  const [p1, p2] = (await startPrimaries(t, nats.urls, ["p1", "p2"], flags)) as [
    TestPrimary,
    TestPrimary,
  ];
  await agreed([p1, p2], ["p1", "p2"]);
  const tasks = ["[task.work]", "command = /usr/bin/true", ""].join("\n");
  const agent = startAgent(t, p1, "pi-a", {}, "x86-server", tasks);
  await waitFor(
    () => p2.primary.registry.get(agent.agent.id)?.details?.tasks !== undefined,
    "the node alive with its tasks",
    15_000,
  );
  const total = 30;
  const job = await p2.primary.jobs.submit({
    task: "work",
    on: "all",
    items: { kind: "range", from: 1, to: total },
    perNode: 1,
    requestedBy: "test",
  });
  await p2.primary.jobs.settled(job.id);
  const nc = await connect({ servers: nats.urls });
  t.after(() => nc.close());
  const jsm = await jetstreamManager(nc);
  // Two snapshots at least: the first purges nothing, the second what the first holds.
  await waitFor(
    async () => (await jsm.streams.info("picluster-jobs")).state.first_seq > 1,
    "the job log purged below a snapshot",
    15_000,
  );
  const snapshot = await jsm.streams.info("OBJ_picluster-jobs-snap");
  assert.ok(snapshot.state.messages > 0, "a snapshot in the object store");
  // The job's first operations (its record, its items) are gone from the stream; p3 has them all the same.
  const [p3] = (await startPrimaries(t, nats.urls, ["p3"], flags)) as [TestPrimary];
  const expected = await p1.primary.jobs.items(job.id, { limit: 100 });
  assert.equal(expected.length, total);
  assert.ok(expected.every((i) => i.state === "ok"));
  await waitFor(
    async () => (await p3.primary.jobs.get(job.id))?.status === "ok",
    "p3 has the finished job",
    10_000,
  );
  assert.deepEqual(await p3.primary.jobs.items(job.id, { limit: 100 }), expected);
  assert.deepEqual(
    (await p3.primary.jobs.get(job.id))?.counts,
    (await p1.primary.jobs.get(job.id))?.counts,
  );
  const position = status(p3).jobLog;
  assert.ok(position !== undefined && position.loadedAt > 0, "p3 started from a snapshot");
  assert.equal(position.reloads, 0);
  const cli = await runCli(t, ["cluster", "status"], { port: httpPort(p3), token: null });
  assert.equal(cli.status, 0, cli.err);
  assert.match(cli.out, /; job log at \d+, snapshot \d+\n/);
  const log = await jsm.streams.info("picluster-jobs");
  t.diagnostic(
    `the job's ${total} items made ${log.state.last_seq} messages; the log keeps ${log.state.messages} from ${log.state.first_seq}, the snapshot is ${snapshot.state.bytes} bytes`,
  );
});
