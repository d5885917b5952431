import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { StoredJobItem } from "@picluster/common";
import { deadline, waitFor } from "@picluster/common/testing";
import { type ClusterEvent, JobRequestError } from "@picluster/primary";
import Database from "better-sqlite3";
import {
  auditLines,
  ScriptedPeer,
  scratchDir,
  spawnAgent,
  startAgent,
  startPrimary,
  type TestContext,
  type TestPrimary,
} from "./support/cluster.js";

/**
 * `mark` writes the item's number to a shared file when it starts, so a
 * test counts how often each item really ran; `nap` sleeps.
 */
function tasksIni(runs: string, napSeconds = "0", maxRunning = 4): string {
  const nap = napSeconds === "0" ? "" : ` sleep ${napSeconds};`;
  return [
    "[tasks]",
    `max_running = ${maxRunning}`,
    "[task.mark]",
    `command = /bin/sh -c 'echo "$0" >> ${runs};${nap} echo "item $0"' {n}`,
    "arg.n = integer",
    "[task.nap]",
    "command = /bin/sleep {seconds}",
    "arg.seconds = integer",
    "",
  ].join("\n");
}

/** How many times each item number was started, from the shared runs file. */
function runCounts(runs: string): Map<number, number> {
  const counts = new Map<number, number>();
  if (!existsSync(runs)) return counts;
  for (const line of readFileSync(runs, "utf8").split("\n"))
    if (line !== "") counts.set(Number(line), (counts.get(Number(line)) ?? 0) + 1);
  return counts;
}

function record(p: TestPrimary): ClusterEvent[] {
  const seen: ClusterEvent[] = [];
  p.primary.events.on((e) => seen.push(e));
  return seen;
}

async function aliveWithDetails(p: TestPrimary, n: number): Promise<void> {
  await waitFor(
    () =>
      p.primary.registry.list().filter((x) => x.state === "alive" && x.details?.tasks !== undefined)
        .length === n,
    `${n} nodes alive with their details`,
    10_000,
  );
}

function nodeId(p: TestPrimary, name: string): string {
  const node = p.primary.registry.list().find((n) => n.name === name);
  assert.ok(node, `node ${name}`);
  return node.id;
}

async function allItems(p: TestPrimary, id: number): Promise<StoredJobItem[]> {
  return p.primary.jobs.items(id, { limit: 1_000_000 });
}

function runsFile(t: TestContext): string {
  return join(scratchDir(t, "picluster-job-runs-"), "runs");
}

