import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { deadline, waitFor } from "@picluster/common/testing";
import {
  httpPort,
  scratchDir,
  startAgent,
  startPrimary,
  type TestPrimary,
} from "./support/cluster.js";

async function get(
  p: TestPrimary,
  path: string,
): Promise<{ status: number; body: unknown; text: string; type: string | null }> {
  const res = await fetch(`http://127.0.0.1:${httpPort(p)}${path}`);
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    // Not every route answers JSON (/metrics); the text is returned as it is.
    body = undefined;
  }
  return { status: res.status, body, text, type: res.headers.get("content-type") };
}

async function clusterWithAgents(t: Parameters<typeof startPrimary>[0], names: string[]) {
  const p = await startPrimary(t, { "primary.vitals_interval": "1s" });
  const agents = names.map((n) => startAgent(t, p, n));
  await waitFor(
    () => p.primary.registry.list().filter((n) => n.vitals !== undefined).length === names.length,
    "agents with vitals",
    5_000,
  );
  return { p, agents };
}

test("http - cluster, nodes, one node by name or id, its vitals series, and events", async (t) => {
  const { p, agents } = await clusterWithAgents(t, ["pi-a", "pi-b", "pi-c"]);
  const health = await get(p, "/healthz");
  const { store, ...rest } = health.body as { store: string };
  assert.deepEqual(rest, { ok: true, version: "0.1.0-test" });
  assert.match(store, /^[0-9a-f]{16}$/, "the store's fingerprint, not its path");

  const cluster = (await get(p, "/api/cluster")).body as {
    nodes: number;
    states: Record<string, number>;
    totals: { cores: number };
  };
  assert.equal(cluster.nodes, 3);
  assert.deepEqual(cluster.states, { alive: 3, suspect: 0, down: 0, left: 0 });
  assert.equal(cluster.totals.cores, 12, "three Pi 4s with 4 cores each");

  const list = (await get(p, "/api/nodes")).body as {
    nodes: Array<{ name: string; state: string; vitals: { cpu: { total: number } } | null }>;
  };
  assert.deepEqual(
    list.nodes.map((n) => [n.name, n.state]),
    [
      ["pi-a", "alive"],
      ["pi-b", "alive"],
      ["pi-c", "alive"],
    ],
  );
  assert.equal(typeof list.nodes[0]?.vitals?.cpu.total, "number");

  const byName = await get(p, "/api/nodes/pi-b");
  const byId = await get(p, `/api/nodes/${agents[1]?.agent.id}`);
  assert.equal(byName.status, 200);
  assert.deepEqual(byName.body, byId.body);
  assert.equal(
    (byName.body as { details: { board: { model: string } } }).details.board.model.startsWith(
      "Raspberry Pi 4",
    ),
    true,
  );
  const missing = await get(p, "/api/nodes/nobody");
  assert.equal(missing.status, 404);
  assert.deepEqual(missing.body, {
    error: { code: "E_NO_SUCH_NODE", message: 'no node "nobody"' },
  });

  await waitFor(() => (p.primary.store.samplesStored ?? 0) >= 6, "a few samples stored", 5_000);
  const series = (await get(p, "/api/nodes/pi-a/vitals?metric=cpu&step=1000")).body as {
    resolution: string;
    points: Array<{ avg: number }>;
  };
  assert.equal(series.resolution, "raw");
  assert.ok(series.points.length >= 1);
  assert.equal(typeof series.points[0]?.avg, "number");

  const events = (await get(p, "/api/events?node=pi-a&kind=node.state")).body as {
    events: Array<{ kind: string; nodeId: string; data: { to: string } }>;
  };
  assert.deepEqual(
    events.events.map((e) => [e.kind, e.nodeId, e.data.to]),
    [["node.state", agents[0]?.agent.id, "alive"]],
  );
});

test("http - an invalid query answers 400 naming the field", async (t) => {
  const { p } = await clusterWithAgents(t, ["pi-q"]);
  const cases: Array<[string, string]> = [
    ["/api/events?limit=abc", "limit"],
    ["/api/events?limit=100000", "limit"],
    ["/api/nodes/pi-q/vitals?metric=bogus", "metric"],
    ["/api/nodes/pi-q/vitals", "metric"],
    ["/api/nodes/pi-q/vitals?metric=cpu&step=5", "step"],
    ["/api/events?colour=red", "colour"],
  ];
  for (const [path, field] of cases) {
    const r = await get(p, path);
    assert.equal(r.status, 400, path);
    const error = (r.body as { error: { code: string; field: string; message: string } }).error;
    assert.equal(error.code, "E_BAD_REQUEST", path);
    assert.equal(error.field, field, `${path}: ${error.message}`);
    assert.ok(error.message.startsWith(`${field}:`), error.message);
  }
  const from = await get(p, "/api/nodes/pi-q/vitals?metric=cpu&from=2000&to=1000");
  assert.equal((from.body as { error: { field: string } }).error.field, "from");
  const route = await get(p, "/api/nothing");
  assert.equal(route.status, 404);
});

