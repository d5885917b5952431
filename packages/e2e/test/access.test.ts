/**
 * Who may see and do what (docs/security.md): named tokens with roles and
 * scopes against a real primary with real agents. Every route of the access
 * table is called by every kind of caller, with the API bound beyond
 * loopback (a veth address of the test's own) and on loopback.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { systemClock } from "@picluster/common";
import { waitFor } from "@picluster/common/testing";
import { ApiTokens, ROUTE_ACCESS } from "@picluster/primary";
import { launch, NO_BROWSER, until } from "./support/browser.js";
import { httpPort, runCli, startAgent, startPrimary, type TestPrimary } from "./support/cluster.js";
import { NO_NET_ADMIN, nonLoopbackAddress } from "./support/net.js";

const ADMIN = "the-config-admin-token-for-access-tests";
type Caller = "anonymous" | "viewer" | "operator" | "admin" | "http-token";
const RANK: Record<Caller, number> = {
  anonymous: -1,
  viewer: 0,
  operator: 1,
  admin: 2,
  "http-token": 2,
};
const NEED_RANK = { read: 0, operate: 1, admin: 2 } as const;

/** One request per route of the access table: harmless (unknown ids and names, refused bodies). */
const CALLS: Array<{ route: string; path: string; body?: unknown }> = [
  { route: "GET /healthz", path: "/healthz" },
  { route: "GET /", path: "/" },
  { route: "GET /assets/*", path: "/assets/none.js" },
  { route: "GET /join.sh", path: "/join.sh" },
  { route: "GET /join/agent.cjs", path: "/join/agent.cjs" },
  { route: "GET /api/cluster", path: "/api/cluster" },
  { route: "GET /api/nodes", path: "/api/nodes" },
  { route: "GET /api/nodes/:id", path: "/api/nodes/pi-a" },
  { route: "GET /api/nodes/:id/vitals", path: "/api/nodes/pi-a/vitals?metric=cpu" },
  { route: "GET /api/nodes/:id/custom", path: "/api/nodes/pi-a/custom" },
  { route: "GET /api/nodes/:id/containers", path: "/api/nodes/pi-a/containers" },
  { route: "GET /api/checks", path: "/api/checks" },
  { route: "GET /status", path: "/status" },
  { route: "GET /status.json", path: "/status.json" },
  { route: "GET /api/events", path: "/api/events" },
  { route: "GET /api/stream", path: "/api/stream" },
  { route: "GET /metrics", path: "/metrics" },
  { route: "GET /api/alerts", path: "/api/alerts" },
  { route: "GET /api/tasks", path: "/api/tasks" },
  { route: "GET /api/tasks/catalog", path: "/api/tasks/catalog" },
  { route: "GET /api/jobs", path: "/api/jobs" },
  { route: "GET /api/jobs/:id", path: "/api/jobs/999" },
  { route: "GET /api/jobs/:id/results", path: "/api/jobs/999/results" },
  { route: "GET /api/ping", path: "/api/ping?on=pi-none&timeout=100" },
  { route: "GET /api/whoami", path: "/api/whoami" },
  { route: "POST /api/stream/ticket", path: "/api/stream/ticket" },
  { route: "POST /api/tasks", path: "/api/tasks", body: { task: "nope", on: "pi-none" } },
  { route: "GET /api/tasks/:id", path: "/api/tasks/999" },
  { route: "GET /api/tasks/:id/output", path: "/api/tasks/999/output" },
  { route: "DELETE /api/tasks/:id", path: "/api/tasks/999" },
  {
    route: "POST /api/jobs",
    path: "/api/jobs",
    body: { task: "nope", on: "pi-none", items: { kind: "range", from: 1, to: 2 } },
  },
  { route: "DELETE /api/jobs/:id", path: "/api/jobs/999" },
  { route: "GET /api/nodes/:id/processes", path: "/api/nodes/pi-none/processes" },
  { route: "GET /api/nodes/:id/logs", path: "/api/nodes/pi-none/logs" },
  { route: "POST /api/nodes/:name/join-token", path: "/api/nodes/pi-table/join-token" },
  { route: "POST /api/nodes/:name/revoke", path: "/api/nodes/pi-none/revoke" },
  { route: "DELETE /api/nodes/:name", path: "/api/nodes/pi-none" },
  { route: "POST /api/alerts/test", path: "/api/alerts/test", body: { channel: "none" } },
  { route: "GET /api/tokens", path: "/api/tokens" },
  { route: "POST /api/tokens", path: "/api/tokens", body: { name: "Bad Name", role: "viewer" } },
  { route: "DELETE /api/tokens/:name", path: "/api/tokens/none" },
];

