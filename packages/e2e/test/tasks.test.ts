import assert from "node:assert/strict";
import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { processAlive, waitFor } from "@picluster/common/testing";
import { type ClusterEvent, RequestError, TaskRequestError } from "@picluster/primary";
import {
  auditLines,
  httpPort,
  scratchDir,
  spawnAgent,
  startAgent,
  startPrimary,
  type TestPrimary,
} from "./support/cluster.js";

const TASKS_INI = [
  "[task.hello]",
  "command = /usr/bin/printf '%%s from the node' {greeting}",
  "arg.greeting = string [a-z]{1,16}",
  "[task.nap]",
  "command = /bin/sleep {seconds}",
  "arg.seconds = integer",
  "[task.fail]",
  "command = /bin/sh -c 'echo broken >&2; exit 3'",
  "",
].join("\n");

/** Every cluster event from now on. */
function record(p: TestPrimary): ClusterEvent[] {
  const seen: ClusterEvent[] = [];
  p.primary.events.on((e) => seen.push(e));
  return seen;
}

async function aliveNodes(p: TestPrimary, n: number): Promise<void> {
  await waitFor(
    () =>
      p.primary.registry.list().filter((x) => x.state === "alive" && x.details?.tasks !== undefined)
        .length === n,
    `${n} nodes alive with their details`,
    10_000,
  );
}

test("tasks - a run reaches every selected node; output, results and the run are stored, announced and audited; a node not connected is skipped at once", async (t) => {
  const p = await startPrimary(t);
  const events = record(p);
  startAgent(t, p, "pi-a", {}, "pi4", TASKS_INI);
  startAgent(t, p, "pi-b", {}, "pi4", TASKS_INI);
  const gone = startAgent(t, p, "pi-c", {}, "pi4", TASKS_INI);
  await aliveNodes(p, 3);
  await gone.stop();
  await waitFor(
    () => p.primary.registry.list().some((n) => n.state === "left"),
    "pi-c left",
    5_000,
  );

  const started = performance.now();
  const run = p.primary.tasks.start({
    task: "hello",
    on: "all",
    args: { greeting: "hi" },
    requestedBy: "test",
  });
  assert.deepEqual(
    run.nodes.map((n) => n.name),
    ["pi-a", "pi-b", "pi-c"],
  );
  await p.primary.tasks.settled(run.id);
  const done = p.primary.tasks.get(run.id);
  assert.equal(done?.status, "ok");
  const byName = Object.fromEntries((done?.nodes ?? []).map((n) => [n.name, n]));
  assert.equal(byName["pi-a"]?.status, "ok");
  assert.equal(byName["pi-a"]?.output, "hi from the node");
  assert.equal(byName["pi-b"]?.exitCode, 0);
  assert.equal(byName["pi-c"]?.status, "skipped");
  assert.match(byName["pi-c"]?.error ?? "", /not connected/);
  assert.ok(performance.now() - started < 5_000, "nobody waited on the node that is gone");

  // Stored: the same from the store as from memory.
  const stored = p.primary.store.taskRun(run.id);
  assert.equal(stored?.status, "ok");
  assert.equal(stored?.nodes.find((n) => n.name === "pi-a")?.output, "hi from the node");
  // Announced: started, one result per node, finished; output streamed.
  const kinds = events.filter((e) => e.kind.startsWith("task.")).map((e) => e.kind);
  assert.equal(kinds[0], "task.started");
  assert.equal(kinds.at(-1), "task.finished");
  assert.equal(kinds.filter((k) => k === "task.node").length, 3);
  assert.ok(kinds.includes("task.output"));
  // Audited: who, what, where, outcome.
  const audit = await auditLines(p);
  assert.deepEqual(
    audit.map((a) => a.event),
    ["task.started", "task.finished"],
  );
  assert.equal(audit[0]?.by, "test");
  assert.deepEqual(audit[0]?.nodes, ["pi-a", "pi-b", "pi-c"]);
  assert.equal(audit[1]?.status, "ok");
});

