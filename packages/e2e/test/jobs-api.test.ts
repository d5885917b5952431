/**
 * Jobs through the HTTP API and the `picluster job …` commands: a real
 * primary, real agents running a real task, the CLI as a subprocess.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { StoredJob } from "@picluster/common";
import { waitFor } from "@picluster/common/testing";
import {
  type CliRun,
  httpPort,
  runCli,
  startAgent,
  startPrimary,
  type TestContext,
  type TestPrimary,
} from "./support/cluster.js";

const TOKEN = "jobs-api-token";

function cli(t: TestContext, p: TestPrimary, args: string[], stdin?: string): Promise<CliRun> {
  return runCli(t, args, {
    port: httpPort(p),
    token: TOKEN,
    timeoutMs: 30_000,
    ...(stdin === undefined ? {} : { stdin }),
  });
}

async function api(
  p: TestPrimary,
  method: string,
  path: string,
  body?: unknown,
  token: string | null = TOKEN,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${httpPort(p)}${path}`, {
    method,
    headers: {
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const TASKS = [
  "[tasks]",
  "max_running = 2",
  "[task.square]",
  "command = /bin/sh -c 'echo $(($0 * $0))' {n}",
  "arg.n = integer",
  "[task.nap]",
  "command = /bin/sleep {seconds}",
  "arg.seconds = integer",
  "",
].join("\n");

async function cluster(t: TestContext): Promise<TestPrimary> {
  const p = await startPrimary(t, { "http.token": TOKEN });
  startAgent(t, p, "pi-a", {}, "pi4", TASKS);
  startAgent(t, p, "pi-b", {}, "pi4", TASKS);
  await waitFor(
    () =>
      p.primary.registry.list().filter((n) => n.state === "alive" && n.details?.tasks !== undefined)
        .length === 2,
    "two agents alive with their tasks",
    10_000,
  );
  return p;
}

test("jobs api - `job run` follows a range to the end; show, results (json and csv) and jobs tell the same story", async (t) => {
  const p = await cluster(t);
  const run = await cli(t, p, [
    "job",
    "run",
    "square",
    "--range",
    "1..40",
    "--arg",
    "n={item}",
    "--json",
  ]);
  assert.equal(run.status, 0, run.err);
  const done = JSON.parse(run.out) as StoredJob & { counts: { done: number } };
  assert.equal(done.status, "ok");
  assert.equal(done.counts.done, 40);
  assert.equal(done.counts.total, 40);

  const show = JSON.parse((await cli(t, p, ["job", "show", String(done.id), "--json"])).out) as {
    counts: Record<string, number>;
  };
  for (const k of ["queued", "running", "done", "failed"])
    assert.equal(typeof show.counts[k], "number", k);
  assert.deepEqual([show.counts.done, show.counts.failed, show.counts.queued], [40, 0, 0]);
  // Each node's share, kept after the end.
  const shares = (show as unknown as { nodes: Array<{ name: string; ok: number }> }).nodes;
  assert.deepEqual(shares.map((n) => n.name).sort(), ["pi-a", "pi-b"]);
  assert.equal(
    shares.reduce((sum, n) => sum + n.ok, 0),
    40,
  );

  // Without --json: the summary and a line per node.
  const human = await cli(t, p, ["job", "run", "square", "--range", "1..8", "--arg", "n={item}"]);
  assert.equal(human.status, 0, human.err);
  assert.match(
    human.out,
    /^job \d+: square on all — ok in \d+s: 8 done, 0 failed, 0 cancelled of 8\n/,
  );
  assert.match(human.out, /^NODE +DONE +FAILED\npi-[ab] +\d+ +0\n/m);

  const lines = (await cli(t, p, ["job", "results", String(done.id), "--json"])).out
    .trim()
    .split("\n")
    .map(
      (l) =>
        JSON.parse(l) as {
          item: number;
          node: string;
          ok: boolean;
          exitCode: number;
          output: string;
          durationMs: number;
        },
    );
  assert.equal(lines.length, 40);
  assert.deepEqual(
    lines.map((l) => l.item),
    Array.from({ length: 40 }, (_, i) => i + 1),
  );
  for (const l of lines) {
    assert.equal(l.output.trim(), String(l.item * l.item), `item ${l.item}`);
    assert.ok(l.ok && l.exitCode === 0 && typeof l.durationMs === "number");
    assert.ok(["pi-a", "pi-b"].includes(l.node), l.node);
  }
  // A record per item; an output with a newline is quoted, as CSV has it.
  const csv = (await cli(t, p, ["job", "results", String(done.id), "--csv"])).out;
  const records = csv.trimEnd().split(/\n(?=\d+,|item,)/);
  assert.equal(records[0], "item,node,ok,exit_code,duration_ms,output");
  assert.equal(records.length, 41);
  assert.match(records[7] ?? "", /^7,pi-[ab],true,0,\d+,"49\n"$/);

  const jobs = JSON.parse((await cli(t, p, ["jobs", "--json"])).out) as StoredJob[];
  assert.deepEqual(
    jobs.map((j) => j.status),
    ["ok", "ok"],
  );
  const listed = await cli(t, p, ["jobs"]);
  assert.match(listed.out, new RegExp(`^${done.id} +square +all +ok +40 +0 +40 `, "m"));
});

test("jobs api - items from stdin, --detach, cancel, the stream's progress, and refusals that name the field", async (t) => {
  const p = await cluster(t);
  // The stream tells progress as it happens (not stored, so only live).
  const ctrl = new AbortController();
  t.after(() => ctrl.abort());
  const stream = await fetch(`http://127.0.0.1:${httpPort(p)}/api/stream`, { signal: ctrl.signal });
  let text = "";
  const reading = (async () => {
    const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) return;
      text += decoder.decode(value);
    }
  })();

  const detached = await cli(
    t,
    p,
    ["job", "run", "nap", "--arg", "seconds={item}", "--detach", "--json"],
    "30\n30\n30\n30\n30\n30\n30\n30\n",
  );
  assert.equal(detached.status, 0, detached.err);
  const { id } = JSON.parse(detached.out) as { id: number };
  await waitFor(
    async () =>
      ((await api(p, "GET", `/api/jobs/${id}`)).body.counts as { running: number }).running === 4,
    "4 items running (2 slots on each of 2 nodes)",
    10_000,
  );

  const cancel = await cli(t, p, ["job", "cancel", String(id), "--json"]);
  assert.equal(cancel.status, 0, cancel.err);
  await waitFor(
    async () => (await api(p, "GET", `/api/jobs/${id}`)).body.status === "cancelled",
    "cancelled",
    10_000,
  );
  // Its last counts went out on the stream as the job ended.
  await waitFor(() => text.includes("event: job.progress"), "job.progress on the stream", 5_000);
  assert.match(
    text,
    new RegExp(`event: job\\.progress\\ndata: \\{[^\\n]*"jobId":${id},[^\\n]*"cancelled":8`),
  );
  const again = await api(p, "DELETE", `/api/jobs/${id}`);
  assert.equal(again.status, 409);
  assert.equal((again.body.error as { code: string }).code, "E_FINISHED");

  // Refusals: no token, bad items, a task nobody allows, an unknown job.
  const body = {
    task: "square",
    on: "all",
    items: { kind: "range", from: 1, to: 3 },
    args: { n: "{item}" },
  };
  assert.equal((await api(p, "POST", "/api/jobs", body, null)).status, 401);
  const badItems = await api(p, "POST", "/api/jobs", {
    ...body,
    items: { kind: "range", from: 5, to: 1 },
  });
  assert.equal(badItems.status, 400);
  assert.deepEqual(
    [
      (badItems.body.error as { code: string }).code,
      (badItems.body.error as { field: string }).field,
    ],
    ["E_BAD_ITEMS", "items"],
  );
  const notAllowed = await api(p, "POST", "/api/jobs", { ...body, task: "reboot" });
  assert.equal(notAllowed.status, 400);
  assert.equal((notAllowed.body.error as { code: string }).code, "E_TASK_NOT_ALLOWED");
  assert.equal((await api(p, "GET", "/api/jobs/9999")).status, 404);
  const badRange = await cli(t, p, ["job", "run", "square", "--range", "1-3"]);
  assert.equal(badRange.status, 1);
  assert.match(badRange.err, /--range 1-3: expected FROM\.\.TO/);
  const badLine = await cli(t, p, ["job", "run", "square", "--arg", "n={item}"], "1\nnot json\n");
  assert.match(badLine.err, /stdin:2: not a JSON value/);

  // Without the token, results say how items ended but not what they printed.
  const run = await api(p, "POST", "/api/jobs", body);
  assert.equal(run.status, 202);
  const jobId = run.body.id as number;
  await waitFor(
    async () => (await api(p, "GET", `/api/jobs/${jobId}`)).body.status === "ok",
    "job ok",
    10_000,
  );
  const open = await api(p, "GET", `/api/jobs/${jobId}/results`, undefined, null);
  const items = open.body.items as Array<{ state: string; output: string }>;
  assert.deepEqual(
    items.map((i) => [i.state, i.output]),
    [
      ["ok", ""],
      ["ok", ""],
      ["ok", ""],
    ],
  );
  assert.equal(open.body.redacted, true);
  const full = await api(p, "GET", `/api/jobs/${jobId}/results`);
  assert.deepEqual(
    (full.body.items as Array<{ output: string }>).map((i) => i.output),
    ["1\n", "4\n", "9\n"],
  );
  ctrl.abort();
  await reading;
});
