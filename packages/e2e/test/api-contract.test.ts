/**
 * The API contract: every read route answers by the schema in
 * common/src/api/nodes.ts, and the schema drops nothing the route built.
 * fastify serialises by the response schema, so a field the schema does not
 * list would silently vanish, and a value of another type (a fraction where
 * the schema says integer) would be altered: both fail here. Real agents and
 * a real tutorial node (the Python secondary) on a real primary.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import {
  AlertsAnswerSchema,
  ClusterSchema,
  ErrorBodySchema,
  EventListSchema,
  JobListSchema,
  JobResultsSchema,
  NodeDetailSchema,
  NodeListSchema,
  NodeSummaryListSchema,
  SeriesSchema,
  StoredJobSchema,
  StoredTaskRunSchema,
  TaskRunListSchema,
} from "@picluster/common/schema";
import { waitFor } from "@picluster/common/testing";
import { nodeSummary, nodeView } from "@picluster/primary";
import type { TSchema } from "typebox";
import { Value } from "typebox/value";
import { httpPort, startAgent, startPrimary, type TestPrimary } from "./support/cluster.js";

const CLIENT = new URL("../../test/support/tutorial_secondary.py", import.meta.url).pathname;
const PYTHON = process.env.PYTHON ?? "python3";

/** Every key path in a JSON value (array items under `[]`). */
function keyPaths(value: unknown, at = "", out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const v of value) keyPaths(v, `${at}[]`, out);
  else if (value !== null && typeof value === "object")
    for (const [k, v] of Object.entries(value)) {
      out.add(`${at}.${k}`);
      keyPaths(v, `${at}.${k}`, out);
    }
  return out;
}

function conforms(schema: TSchema, value: unknown, what: string): void {
  const errors = [...Value.Errors(schema, value)].slice(0, 3);
  assert.equal(errors.length, 0, `${what}: ${JSON.stringify(errors)}`);
}

const TOKEN = "contract-token";