test("jobs - 1 000 items over 3 agents: each runs once and has exactly one result, no node past its slots; stored, announced and audited", async (t) => {
  const p = await startPrimary(t);
  const events = record(p);
  const runs = runsFile(t);
  // In this process (spawned agents would share the machine's node id): their task
  // processes are started from the primary's event loop too, which slows the items.
  const ids = [
    startAgent(t, p, "pi-a", {}, "pi4", tasksIni(runs, "0", 2)),
    startAgent(t, p, "pi-b", {}, "pi4", tasksIni(runs, "0", 4)),
    startAgent(t, p, "pi-c", {}, "pi4", tasksIni(runs, "0", 6)),
  ].map((a) => a.agent.id);
  await aliveWithDetails(p, 3);
  assert.equal(
    p.primary.registry.list().find((n) => n.name === "pi-c")?.details?.maxRunning,
    6,
    "the node says how many tasks it runs at once",
  );

  const started = performance.now();
  const job = await p.primary.jobs.submit({
    task: "mark",
    on: "all",
    items: { kind: "range", from: 1, to: 1_000 },
    args: { n: "{item}" },
    requestedBy: "test",
  });
  assert.equal(job.counts.total, 1_000);
  await deadline(p.primary.jobs.settled(job.id), 120_000, "the job finished");
  const seconds = (performance.now() - started) / 1_000;
  t.diagnostic(`1 000 items in ${seconds.toFixed(1)} s: ${Math.round(1_000 / seconds)} items/s`);

  const done = await p.primary.jobs.get(job.id);
  assert.equal(done?.status, "ok");
  assert.deepEqual(done?.counts, {
    total: 1_000,
    queued: 0,
    running: 0,
    ok: 1_000,
    failed: 0,
    cancelled: 0,
  });
  const items = await allItems(p, job.id);
  assert.equal(items.length, 1_000);
  const perNode = new Map<string | null, number>();
  for (const item of items) {
    assert.equal(item.state, "ok");
    assert.equal(item.output, `item ${item.value}\n`, "each item got its own argument");
    // Pull, not push: no node was handed more than it runs at once, or it would have
    // refused with E_BUSY and the item would have been handed out again.
    assert.equal(item.attempts, 1);
    perNode.set(item.nodeId, (perNode.get(item.nodeId) ?? 0) + 1);
  }
  t.diagnostic(`items per node: ${JSON.stringify(Object.fromEntries(perNode))}`);
  const mean = (xs: number[]) => Math.round(xs.reduce((a, b) => a + b, 0) / xs.length);
  t.diagnostic(
    `per item: ${mean(items.map((i) => i.durationMs ?? 0))} ms on the node, ${mean(items.map((i) => (i.finishedAt ?? 0) - (i.startedAt ?? 0)))} ms from claim to result`,
  );
  for (const id of ids) assert.ok((perNode.get(id) ?? 0) > 0, "every node took items");
  const counts = runCounts(runs);
  assert.equal(counts.size, 1_000);
  assert.ok(
    [...counts.values()].every((n) => n === 1),
    "no item ran twice",
  );

  // The machinery alone: an item the agent answers without a process.
  const quick = performance.now();
  const version = await p.primary.jobs.submit({
    task: "version",
    on: "all",
    items: { kind: "range", from: 1, to: 1_000 },
    requestedBy: "test",
  });
  await deadline(p.primary.jobs.settled(version.id), 60_000, "the version job finished");
  const quickSeconds = (performance.now() - quick) / 1_000;
  assert.equal((await p.primary.jobs.get(version.id))?.counts.ok, 1_000);
  t.diagnostic(
    `1 000 version items (no process) in ${quickSeconds.toFixed(2)} s: ${Math.round(1_000 / quickSeconds)} items/s`,
  );

  const mine = events.filter((e) => "jobId" in e && e.jobId === job.id);
  assert.equal(mine[0]?.kind, "job.started");
  const finished = mine.at(-1);
  assert.equal(finished?.kind, "job.finished");
  assert.ok(finished?.kind === "job.finished" && finished.ok === 1_000 && finished.status === "ok");
  const progress = mine.filter((e) => e.kind === "job.progress");
  assert.ok(progress.length >= 1);
  for (let i = 1; i < progress.length - 1; i++)
    assert.ok(
      (progress[i]?.at ?? 0) - (progress[i - 1]?.at ?? 0) >= 1_000,
      "progress at most once a second",
    );
  await waitFor(
    () => p.primary.store.events({ kind: "job.finished", limit: 5 }).length === 1,
    "job.finished stored",
    5_000,
  );
  assert.equal(p.primary.store.events({ kind: "job.progress", limit: 5 }).length, 0);
  const audit = (await auditLines(p)).filter((a) => a.job === job.id);
  assert.deepEqual(
    audit.map((a) => [a.event, a.by, a.task]),
    [
      ["job.started", "test", "mark"],
      ["job.finished", "test", "mark"],
    ],
  );
  assert.equal(audit[0]?.items, 1_000);
  assert.equal(audit[0]?.on, "all");
  assert.equal(audit[1]?.status, "ok");
  assert.equal(audit[1]?.ok, 1_000);
});