async function call(
  base: string,
  c: { route: string; path: string; body?: unknown },
  token: string | undefined,
): Promise<{ status: number; body: string }> {
  const method = c.route.split(" ")[0] as string;
  const abort = new AbortController();
  const res = await fetch(`${base}${c.path}`, {
    method,
    signal: abort.signal,
    headers: {
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...(c.body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(c.body === undefined ? {} : { body: JSON.stringify(c.body) }),
  });
  // Streams stay open: the status says enough.
  const body = res.headers.get("content-type")?.includes("event-stream") ? "" : await res.text();
  abort.abort();
  return { status: res.status, body };
}

function tokensOf(p: TestPrimary): ApiTokens {
  return new ApiTokens(join(p.dataDir, "picluster.db"), systemClock).load();
}

/** The five callers' tokens on `p` (named ones made through its store, as the CLI does). */
function callers(p: TestPrimary): Record<Caller, string | undefined> {
  const store = tokensOf(p);
  try {
    const make = (name: string, role: string) => store.add({ name, role, createdBy: "test" }).token;
    return {
      anonymous: undefined,
      viewer: make("t-viewer", "viewer"),
      operator: make("t-operator", "operator"),
      admin: make("t-admin", "admin"),
      "http-token": ADMIN,
    };
  } finally {
    store.close();
  }
}

/** pi-a (rack=a) and pi-b (rack=b), each allowing task `hello`, alive with their details. */
async function twoRacks(t: Parameters<typeof startAgent>[0], p: TestPrimary) {
  const tasks = ["[task.hello]", "command = /usr/bin/printf hello", ""].join("\n");
  const a = startAgent(t, p, "pi-a", { "node.labels": "rack=a" }, "pi4", tasks);
  const b = startAgent(t, p, "pi-b", { "node.labels": "rack=b" }, "pi4", tasks);
  await waitFor(
    () => [a, b].every((x) => p.primary.registry.get(x.agent.id)?.details?.tasks !== undefined),
    "both nodes alive with their tasks",
    15_000,
  );
  return [a, b] as const;
}

test("access - the table covers every route the primary registers, and nothing else", async (t) => {
  // The status page on, so that its routes exist.
  const p = await startPrimary(t, { "http.token": ADMIN, "http.status_page": "on" });
  const base = `http://127.0.0.1:${httpPort(p)}`;
  assert.deepEqual(
    CALLS.map((c) => c.route).sort(),
    Object.keys(ROUTE_ACCESS).sort(),
    "this test calls each route of the access table once",
  );
  // A route that exists answers something other than the not-found handler's "no route".
  for (const c of CALLS) {
    const { body } = await call(base, c, ADMIN);
    if (c.route.startsWith("GET /join")) continue; // Only with a built agent bundle.
    assert.doesNotMatch(body, /"no route /, `${c.route} is registered`);
  }
});

test("access - bound beyond loopback: each role does exactly what the table says on every route", {
  skip: NO_NET_ADMIN,
}, async (t) => {
  const address = nonLoopbackAddress(t);
  const p = await startPrimary(t, { "http.token": ADMIN, "http.host": address });
  const base = `http://${address}:${httpPort(p)}`;
  const tokens = callers(p);
  const wrong: string[] = [];
  for (const c of CALLS) {
    const need = ROUTE_ACCESS[c.route];
    for (const [caller, token] of Object.entries(tokens) as Array<[Caller, string | undefined]>) {
      const { status, body } = await call(base, c, token);
      const allowed = need === "public" || (need !== undefined && RANK[caller] >= NEED_RANK[need]);
      const refused = status === 401 || status === 403;
      if (allowed === refused)
        wrong.push(
          `${caller} ${c.route}: ${status} ${body.slice(0, 120)} (expected ${allowed ? "allowed" : "refused"})`,
        );
      if (!allowed && caller === "anonymous" && need === "read")
        assert.match(body, /viewer token/, "an anonymous read off loopback says what it needs");
      if (!allowed && caller !== "anonymous")
        assert.match(body, /E_FORBIDDEN/, `${caller} ${c.route}: forbidden, not unauthorised`);
    }
  }
  assert.deepEqual(wrong, []);
});

test("access - on loopback reads stay open without a token; changes still need one; public_read opens reads beyond", {
  skip: NO_NET_ADMIN,
}, async (t) => {
  const p = await startPrimary(t, { "http.token": ADMIN });
  const base = `http://127.0.0.1:${httpPort(p)}`;
  for (const c of CALLS) {
    const need = ROUTE_ACCESS[c.route];
    const { status } = await call(base, c, undefined);
    const refused = status === 401 || status === 403;
    assert.equal(
      refused,
      need === "operate" || need === "admin",
      `anonymous ${c.route}: ${status}`,
    );
  }
  const address = nonLoopbackAddress(t);
  const open = await startPrimary(t, {
    "http.token": ADMIN,
    "http.host": address,
    "http.public_read": "on",
  });
  const openBase = `http://${address}:${httpPort(open)}`;
  assert.equal(
    (await call(openBase, { route: "GET /api/nodes", path: "/api/nodes" }, undefined)).status,
    200,
  );
  assert.equal(
    (
      await call(
        openBase,
        { route: "POST /api/tasks", path: "/api/tasks", body: { task: "x", on: "all" } },
        undefined,
      )
    ).status,
    401,
  );
});

test("access - an operator scoped to rack=a runs on rack=a and is refused on rack=b by name; a scoped viewer sees its nodes only", async (t) => {
  const p = await startPrimary(t, { "http.token": ADMIN });
  const [, b] = await twoRacks(t, p);
  const base = `http://127.0.0.1:${httpPort(p)}`;
  const store = tokensOf(p);
  const operator = store.add({
    name: "rack-a",
    role: "operator",
    scope: "rack=a",
    createdBy: "test",
  });
  const viewer = store.add({ name: "share-b", role: "viewer", scope: "rack=b", createdBy: "test" });
  store.close();
  const post = (path: string, body: unknown, token: string) =>
    fetch(`${base}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const get = async (path: string, token: string) =>
    (
      await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } })
    ).json() as Promise<Record<string, unknown>>;

  const onA = await post("/api/tasks", { task: "hello", on: "rack=a" }, operator.token);
  assert.equal(onA.status, 202, await onA.clone().text());
  const run = (await onA.json()) as { id: number; requestedBy: string };
  assert.equal(run.requestedBy, "token rack-a", "the run names the token that asked");
  const onB = await post("/api/tasks", { task: "hello", on: "pi-b" }, operator.token);
  assert.equal(onB.status, 403);
  const refusal = (await onB.json()) as { error: { code: string; message: string } };
  assert.equal(refusal.error.code, "E_OUT_OF_SCOPE");
  assert.match(refusal.error.message, /"rack-a" may act only on rack=a: pi-b is outside it/);
  const all = await post("/api/tasks", { task: "hello", on: "all" }, operator.token);
  assert.equal(all.status, 403, "`all` takes in pi-b too");
  const job = await post(
    "/api/jobs",
    { task: "hello", on: "pi-b", items: { kind: "range", from: 1, to: 2 } },
    operator.token,
  );
  assert.equal(job.status, 403);
  const logs = await fetch(`${base}/api/nodes/pi-b/processes`, {
    headers: { authorization: `Bearer ${operator.token}` },
  });
  assert.equal(logs.status, 403);

  // The share link for rack=b: pi-b only, everywhere it looks.
  const nodes = (await get("/api/nodes", viewer.token)).nodes as Array<{ name: string }>;
  assert.deepEqual(
    nodes.map((n) => n.name),
    ["pi-b"],
  );
  const hidden = await fetch(`${base}/api/nodes/pi-a`, {
    headers: { authorization: `Bearer ${viewer.token}` },
  });
  assert.equal(hidden.status, 404, "a node outside the scope is as if absent");
  const events = (await get("/api/events?limit=500", viewer.token)).events as Array<{
    nodeId: string | null;
  }>;
  assert.ok(events.length > 0);
  assert.ok(
    events.every((e) => e.nodeId === b.agent.id),
    "only pi-b's events",
  );
  const cluster = await get("/api/cluster", viewer.token);
  assert.equal(cluster.nodes, 1);
  const runs = (await get("/api/tasks", viewer.token)).runs as unknown[];
  assert.equal(runs.length, 0, "the run on pi-a is not shown to rack=b");
  const metrics = await fetch(`${base}/metrics`, {
    headers: { authorization: `Bearer ${viewer.token}` },
  });
  assert.equal(metrics.status, 403);
  assert.deepEqual(await get("/api/whoami", viewer.token), {
    name: "share-b",
    role: "viewer",
    scope: "rack=b",
  });
});

test("access - a revoked or expired token is refused at once; secrets appear in no log, audit line, metric or answer", async (t) => {
  const p = await startPrimary(t, { "http.token": ADMIN });
  const base = `http://127.0.0.1:${httpPort(p)}`;
  const who = (token: string) =>
    fetch(`${base}/api/whoami`, { headers: { authorization: `Bearer ${token}` } });
  // Made through the CLI, as a user would.
  const made = await runCli(t, ["token", "add", "ci", "--role", "operator", "--json"], {
    port: httpPort(p),
    token: null,
    env: { PICLUSTER_NODE_DATA_DIR: p.dataDir },
  });
  assert.equal(made.status, 0, made.err);
  const ci = JSON.parse(made.out) as {
    name: string;
    role: string;
    scope: null;
    expires: null;
    token: string;
  };
  assert.deepEqual(
    { ...ci, token: "…" },
    { name: "ci", role: "operator", scope: null, expires: null, token: "…" },
  );
  assert.equal((await who(ci.token)).status, 200);
  // Expired an hour ago: made by a clock two hours behind, valid for one.
  const behind = new ApiTokens(join(p.dataDir, "picluster.db"), {
    ...systemClock,
    now: () => Date.now() - 2 * 3_600_000,
  }).load();
  const old = behind.add({
    name: "old",
    role: "viewer",
    expiresInMs: 3_600_000,
    createdBy: "test",
  });
  behind.close();
  // On loopback reads are open: a refused token reads as nobody, and /api/whoami says why.
  const expired = (await (await who(old.token)).json()) as { role: string; refused?: string };
  assert.equal(expired.role, "anonymous");
  assert.match(expired.refused ?? "", /the token "old" expired /);
  const run = (token: string) =>
    fetch(`${base}/api/tasks`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ task: "x", on: "all" }),
    });
  const expiredRun = await run(old.token);
  assert.equal(expiredRun.status, 401);
  assert.match(await expiredRun.text(), /the token \\"old\\" expired /);
  // Revoked through the CLI: refused on the very next request.
  const revoked = await runCli(t, ["token", "revoke", "ci"], {
    port: httpPort(p),
    token: null,
    env: { PICLUSTER_NODE_DATA_DIR: p.dataDir },
  });
  assert.equal(revoked.status, 0, revoked.err);
  const after = await run(ci.token);
  assert.equal(after.status, 401);
  assert.match(await after.text(), /the token \\"ci\\" was revoked/);

  // Use the other secrets where they could leak: a task request, a token made over the API, a bad bearer.
  const viaApi = await fetch(`${base}/api/tokens`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "api-made", role: "viewer" }),
  });
  assert.equal(viaApi.status, 201);
  const apiMade = (await viaApi.json()) as { token: string };
  await fetch(`${base}/api/tasks`, {
    method: "POST",
    headers: { authorization: `Bearer ${apiMade.token}`, "content-type": "application/json" },
    body: JSON.stringify({ task: "x", on: "all" }),
  });
  const listed = await (
    await fetch(`${base}/api/tokens`, { headers: { authorization: `Bearer ${ADMIN}` } })
  ).text();
  const metrics = await (await fetch(`${base}/metrics`)).text();
  const list = await runCli(t, ["token", "list", "--json"], {
    port: httpPort(p),
    token: null,
    env: { PICLUSTER_NODE_DATA_DIR: p.dataDir },
  });
  await p.primary.close();
  const audit = readFileSync(join(p.dataDir, "audit.log"), "utf8");
  assert.match(audit, /"event":"token.added","token":"api-made"/, "the audit log names the token");
  const audited = await runCli(t, ["audit", "--since", "1h", "--json"], {
    port: httpPort(p),
    token: null,
    env: { PICLUSTER_NODE_DATA_DIR: p.dataDir },
  });
  assert.equal(audited.status, 0, audited.err);
  const events = audited.out
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { event: string; token?: string; by?: string });
  assert.ok(
    events.some((e) => e.event === "token.revoked" || e.event === "token.added"),
    "picluster audit reads the lines back",
  );
  assert.ok(events.some((e) => e.event === "token.added" && e.by === "api-token"));
  const logs = JSON.stringify(p.records);
  for (const secret of [ci.token, old.token, apiMade.token, ADMIN])
    for (const [where, text] of Object.entries({
      logs,
      audit,
      metrics,
      listed,
      list: list.out,
      auditCli: audited.out,
    }))
      assert.equal(text.includes(secret), false, `a secret in ${where}`);
});