test("tasks - the agent refuses what its config does not allow, even when the primary asks for it directly", async (t) => {
  const p = await startPrimary(t);
  const a = startAgent(t, p, "pi-a", {}, "pi4", TASKS_INI);
  await aliveNodes(p, 1);
  const session = p.primary.sessions.get(a.agent.id);
  assert.ok(session);
  for (const [task, args, code] of [
    ["reboot", {}, "E_NOT_ALLOWED"],
    ["rm", { path: "/" }, "E_NOT_ALLOWED"],
    ["hello", { greeting: "$(id)" }, "E_BAD_ARGS"],
    ["hello", { greeting: "hi", extra: "x" }, "E_BAD_ARGS"],
  ] as const) {
    await assert.rejects(
      session.request("task.run", { task, args }, 5_000),
      (err: unknown) => err instanceof RequestError && err.code === code,
      `${task} ${JSON.stringify(args)}`,
    );
  }
  // The refusal says what to change, on that node.
  await assert.rejects(session.request("task.run", { task: "reboot", args: {} }, 5_000), {
    message: /: set `\[tasks\] reboot = on` in this node's picluster\.ini/,
  });
  // Through the fan-out the primary knows from the node's catalogue: refused
  // before anything is sent.
  assert.throws(
    () => p.primary.tasks.start({ task: "reboot", on: "pi-a", args: {}, requestedBy: "test" }),
    (err: unknown) => err instanceof TaskRequestError && err.code === "E_TASK_NOT_ALLOWED",
  );
  // A failing task is failed, with its exit code and output kept.
  const failing = p.primary.tasks.start({
    task: "fail",
    on: "pi-a",
    args: {},
    requestedBy: "test",
  });
  await p.primary.tasks.settled(failing.id);
  const failed = p.primary.tasks.get(failing.id);
  assert.equal(failed?.status, "failed");
  assert.equal(failed?.nodes[0]?.exitCode, 3);
  assert.equal(failed?.nodes[0]?.output, "broken\n");
});

test("tasks - a node that dies mid-task is reported failed while the others finish and are stored", async (t) => {
  const p = await startPrimary(t);
  startAgent(t, p, "pi-a", {}, "pi4", TASKS_INI);
  startAgent(t, p, "pi-b", {}, "pi4", TASKS_INI);
  const doomed = spawnAgent(t, p, "pi-doomed", TASKS_INI);
  await aliveNodes(p, 3);
  const run = p.primary.tasks.start({
    task: "nap",
    on: "all",
    args: { seconds: "2" },
    requestedBy: "test",
  });
  await waitFor(
    () => p.primary.tasks.get(run.id)?.nodes.every((n) => n.status === "running") === true,
    "all three running",
    5_000,
  );
  doomed.kill("SIGKILL");
  await p.primary.tasks.settled(run.id);
  const stored = p.primary.store.taskRun(run.id);
  const status = Object.fromEntries((stored?.nodes ?? []).map((n) => [n.name, n.status]));
  assert.deepEqual(status, { "pi-a": "ok", "pi-b": "ok", "pi-doomed": "failed" });
  assert.match(stored?.nodes.find((n) => n.name === "pi-doomed")?.error ?? "", /disconnected/);
  assert.equal(stored?.status, "failed");
});