test("jobs - an agent killed mid-job: its items run again elsewhere and every item is recorded once", async (t) => {
  const p = await startPrimary(t);
  const runs = runsFile(t);
  startAgent(t, p, "pi-a", {}, "pi4", tasksIni(runs, "1"));
  startAgent(t, p, "pi-b", {}, "pi4", tasksIni(runs, "1"));
  const doomed = spawnAgent(t, p, "pi-doomed", tasksIni(runs, "1"));
  await aliveWithDetails(p, 3);
  const doomedId = nodeId(p, "pi-doomed");

  const job = await p.primary.jobs.submit({
    task: "mark",
    on: "all",
    items: { kind: "range", from: 1, to: 60 },
    args: { n: "{item}" },
    requestedBy: "test",
  });
  await waitFor(
    async () =>
      (await p.primary.jobs.items(job.id, { state: "running", limit: 100 })).some(
        (i) => i.nodeId === doomedId,
      ),
    "pi-doomed running items",
    10_000,
  );
  doomed.kill("SIGKILL");
  await deadline(p.primary.jobs.settled(job.id), 60_000, "the job finished");

  const done = await p.primary.jobs.get(job.id);
  assert.equal(done?.status, "ok");
  assert.equal(done?.counts.ok, 60);
  const items = await allItems(p, job.id);
  assert.equal(items.length, 60);
  assert.ok(items.every((i) => i.state === "ok" && i.output === `item ${i.value}\n`));
  // What pi-doomed had when it died was handed out again, once, and finished elsewhere.
  const again = items.filter((i) => i.attempts > 1);
  assert.ok(again.length > 0, "some items were handed out again");
  for (const item of again) {
    assert.notEqual(item.nodeId, doomedId, `item ${item.index} finished on another node`);
    assert.equal(item.attempts, 2);
    assert.equal(item.tries, 1, "the loss counted as one try");
  }
  t.diagnostic(`${again.length} items lost with pi-doomed ran again elsewhere`);
  // At least once: a lost item may have started on pi-doomed too; every other item started once.
  const counts = runCounts(runs);
  assert.equal(counts.size, 60);
  const lost = new Set(again.map((i) => Number(i.value)));
  for (const [n, times] of counts)
    assert.ok(times === 1 || (lost.has(n) && times === 2), `item ${n} started ${times} times`);
});

test("jobs - a selected node that does not allow the task is skipped and said so; the others run every item", async (t) => {
  const p = await startPrimary(t);
  const events = record(p);
  const runs = runsFile(t);
  startAgent(t, p, "pi-a", {}, "pi4", tasksIni(runs));
  startAgent(t, p, "pi-b", {}, "pi4", tasksIni(runs));
  startAgent(t, p, "pi-bare", {}, "pi4", "");
  await aliveWithDetails(p, 3);
  const bare = nodeId(p, "pi-bare");

  const job = await p.primary.jobs
    .submit({
      task: "mark",
      on: "all",
      items: { kind: "list", values: [{ n: 5 }, { n: 6 }, 7, "8"] },
      args: {},
      requestedBy: "test",
    })
    .catch((err: unknown) => err);
  // Scalars need a template: the job is refused before anything runs, naming the items.
  assert.ok(job instanceof JobRequestError);
  assert.equal(job.code, "E_BAD_ITEMS");
  assert.match(job.message, /item 2 \(7\): no value for argument "n"/);

  const ok = await p.primary.jobs.submit({
    task: "mark",
    on: "all",
    items: { kind: "list", values: [{ n: 5 }, { n: 6 }, { n: 7 }, { n: 8 }] },
    requestedBy: "test",
  });
  assert.deepEqual(ok.skipped, [
    { nodeId: bare, name: "pi-bare", reason: 'its config does not allow task "mark"' },
  ]);
  await deadline(p.primary.jobs.settled(ok.id), 30_000, "the job finished");
  const items = await allItems(p, ok.id);
  assert.deepEqual(
    items.map((i) => [i.state, i.output]),
    [
      ["ok", "item 5\n"],
      ["ok", "item 6\n"],
      ["ok", "item 7\n"],
      ["ok", "item 8\n"],
    ],
  );
  assert.ok(items.every((i) => i.nodeId !== bare));
  const skipped = events.filter((e) => e.kind === "job.node_skipped");
  assert.equal(skipped.length, 1);
  assert.ok(skipped[0]?.kind === "job.node_skipped" && skipped[0].nodeId === bare);
  await waitFor(
    () => p.primary.store.events({ kind: "job.node_skipped", node: bare, limit: 5 }).length === 1,
    "the skip stored among the node's events",
    5_000,
  );

  // Refused up front, each with its code: nothing allows it, a bad value, a bad option.
  const refusal = async (
    req: Partial<Parameters<typeof p.primary.jobs.submit>[0]>,
  ): Promise<[string, string]> => {
    try {
      await p.primary.jobs.submit({
        task: "mark",
        on: "all",
        items: { kind: "range", from: 1, to: 3 },
        args: { n: "{item}" },
        requestedBy: "test",
        ...req,
      });
    } catch (err) {
      if (err instanceof JobRequestError) return [err.code, err.message];
      throw err;
    }
    return assert.fail("accepted");
  };
  assert.deepEqual((await refusal({ on: "pi-bare" }))[0], "E_TASK_NOT_ALLOWED");
  const [code, message] = await refusal({ items: { kind: "range", from: -2, to: 0 } });
  assert.equal(code, "E_BAD_ITEMS");
  assert.match(message, /item 0 \(-2\): argument "n" = "-2": must not start with '-'/);
  assert.deepEqual((await refusal({ perNode: 0 }))[0], "E_BAD_OPTION");
  assert.deepEqual((await refusal({ on: "nobody" }))[0], "E_NO_SUCH_NODE");
});