async function getJson(
  p: TestPrimary,
  path: string,
  status = 200,
  init: { method?: string; body?: unknown } = {},
): Promise<unknown> {
  const res = await fetch(`http://127.0.0.1:${httpPort(p)}${path}`, {
    method: init.method ?? "GET",
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(init.body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  assert.equal(res.status, status, path);
  return res.json();
}

/** The route's own object (before serialisation) fits the schema, and the answer keeps every key of it. */
function sameShape(schema: TSchema, built: unknown, answered: unknown, what: string): void {
  conforms(schema, JSON.parse(JSON.stringify(built)), `${what} as the route built it`);
  conforms(schema, answered, `${what} as answered`);
  const lost = [...keyPaths(JSON.parse(JSON.stringify(built)))].filter(
    (k) => !keyPaths(answered).has(k),
  );
  assert.deepEqual(lost, [], `${what}: fields the schema dropped`);
}

test("api contract - nodes, one node, summary, cluster, series and events answer by their schemas and drop nothing, for agent and tutorial nodes alike", async (t) => {
  const p = await startPrimary(t, {
    "http.token": TOKEN,
    "primary.vitals_interval": "1s",
    "legacy.port": "0",
    "legacy.host": "127.0.0.1",
  });
  startAgent(t, p, "pi-a");
  startAgent(t, p, "pi-b", { "node.labels": "rack=a" });
  await waitFor(
    () => p.records.some((r) => r.msg === "listening for tutorial nodes"),
    "legacy listener up",
    2_000,
  );
  const legacyPort = Number(p.records.find((r) => r.msg === "listening for tutorial nodes")?.port);
  const tutorial = spawn(
    PYTHON,
    [CLIENT, "127.0.0.1", String(legacyPort), "tutorial-pi", "0.2", "0.5"],
    {
      stdio: "ignore",
    },
  );
  t.after(() => tutorial.kill("SIGKILL"));
  await waitFor(
    () =>
      p.primary.registry.list().filter((n) => n.vitals !== undefined && n.details !== undefined)
        .length === 3,
    "two agents and a tutorial node with vitals and details",
    10_000,
  );

  const records = () => p.primary.registry.list().sort((a, b) => a.name.localeCompare(b.name));
  const list = await getJson(p, "/api/nodes");
  sameShape(NodeListSchema, { nodes: records().map(nodeView) }, list, "/api/nodes");
  const summary = await getJson(p, "/api/nodes?view=summary&on=all");
  sameShape(
    NodeSummaryListSchema,
    { nodes: records().map(nodeSummary), unknownNames: [] },
    summary,
    "/api/nodes?view=summary",
  );
  for (const n of records()) {
    const one = await getJson(p, `/api/nodes/${n.id}`);
    sameShape(NodeDetailSchema, { ...nodeView(n), details: n.details ?? null }, one, n.name);
    const series = await getJson(p, `/api/nodes/${n.id}/vitals?metric=cpu&step=1000`);
    conforms(SeriesSchema, series, `${n.name} series`);
  }
  const cluster = (await getJson(p, "/api/cluster?on=rack=a,ghost")) as { unknownNames: string[] };
  conforms(ClusterSchema, cluster, "/api/cluster");
  assert.deepEqual(cluster.unknownNames, ["ghost"]);
  const events = (await getJson(p, "/api/events?limit=50")) as { events: unknown[] };
  conforms(EventListSchema, events, "/api/events");
  assert.ok(events.events.length > 0);
  const alerts = (await getJson(p, "/api/alerts")) as { rules: unknown[] };
  conforms(AlertsAnswerSchema, alerts, "/api/alerts");
  assert.ok(alerts.rules.length > 5, "the stock rules");
  // The answers a reader meets when it asks wrong: the error body, by its schema too.
  conforms(ErrorBodySchema, await getJson(p, "/api/nodes/nobody", 404), "404");
  conforms(ErrorBodySchema, await getJson(p, "/api/nodes?on=,", 400), "400");
});

test("api contract - task runs and jobs (submitted, listed, one, results, cancelled) answer by their schemas and drop nothing", async (t) => {
  const ini = "[task.twice]\ncommand = /bin/sh -c 'echo $(($0 * 2))' {n}\narg.n = integer\n";
  const p = await startPrimary(t, { "http.token": TOKEN });
  startAgent(t, p, "pi-a", {}, "pi4", ini);
  startAgent(t, p, "pi-b", {}, "pi4", ini);
  await waitFor(
    () =>
      p.primary.registry.list().filter((n) => n.state === "alive" && n.details?.tasks !== undefined)
        .length === 2,
    "two agents with their tasks",
    10_000,
  );

  const started = (await getJson(p, "/api/tasks", 202, {
    method: "POST",
    body: { task: "twice", on: "all", args: { n: "21" } },
  })) as { id: number };
  conforms(StoredTaskRunSchema, started, "POST /api/tasks");
  await waitFor(() => p.primary.tasks.get(started.id)?.status === "ok", "the run ends ok", 10_000);
  sameShape(
    StoredTaskRunSchema,
    p.primary.tasks.get(started.id),
    await getJson(p, `/api/tasks/${started.id}`),
    "/api/tasks/:id",
  );
  sameShape(
    TaskRunListSchema,
    { runs: p.primary.tasks.list(10) },
    await getJson(p, "/api/tasks?limit=10"),
    "/api/tasks",
  );

  const job = (await getJson(p, "/api/jobs", 202, {
    method: "POST",
    body: {
      task: "twice",
      on: "all",
      items: { kind: "range", from: 1, to: 12 },
      args: { n: "{item}" },
    },
  })) as { id: number };
  conforms(StoredJobSchema, job, "POST /api/jobs");
  await p.primary.jobs.settled(job.id);
  sameShape(
    StoredJobSchema,
    await p.primary.jobs.get(job.id),
    await getJson(p, `/api/jobs/${job.id}`),
    "/api/jobs/:id",
  );
  sameShape(
    JobListSchema,
    { jobs: await p.primary.jobs.list(10) },
    await getJson(p, "/api/jobs"),
    "/api/jobs",
  );
  const results = (await getJson(p, `/api/jobs/${job.id}/results`)) as {
    items: Array<{ value: number; output: string }>;
  };
  sameShape(
    JobResultsSchema,
    { items: await p.primary.jobs.items(job.id, { limit: 1_000 }), redacted: false },
    results,
    "/api/jobs/:id/results",
  );
  assert.deepEqual(
    results.items.map((i) => [i.value, i.output]),
    Array.from({ length: 12 }, (_, k) => [k + 1, `${(k + 1) * 2}\n`]),
  );
  conforms(
    ErrorBodySchema,
    await getJson(p, `/api/jobs/${job.id}`, 409, { method: "DELETE" }),
    "409",
  );
});