test("access - the dashboard off loopback: a sign-in page first; a viewer sees no Run, Remove or Add node; a share link shows only its scope, live", {
  skip: NO_BROWSER ?? NO_NET_ADMIN,
}, async (t) => {
  const address = nonLoopbackAddress(t);
  const p = await startPrimary(t, {
    "http.token": ADMIN,
    "http.host": address,
    "primary.vitals_interval": "1s",
  });
  const [, b] = await twoRacks(t, p);
  const store = tokensOf(p);
  const viewer = store.add({ name: "class", role: "viewer", createdBy: "test" });
  const share = store.add({ name: "family", role: "viewer", scope: "rack=b", createdBy: "test" });
  const operator = store.add({ name: "teacher", role: "operator", createdBy: "test" });
  store.close();
  const base = `http://${address}:${httpPort(p)}`;
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(err.message));

  // No token: the sign-in page, nothing of the cluster. A wrong token is refused with the primary's words.
  await page.goto(`${base}/`);
  await until(page, `document.querySelector('[data-testid="signin"]') !== null`);
  assert.equal(await page.evaluate('document.querySelectorAll("[data-node]").length'), 0);
  await page.fill('[data-testid="signin-token"]', "pct_not-a-real-token");
  await page.click('[data-testid="signin-submit"]');
  await until(page, `document.querySelector('[data-testid="signin-error"]') !== null`);
  assert.match(
    (await page.textContent('[data-testid="signin-error"]')) ?? "",
    /not one this primary knows/,
  );

  // The viewer signs in: both nodes, who it is, and no control it may not use.
  await page.fill('[data-testid="signin-token"]', viewer.token);
  await page.click('[data-testid="signin-submit"]');
  await until(
    page,
    'document.querySelectorAll("[data-node]").length === 2 && location.hash === "#/"',
  );
  assert.match((await page.textContent('[data-testid="who"]')) ?? "", /class · viewer/);
  assert.equal(await page.evaluate(`document.querySelector('[data-testid="add-node"]')`), null);
  await page.goto(`${base}/#/tasks`);
  await until(page, `document.querySelector("h1")?.textContent === "Tasks"`);
  assert.equal(await page.evaluate(`document.querySelector('[data-testid="run-task"]')`), null);
  await page.goto(`${base}/#/node/pi-a`);
  await until(page, `document.querySelector("h1")?.textContent.includes("pi-a") === true`);
  assert.doesNotMatch((await page.textContent("main")) ?? "", /Remove pi-a/);
  // The live stream opens with a ticket (EventSource cannot send the token).
  await page.goto(`${base}/#/`);
  await until(
    page,
    `document.querySelector('[data-testid="stream-status"]')?.textContent === "live"`,
  );

  // An operator sees Run, but not Remove or Add node.
  await page.click('[data-testid="signout"]');
  await until(page, `document.querySelector('[data-testid="signin"]') !== null`);
  await page.fill('[data-testid="signin-token"]', operator.token);
  await page.click('[data-testid="signin-submit"]');
  await until(
    page,
    `document.querySelector('[data-testid="who"]')?.textContent.includes("teacher · operator") === true`,
  );
  await page.goto(`${base}/#/tasks`);
  await until(page, `document.querySelector('[data-testid="run-task"]') !== null`);
  await page.goto(`${base}/#/node/pi-a`);
  await until(page, `document.querySelector("h1")?.textContent.includes("pi-a") === true`);
  assert.doesNotMatch((await page.textContent("main")) ?? "", /Remove pi-a/);

  // The share link for rack=b in a fresh browser context: pi-b only, and pi-b's news live.
  const family = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  family.on("pageerror", (err) => errors.push(err.message));
  await family.goto(`${base}/#token=${share.token}`);
  await until(family, 'document.querySelectorAll("[data-node]").length === 1');
  assert.equal(
    await family.evaluate(`document.querySelector('[data-node="pi-b"]') !== null`),
    true,
  );
  assert.match((await family.textContent('[data-testid="who"]')) ?? "", /family · viewer · rack=b/);
  await until(
    family,
    `document.querySelector('[data-testid="stream-status"]')?.textContent === "live"`,
  );
  await b.stop();
  await until(
    family,
    `document.querySelector('[data-node="pi-b"]')?.textContent.includes("left") === true`,
  );
  assert.deepEqual(errors, []);
});