test("jobs - cancel: no item is handed out any more, running ones are stopped on their nodes, the job ends cancelled", async (t) => {
  const p = await startPrimary(t);
  const events = record(p);
  const runs = runsFile(t);
  startAgent(t, p, "pi-a", { "tasks.max_running": "2" }, "pi4", tasksIni(runs));
  startAgent(t, p, "pi-b", { "tasks.max_running": "2" }, "pi4", tasksIni(runs));
  await aliveWithDetails(p, 2);
  const job = await p.primary.jobs.submit({
    task: "nap",
    on: "all",
    items: { kind: "range", from: 1, to: 20 },
    args: { seconds: "300" },
    perNode: 1,
    requestedBy: "test",
  });
  await waitFor(
    async () => (await p.primary.jobs.get(job.id))?.counts.running === 2,
    "one item running on each node (perNode 1)",
    10_000,
  );
  const cancelled = await p.primary.jobs.cancel(job.id, "alice");
  assert.equal(cancelled?.status, "cancelling");
  await deadline(p.primary.jobs.settled(job.id), 15_000, "the cancelled job ended");
  const done = await p.primary.jobs.get(job.id);
  assert.equal(done?.status, "cancelled");
  assert.deepEqual(done?.counts, {
    total: 20,
    queued: 0,
    running: 0,
    ok: 0,
    failed: 0,
    cancelled: 20,
  });
  const items = await allItems(p, job.id);
  const ran = items.filter((i) => i.attempts > 0);
  assert.equal(ran.length, 2, "nothing was handed out after the cancel");
  for (const item of ran) assert.match(item.error ?? "", /killed by SIG/);
  const end = events.find((e) => e.kind === "job.finished");
  assert.ok(end?.kind === "job.finished" && end.status === "cancelled" && end.cancelled === 20);
  assert.deepEqual(
    (await auditLines(p))
      .filter((a) => String(a.event).startsWith("job."))
      .map((a) => [a.event, a.by ?? null]),
    [
      ["job.started", "test"],
      ["job.cancel", "alice"],
      ["job.finished", "test"],
    ],
  );
});