test("tasks - the API starts, lists, shows and cancels runs; a cancel stops the run", async (t) => {
  const p = await startPrimary(t, { "http.token": "tok-123" });
  startAgent(t, p, "pi-a", {}, "pi4", TASKS_INI);
  await aliveNodes(p, 1);
  const base = `http://127.0.0.1:${httpPort(p)}`;
  const call = (method: string, path: string, body?: unknown, token: string | null = "tok-123") =>
    fetch(`${base}${path}`, {
      method,
      headers: {
        ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        "x-picluster-user": "alice@laptop",
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  assert.equal((await call("POST", "/api/tasks", { task: "hello", on: "all" }, null)).status, 401);
  const bad = await call("POST", "/api/tasks", { task: "hello", on: "nobody" });
  assert.equal(bad.status, 404);
  assert.match(
    ((await bad.json()) as { error: { message: string } }).error.message,
    /no node called "nobody"/,
  );

  const res = await call("POST", "/api/tasks", {
    task: "nap",
    on: "pi-a",
    args: { seconds: "300" },
  });
  assert.equal(res.status, 202);
  const { id } = (await res.json()) as { id: number };
  await waitFor(() => p.primary.tasks.get(id)?.nodes[0]?.status === "running", "running", 5_000);
  const list = (await (await call("GET", "/api/tasks")).json()) as {
    runs: Array<{ id: number; status: string; counts: Record<string, number> }>;
  };
  assert.equal(list.runs[0]?.id, id);
  assert.equal(list.runs[0]?.status, "running");
  assert.deepEqual(list.runs[0]?.counts, { running: 1 });
  // A node's runs carry that node's result; by name or id; an unknown node is 404.
  const mine = (await (await call("GET", "/api/tasks?node=pi-a&limit=5")).json()) as {
    runs: Array<{ id: number; nodes: Array<{ name: string; status: string }> }>;
  };
  assert.equal(mine.runs[0]?.id, id);
  assert.deepEqual(
    mine.runs[0]?.nodes.map((n) => [n.name, n.status]),
    [["pi-a", "running"]],
  );
  assert.equal((await call("GET", "/api/tasks?node=nobody")).status, 404);
  // The catalog: every task the nodes allow, with where.
  const catalog = (await (await call("GET", "/api/tasks/catalog", undefined, null)).json()) as {
    tasks: Array<{ name: string; nodes: string[]; disruptive: boolean; args: unknown[] }>;
  };
  const nap = catalog.tasks.find((x) => x.name === "nap");
  assert.deepEqual(nap?.nodes, ["pi-a"]);
  assert.equal(nap?.args.length, 1);
  assert.equal(
    catalog.tasks.find((x) => x.name === "reboot"),
    undefined,
    "reboot is off",
  );

  const cancel = await call("DELETE", `/api/tasks/${id}`);
  assert.equal(cancel.status, 200);
  await p.primary.tasks.settled(id);
  const shown = (await (await call("GET", `/api/tasks/${id}`)).json()) as {
    status: string;
    requestedBy: string;
    nodes: Array<{ status: string }>;
  };
  assert.equal(shown.status, "cancelled");
  assert.equal(shown.nodes[0]?.status, "cancelled");
  assert.equal(shown.requestedBy, "api-token (alice@laptop)");
  assert.equal((await call("GET", "/api/tasks/999999")).status, 404);
  const ended = (await (await call("GET", "/api/tasks")).json()) as {
    runs: Array<{ counts: Record<string, number> }>;
  };
  assert.deepEqual(ended.runs[0]?.counts, { cancelled: 1 }, "counts from the store once ended");
});

test("tasks - a cancelled task leaves no process behind on the node", async (t) => {
  const p = await startPrimary(t);
  const dir = scratchDir(t, "picluster-spawner-");
  const pidFile = join(dir, "grandchild.pid");
  startAgent(
    t,
    p,
    "pi-a",
    {},
    "pi4",
    [
      "[task.spawner]",
      "command = /bin/sh -c 'sleep 300 & echo $! > \"$PIDFILE\"; wait'",
      `env = PIDFILE=${pidFile}`,
      "",
    ].join("\n"),
  );
  await aliveNodes(p, 1);
  const run = p.primary.tasks.start({ task: "spawner", on: "pi-a", args: {}, requestedBy: "test" });
  await waitFor(
    () => existsSync(pidFile) && readFileSync(pidFile, "utf8").trim() !== "",
    "grandchild started",
    5_000,
  );
  const grandchild = Number(readFileSync(pidFile, "utf8"));
  assert.ok(processAlive(grandchild));
  p.primary.tasks.cancel(run.id, "test");
  await p.primary.tasks.settled(run.id);
  assert.equal(p.primary.tasks.get(run.id)?.nodes[0]?.status, "cancelled");
  await waitFor(() => !processAlive(grandchild), "grandchild gone", 5_000);
});

test("tasks - updates.check counts upgradable packages and the node's details carry the count", async (t) => {
  const p = await startPrimary(t);
  // apt-get's simulation output, canned: two packages to upgrade.
  startAgent(
    t,
    p,
    "pi-a",
    {},
    "pi4",
    [
      "[task.updates.check]",
      "command = /usr/bin/printf 'Inst libc6 [2.36-9] (2.36-9+deb12u4 Debian:12.5/stable [arm64])\\nInst tzdata [2024a-0] (2024a-0+deb12u1 Debian:12.5/stable [all])\\nConf libc6 (2.36-9+deb12u4)\\n'",
      "",
    ].join("\n"),
  );
  await aliveNodes(p, 1);
  const run = p.primary.tasks.start({
    task: "updates.check",
    on: "all",
    args: {},
    requestedBy: "test",
  });
  await p.primary.tasks.settled(run.id);
  assert.equal(p.primary.tasks.get(run.id)?.nodes[0]?.output, "2 packages can be upgraded\n");
  await waitFor(
    () => p.primary.registry.list()[0]?.details?.updates?.available === 2,
    "the count in the node's details",
    5_000,
  );
});

test("tasks - reboot answers first, then the node says bye and shows as left, not down", async (t) => {
  const p = await startPrimary(t);
  const dir = scratchDir(t, "picluster-reboot-");
  const marker = join(dir, "rebooted");
  startAgent(
    t,
    p,
    "pi-a",
    {},
    "pi4",
    ["[tasks]", "reboot = on", "[task.reboot]", `command = /usr/bin/touch ${marker}`, ""].join(
      "\n",
    ),
  );
  await aliveNodes(p, 1);
  const run = p.primary.tasks.start({
    task: "reboot",
    on: "all",
    args: {},
    requestedBy: "test",
    waitAlive: false,
  });
  await p.primary.tasks.settled(run.id);
  assert.equal(p.primary.tasks.get(run.id)?.nodes[0]?.status, "ok");
  await waitFor(() => p.primary.registry.list()[0]?.state === "left", "node left", 5_000);
  assert.equal(p.primary.registry.list()[0]?.stateReason, "node reboot");
  await waitFor(() => existsSync(marker), "the reboot command ran after the bye", 5_000);
});

test("tasks - a node's log: the last lines, and a follow that streams new lines across a rotation until the client leaves", async (t) => {
  const p = await startPrimary(t, { "http.token": "tok" });
  const dir = scratchDir(t, "picluster-agent-log-");
  const logFile = join(dir, "agent.log");
  writeFileSync(logFile, "one\ntwo\nthree\n");
  const a = startAgent(t, p, "pi-a", {}, "pi4", undefined, logFile);
  await aliveNodes(p, 1);
  const base = `http://127.0.0.1:${httpPort(p)}/api/nodes/pi-a/logs`;
  const auth = { authorization: "Bearer tok" };
  assert.equal((await fetch(`${base}?lines=2`)).status, 401, "a node's log needs the token");
  assert.deepEqual(await (await fetch(`${base}?lines=2`, { headers: auth })).json(), {
    lines: ["two", "three"],
  });

  const ac = new AbortController();
  const res = await fetch(`${base}?lines=1&follow=true`, { signal: ac.signal, headers: auth });
  assert.equal(res.headers.get("content-type"), "text/plain; charset=utf-8");
  let text = "";
  const reading = (async () => {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body ?? []) text += decoder.decode(chunk as Uint8Array);
    } catch {
      // Aborted by the test.
    }
  })();
  await waitFor(() => text === "three\n", "the last line first", 5_000);
  appendFileSync(logFile, "four\n");
  await waitFor(() => text === "three\nfour\n", "a new line", 5_000);
  renameSync(logFile, `${logFile}.1`);
  writeFileSync(logFile, "after rotation\n");
  await waitFor(() => text.endsWith("four\nafter rotation\n"), "the new file", 5_000);
  assert.equal(a.agent.link.follows, 1);
  ac.abort();
  await reading;
  await waitFor(() => a.agent.link.follows === 0, "the follow ended on the node", 5_000);
});