test("http - /metrics carries every node's state and vitals with its labels, and passes promtool when it is installed", async (t) => {
  const { p } = await clusterWithAgents(t, ["pi-m"]);
  const r = await get(p, "/metrics");
  assert.equal(r.status, 200);
  assert.match(r.type ?? "", /^text\/plain; version=0\.0\.4/);
  assert.match(r.text, /^picluster_node_up\{node_id="[0-9a-f]+",name="pi-m"\} 1$/m);
  assert.match(
    r.text,
    /^picluster_node_state\{node_id="[0-9a-f]+",name="pi-m",state="alive"\} 1$/m,
  );
  assert.match(
    r.text,
    /^picluster_node_under_voltage\{node_id="[0-9a-f]+",name="pi-m"\} 1$/m,
    "the pi4 fixture is under-voltage",
  );
  assert.match(r.text, /^picluster_nodes\{state="alive"\} 1$/m);
  assert.match(r.text, /^process_resident_memory_bytes \d+$/m);
  const promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].find((f) => existsSync(f));
  if (promtool === undefined) {
    // CI installs Debian's prometheus package (.ci/run); a bare developer machine may not have it.
    t.diagnostic("promtool not installed: skipped the promtool check (CI runs it)");
    return;
  }
  const file = join(scratchDir(t), "metrics.txt");
  writeFileSync(file, r.text);
  const check = spawnSync("sh", ["-c", `"${promtool}" check metrics < "${file}"`], {
    encoding: "utf8",
  });
  assert.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`);
});

test("http - the stream sends state changes live and resumes from Last-Event-ID", async (t) => {
  const { p, agents } = await clusterWithAgents(t, ["pi-s1", "pi-s2"]);
  const url = `http://127.0.0.1:${httpPort(p)}/api/stream`;
  const ac = new AbortController();
  t.after(() => ac.abort());
  const res = await fetch(url, { signal: ac.signal });
  assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  const nextEvent = async (kind: string, where: (data: Record<string, unknown>) => boolean) => {
    for (;;) {
      const frames = buffer.split("\n\n");
      buffer = frames.pop() ?? "";
      for (const frame of frames) {
        const fields = Object.fromEntries(
          frame.split("\n").map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 2)]),
        );
        if (fields.event === kind && fields.data !== undefined) {
          const data = JSON.parse(fields.data) as Record<string, unknown>;
          if (where(data)) return { id: fields.id, data };
        }
      }
      const { value, done } = await reader.read();
      if (done) throw new Error("stream ended");
      buffer += decoder.decode(value, { stream: true });
    }
  };
  const vitals = await deadline(
    nextEvent("vitals", () => true),
    3_000,
    "a vitals batch",
  );
  assert.ok(Array.isArray(vitals.data));
  await agents[0]?.stop();
  const left = await deadline(
    nextEvent("node.state", (d) => (d.data as { to: string }).to === "left"),
    2_000,
    "left on the stream",
  );
  assert.equal((left.data.data as { name: string }).name, "pi-s1");
  ac.abort();

  // A client that saw events up to just before that one gets it again on resume.
  const resumed = await fetch(url, { headers: { "last-event-id": String(Number(left.id) - 1) } });
  const text = await deadline(
    (async () => {
      const r = (resumed.body as ReadableStream<Uint8Array>).getReader();
      let got = "";
      while (!got.includes(`id: ${left.id}\n`)) {
        const { value, done } = await r.read();
        if (done) break;
        got += decoder.decode(value);
      }
      await r.cancel();
      return got;
    })(),
    2_000,
    "resumed stream",
  );
  assert.match(text, new RegExp(`id: ${left.id}\\nevent: node.state\\n`));
});

test("http - calls that change state need the bearer token; with one, a join token is issued and a node revoked", async (t) => {
  const open = await startPrimary(t);
  const refused = await fetch(`http://127.0.0.1:${httpPort(open)}/api/nodes/pi-x/join-token`, {
    method: "POST",
  });
  assert.equal(refused.status, 403, "no token configured: no changes at all");
  assert.equal(
    ((await refused.json()) as { error: { code: string } }).error.code,
    "E_NO_TOKEN_CONFIGURED",
  );

  const p = await startPrimary(t, { "http.token": "s3cret-token" });
  const base = `http://127.0.0.1:${httpPort(p)}`;
  const post = (path: string, token?: string) =>
    fetch(`${base}${path}`, {
      method: "POST",
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    });
  const wrong = await post("/api/nodes/pi-x/join-token", "guess");
  assert.equal(wrong.status, 401);
  const wrongText = await wrong.text();
  assert.ok(!wrongText.includes("s3cret-token"), "the token is never echoed");
  assert.equal((await post("/api/nodes/pi-x/join-token")).status, 401);

  const issued = await post("/api/nodes/pi-x/join-token", "s3cret-token");
  assert.equal(issued.status, 201);
  const { token } = (await issued.json()) as { token: string };
  assert.match(token, /^pcj1\./);
  assert.equal((await post("/api/nodes/bad%20name/join-token", "s3cret-token")).status, 400);

  // The token from the API joins a real agent; revoking it through the API cuts the node off.
  const a = startAgent(t, { port: p.port, addNode: () => token }, "pi-x");
  await waitFor(() => p.primary.registry.get(a.agent.id)?.state === "alive", "pi-x alive", 5_000);
  assert.equal(
    (await post("/api/nodes/pi-x/join-token", "s3cret-token")).status,
    409,
    "a name with a credential cannot get a second one",
  );
  const revoked = await post("/api/nodes/pi-x/revoke", "s3cret-token");
  assert.deepEqual(((await revoked.json()) as { revoked: string[] }).revoked.length, 1);
  // Revoked, it is `left` ("credential revoked"), never `down`.
  await waitFor(() => p.primary.registry.get(a.agent.id)?.state === "left", "pi-x cut off", 3_000);
  assert.equal((await post("/api/nodes/nobody/revoke", "s3cret-token")).status, 404);
});