test("jobs - a primary restarted mid-job resumes it: every item ends ok once, what was done is not run again", async (t) => {
  const p1 = await startPrimary(t);
  const runs = runsFile(t);
  const flags = { "agent.reconnect_max": "1s" };
  startAgent(t, p1, "pi-a", flags, "pi4", tasksIni(runs, "0.1"));
  startAgent(t, p1, "pi-b", flags, "pi4", tasksIni(runs, "0.1"));
  await aliveWithDetails(p1, 2);
  const job = await p1.primary.jobs.submit({
    task: "mark",
    on: "all",
    items: { kind: "range", from: 1, to: 80 },
    args: { n: "{item}" },
    requestedBy: "test",
  });
  await waitFor(
    async () => ((await p1.primary.jobs.get(job.id))?.counts.ok ?? 0) >= 10,
    "some items done",
    10_000,
  );
  await p1.close();
  // What the next primary will find, read from the file while no primary runs.
  const file = new Database(join(p1.dataDir, "picluster.db"), { readonly: true });
  const stateAt = (state: string) =>
    (
      file
        .prepare("SELECT idx FROM job_items WHERE job_id = ? AND state = ?")
        .all(job.id, state) as Array<{ idx: number }>
    ).map((r) => r.idx);
  const okBefore = stateAt("ok");
  const stopped = stateAt("queued").filter((i) => runCounts(runs).has(i + 1));
  assert.deepEqual(stateAt("running"), [], "a clean stop leaves no item running");
  file.close();
  assert.ok(okBefore.length >= 10);

  const p2 = await startPrimary(t, { "primary.port": String(p1.port) }, p1.dataDir);
  const resumed = p2.records.find((r) => r.msg === "job resumed");
  assert.equal(resumed?.job, job.id);
  assert.equal(resumed?.ok, okBefore.length);
  await deadline(p2.primary.jobs.settled(job.id), 60_000, "the resumed job finished");

  const done = await p2.primary.jobs.get(job.id);
  assert.equal(done?.status, "ok");
  assert.equal(done?.counts.ok, 80);
  // Each node's share counts what it did before the restart too.
  const shares = done?.nodes ?? [];
  assert.deepEqual(shares.map((n) => n.name).sort(), ["pi-a", "pi-b"]);
  assert.equal(
    shares.reduce((sum, n) => sum + n.ok, 0),
    80,
    `shares: ${JSON.stringify(shares)}`,
  );
  const items = await allItems(p2, job.id);
  assert.ok(items.every((i) => i.state === "ok" && i.output === `item ${i.value}\n`));
  assert.ok(
    items.every((i) => i.tries === 0),
    "the restart cost no item a try",
  );
  // Done before the restart: never run again. Stopped by it: run again (at least once).
  const counts = runCounts(runs);
  assert.equal(counts.size, 80);
  for (const index of okBefore) assert.equal(counts.get(index + 1), 1, `item ${index} ran once`);
  for (const index of stopped)
    assert.equal(counts.get(index + 1), 2, `item ${index}, stopped by the restart, ran again`);
  const doneBefore = okBefore.length;
  const twice = stopped.length;
  t.diagnostic(`${doneBefore} done before the restart; ${twice} were stopped by it and ran again`);

  // A primary that starts after the job ended reads the shares from the items.
  await p2.close();
  const p3 = await startPrimary(t, { "primary.port": String(p1.port) }, p1.dataDir);
  const later = await p3.primary.jobs.get(job.id);
  assert.deepEqual(
    later?.nodes?.map((n) => [n.nodeId, n.ok, n.failed, n.running]).sort(),
    shares.map((n) => [n.nodeId, n.ok, n.failed, 0]).sort(),
  );
});

/** What a scripted node does with the n-th task.run it is sent (from 1). */
type Reply =
  | { kind: "ok"; output: string }
  | { kind: "error"; code: string; message: string }
  /** Answer only when `release` resolves (the node holds the item meanwhile). */
  | { kind: "hold"; release: Promise<void>; output: string };

/**
 * A node that speaks the wire protocol by hand: it allows task `mark`,
 * runs `slots` at once, sends heartbeats until `silence()`, and answers
 * each task.run as `reply` says.
 */