test("access - a named token past its rate gets 429 with Retry-After; the admin token is not limited", async (t) => {
  const p = await startPrimary(t, { "http.token": ADMIN, "http.token_rate": "2" });
  const base = `http://127.0.0.1:${httpPort(p)}`;
  const store = tokensOf(p);
  const busy = store.add({ name: "busy", role: "viewer", createdBy: "test" });
  store.close();
  const statuses: number[] = [];
  let retryAfter: string | null = null;
  // A burst of five times the rate, then refused.
  for (let i = 0; i < 12; i++) {
    const res = await fetch(`${base}/api/nodes`, {
      headers: { authorization: `Bearer ${busy.token}` },
    });
    statuses.push(res.status);
    if (res.status === 429) {
      retryAfter = res.headers.get("retry-after");
      assert.match(await res.text(), /E_RATE_LIMITED/);
    }
  }
  assert.ok(
    statuses.slice(0, 10).every((s) => s === 200),
    `the burst passes: ${statuses}`,
  );
  assert.equal(statuses.at(-1), 429, `then refused: ${statuses}`);
  assert.ok(Number(retryAfter) >= 1, "Retry-After in seconds");
  for (let i = 0; i < 30; i++) {
    const res = await fetch(`${base}/api/nodes`, { headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(res.status, 200);
  }
});