async function scriptedNode(
  t: TestContext,
  p: TestPrimary,
  name: string,
  slots: number,
  reply: (n: number, args: Record<string, string>) => Reply,
): Promise<{ id: string; silence(): void; asked: number }> {
  const id = `scripted-${name}`;
  const peer = await ScriptedPeer.join(t, p, name, id);
  peer.send({
    v: 1,
    type: "details",
    ts: Date.now(),
    payload: {
      hostname: name,
      os: { name: "Debian", version: "12" },
      kernel: "6.1.0",
      arch: "arm64",
      cpu: { model: "Cortex-A72", cores: 4 },
      memory: { totalBytes: 4_000_000_000, swapBytes: 0 },
      disks: [],
      interfaces: [],
      agentVersion: "0.1.0-test",
      nodeVersion: process.version,
      maxRunning: slots,
      tasks: [
        {
          name: "mark",
          description: "",
          builtin: false,
          disruptive: false,
          args: [{ name: "n", type: "integer" }],
        },
      ],
    },
  });
  let beating = true;
  const beat = setInterval(() => {
    if (beating) peer.send({ v: 1, type: "heartbeat", ts: Date.now(), payload: { dropped: 0 } });
  }, 100);
  const state = { id, asked: 0, silence: () => (beating = false) };
  let stopped = false;
  t.after(() => {
    stopped = true;
    clearInterval(beat);
  });
  const answer = (re: number, r: Exclude<Reply, { kind: "hold" }>) => {
    const base = { v: 1, type: "task.run", ts: Date.now(), re } as const;
    peer.writeRaw(
      `${JSON.stringify(
        r.kind === "ok"
          ? {
              ...base,
              payload: { exitCode: 0, signal: null, durationMs: 1, truncated: false },
            }
          : { ...base, error: { code: r.code, message: r.message } },
      )}\n`,
    );
  };
  void (async () => {
    while (!stopped && !peer.closed) {
      let req: Awaited<ReturnType<ScriptedPeer["next"]>>;
      try {
        req = await peer.next("task.run", 200);
      } catch {
        continue; // Nothing asked within 200 ms (or closed: the loop ends).
      }
      // A task.run request as the primary sends it (its schema checked on our side of the wire).
      const { id: re, payload } = req as unknown as {
        id: number;
        payload: { args: Record<string, string> };
      };
      const args = payload.args;
      const r = reply(++state.asked, args);
      const out = (output: string) =>
        peer.send({
          v: 1,
          type: "task.output",
          ts: Date.now(),
          payload: { run: re, stream: "stdout", data: output },
        });
      if (r.kind === "hold") {
        void r.release.then(() => {
          out(r.output);
          answer(re, { kind: "ok", output: r.output });
        });
      } else {
        if (r.kind === "ok") out(r.output);
        answer(re, r);
      }
    }
  })();
  await waitFor(
    () => p.primary.registry.get(id)?.details?.tasks !== undefined,
    `${name} known with its tasks`,
    5_000,
  );
  return state;
}

test("jobs - a busy node's refusal and a node that turns out not to allow the task cost no item a try", async (t) => {
  const p = await startPrimary(t);
  const events = record(p);
  const busy = await scriptedNode(t, p, "pi-busy", 1, (n, args) =>
    n === 1
      ? { kind: "error", code: "E_BUSY", message: "this node already runs 1 tasks" }
      : { kind: "ok", output: `busy did ${args.n}\n` },
  );
  const refuser = await scriptedNode(t, p, "pi-refuser", 1, () => ({
    kind: "error",
    code: "E_NOT_ALLOWED",
    message: 'task "mark" is not allowed on this node',
  }));
  const job = await p.primary.jobs.submit({
    task: "mark",
    on: "all",
    items: { kind: "range", from: 1, to: 6 },
    args: { n: "{item}" },
    retries: 0,
    requestedBy: "test",
  });
  await deadline(p.primary.jobs.settled(job.id), 20_000, "the job finished");
  const items = await allItems(p, job.id);
  // retries = 0: had a refusal cost a try, an item would have failed.
  assert.deepEqual(
    items.map((i) => [i.state, i.nodeId, i.tries, i.output]),
    [1, 2, 3, 4, 5, 6].map((n) => ["ok", busy.id, 0, `busy did ${n}\n`]),
  );
  assert.ok(busy.asked >= 7, "the busy node was asked again after its refusal");
  assert.equal(refuser.asked, 1, "the refusing node was asked once, then skipped");
  const skipped = events.find((e) => e.kind === "job.node_skipped");
  assert.ok(skipped?.kind === "job.node_skipped" && skipped.nodeId === refuser.id);
  assert.match(skipped.reason, /E_NOT_ALLOWED/);
});

test("jobs - a node gone silent: its item is taken back when it is down and counted as a try; its late success still counts while the item is not done", async (t) => {
  const p = await startPrimary(t, {
    "primary.heartbeat_interval": "100ms",
    "primary.suspect_after": "300ms",
    "primary.dead_after": "600ms",
  });
  let releaseSlow = () => {};
  const slowDone = new Promise<void>((resolve) => {
    releaseSlow = resolve;
  });
  let releaseLate = () => {};
  const late = new Promise<void>((resolve) => {
    releaseLate = resolve;
  });
  // Two nodes, one slot each: pi-slow holds its item until told; pi-silent goes quiet with its own.
  const slow = await scriptedNode(t, p, "pi-slow", 1, (_n, args) =>
    args.n === "1" || args.n === "2"
      ? { kind: "hold", release: slowDone, output: `slow did ${args.n}\n` }
      : { kind: "ok", output: `slow did ${args.n}\n` },
  );
  const silent = await scriptedNode(t, p, "pi-silent", 1, (_n, args) => ({
    kind: "hold",
    release: late,
    output: `silent did ${args.n}\n`,
  }));
  const job = await p.primary.jobs.submit({
    task: "mark",
    on: "all",
    items: { kind: "range", from: 1, to: 2 },
    args: { n: "{item}" },
    requestedBy: "test",
  });
  await waitFor(() => slow.asked === 1 && silent.asked === 1, "one item on each node", 5_000);
  const held = (await allItems(p, job.id)).find((i) => i.nodeId === silent.id);
  assert.ok(held);
  silent.silence();
  await waitFor(() => p.primary.registry.get(silent.id)?.state === "down", "pi-silent down", 5_000);
  await waitFor(
    async () => (await allItems(p, job.id))[held.index]?.state === "queued",
    "its item queued again",
    5_000,
  );
  const requeued = (await allItems(p, job.id))[held.index];
  assert.equal(requeued?.tries, 1);
  assert.match(requeued?.error ?? "", /pi-silent went down/);
  // The node was only slow: its answer comes while the item waits for pi-slow's slot.
  releaseLate();
  await waitFor(
    async () => (await allItems(p, job.id))[held.index]?.state === "ok",
    "the late success recorded",
    5_000,
  );
  releaseSlow();
  await deadline(p.primary.jobs.settled(job.id), 10_000, "the job finished");
  const items = await allItems(p, job.id);
  const kept = items[held.index];
  assert.equal(kept?.nodeId, silent.id);
  assert.equal(kept?.late, true);
  assert.equal(kept?.output, `silent did ${held.value}\n`);
  assert.equal(slow.asked, 1, "the item was not run again once recorded");
  assert.deepEqual(
    items.map((i) => i.state),
    ["ok", "ok"],
  );
});

test("jobs - an item killed at its timeout is queued again as a try and fails past its retries", async (t) => {
  const p = await startPrimary(t);
  const runs = runsFile(t);
  startAgent(t, p, "pi-a", {}, "pi4", tasksIni(runs, "30"));
  await aliveWithDetails(p, 1);
  const job = await p.primary.jobs.submit({
    task: "mark",
    on: "all",
    items: { kind: "range", from: 1, to: 1 },
    args: { n: "{item}" },
    timeoutMs: 300,
    retries: 1,
    requestedBy: "test",
  });
  await deadline(p.primary.jobs.settled(job.id), 20_000, "the job finished");
  const [item] = await allItems(p, job.id);
  assert.equal(item?.state, "failed");
  assert.equal(item?.attempts, 2);
  assert.equal(item?.tries, 2);
  assert.match(item?.error ?? "", /timed out after \d+ ms and was killed \(tried 2 times\)/);
  assert.equal((await p.primary.jobs.get(job.id))?.status, "failed");
  assert.equal(runCounts(runs).get(1), 2);
});

test("jobs - a node that joins the selection while the job runs takes items too", async (t) => {
  const p = await startPrimary(t);
  const runs = runsFile(t);
  const first = startAgent(
    t,
    p,
    "pi-a",
    { "node.labels": "role=worker" },
    "pi4",
    tasksIni(runs, "0.3"),
  );
  await aliveWithDetails(p, 1);
  const job = await p.primary.jobs.submit({
    task: "mark",
    on: "role=worker",
    items: { kind: "range", from: 1, to: 40 },
    args: { n: "{item}" },
    requestedBy: "test",
  });
  await waitFor(
    async () => ((await p.primary.jobs.get(job.id))?.counts.ok ?? 0) > 0,
    "pi-a under way",
    10_000,
  );
  const late = startAgent(
    t,
    p,
    "pi-late",
    { "node.labels": "role=worker" },
    "pi4",
    tasksIni(runs, "0.3"),
  );
  await deadline(p.primary.jobs.settled(job.id), 60_000, "the job finished");
  const items = await allItems(p, job.id);
  assert.ok(items.every((i) => i.state === "ok"));
  const byLate = items.filter((i) => i.nodeId === late.agent.id).length;
  assert.ok(byLate > 0, "the node that joined took items");
  assert.ok(items.some((i) => i.nodeId === first.agent.id));
  t.diagnostic(`pi-late took ${byLate} of 40 items`);
});
