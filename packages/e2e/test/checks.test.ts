import assert from "node:assert/strict";
import { chmodSync, existsSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { waitFor } from "@picluster/common/testing";
import { alertFiring, httpPort, scratchDir, startAgent, startPrimary } from "./support/cluster.js";

const PING = existsSync("/usr/bin/ping") || existsSync("/bin/ping");

interface Check {
  node: string;
  check: string;
  kind: string;
  state: string;
  up: boolean;
  reason: string;
  since: number;
  latencyMs: number | null;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)),
  );
}

/** A port nothing listens on: one a server had, closed again. */
async function closedPort(): Promise<number> {
  const s = createServer();
  const port = await listen(s);
  await new Promise((r) => s.close(r));
  return port;
}

test("checks - http, tcp, unit and ping run on the node: states and reasons at /api/checks, events on change, the stock check_down rule, /metrics, the public status page", async (t) => {
  // The service under watch: healthy until told otherwise.
  let healthy = true;
  const web = createServer((req, res) => {
    if (req.url !== "/healthz") return void res.writeHead(404).end();
    res
      .writeHead(healthy ? 200 : 503, { "content-type": "text/plain" })
      .end(healthy ? "ok\n" : "draining\n");
  });
  const webPort = await listen(web);
  t.after(() => web.close());
  const closed = await closedPort();

  // No systemd runs here: a program that answers as `systemctl show` does stands in for it.
  const dir = scratchDir(t, "picluster-checks-");
  const systemctl = join(dir, "systemctl");
  const unitState = join(dir, "unit-state");
  writeFileSync(unitState, "active running");
  writeFileSync(
    systemctl,
    `#!/bin/sh\n# show UNIT --property=...\n[ "$1" = show ] || exit 2\nif [ "$2" != nginx.service ]; then printf 'LoadState=not-found\\nActiveState=inactive\\nSubState=dead\\n'; exit 0; fi\nread a s < ${unitState}\nprintf 'LoadState=loaded\\nActiveState=%s\\nSubState=%s\\n' "$a" "$s"\n`,
  );
  chmodSync(systemctl, 0o755);

  const p = await startPrimary(t, {
    "primary.vitals_interval": "1s",
    "http.status_page": "on",
    "http.status_checks": "web,pi-checks/nginx",
  });
  const ini = [
    "[check.web]",
    `http = http://127.0.0.1:${webPort}/healthz`,
    "body = ok",
    "interval = 1s",
    "[check.port]",
    `tcp = 127.0.0.1:${webPort}`,
    "interval = 1s",
    "[check.closed]",
    `tcp = 127.0.0.1:${closed}`,
    "interval = 1s",
    "[check.nginx]",
    "unit = nginx.service",
    "interval = 1s",
    "[check.ghost]",
    "unit = ghost.service",
    "interval = 1s",
    // The system's ping (iputils-ping, which .ci/run installs).
    ...(PING ? ["[check.loopback]", "ping = 127.0.0.1", "interval = 1s"] : []),
    "",
  ].join("\n");
  if (!PING) t.diagnostic("no ping here (Debian's iputils-ping): the ping check is left out");
  startAgent(t, p, "pi-checks", {}, "pi4", ini, undefined, { systemctl });
  const base = `http://127.0.0.1:${httpPort(p)}`;
  const checks = async () =>
    ((await (await fetch(`${base}/api/checks`)).json()) as { checks: Check[] }).checks;
  const byName = async () => Object.fromEntries((await checks()).map((c) => [c.check, c]));
  const expected = PING ? 6 : 5;
  await waitFor(
    async () => (await checks()).length === expected,
    `${expected} checks reported`,
    15_000,
    200,
  );

  const first = await byName();
  assert.equal(first.web?.state, "up");
  assert.match(first.web?.reason ?? "", /^HTTP 200 in [\d.]+ ms$/);
  assert.ok((first.web?.latencyMs ?? -1) >= 0);
  assert.equal(first.port?.state, "up");
  assert.equal(first.closed?.state, "down");
  assert.equal(first.closed?.reason, "ECONNREFUSED");
  assert.equal(first.nginx?.state, "up");
  assert.equal(first.nginx?.reason, "active (running)");
  assert.equal(first.ghost?.state, "down");
  assert.equal(first.ghost?.reason, "no such unit");
  if (PING) {
    assert.equal(first.loopback?.state, "up", first.loopback?.reason);
    assert.match(first.loopback?.reason ?? "", /^answered in [\d.]+ ms$/);
  }

  // The stock rule fires with the number of checks down (closed, ghost).
  const firing = (value: number) => alertFiring(base, "check_down", "pi-checks", value);
  await waitFor(() => firing(2), "check_down firing with 2", 10_000, 200);

  // The service starts failing: its check goes down with the reason, as an event.
  healthy = false;
  writeFileSync(unitState, "failed failed");
  await waitFor(
    async () => (await byName()).web?.state === "down" && (await byName()).nginx?.state === "down",
    "web and nginx down",
    10_000,
    200,
  );
  const now = await byName();
  assert.equal(now.web?.reason, "HTTP 503 (expected 200-399)");
  assert.equal(now.nginx?.reason, "failed (failed)");
  await waitFor(() => firing(4), "check_down firing with 4", 10_000, 200);
  const events = (await (await fetch(`${base}/api/events?kind=check.down`)).json()) as {
    events: Array<{ data: { check: string; reason: string } }>;
  };
  const downs = events.events.map((e) => `${e.data.check}: ${e.data.reason}`).sort();
  assert.deepEqual(downs, [
    "closed: ECONNREFUSED",
    "ghost: no such unit",
    "nginx: failed (failed)",
    "web: HTTP 503 (expected 200-399)",
  ]);

  // /metrics: one gauge per check with the node's labels.
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(
    metrics,
    /^picluster_check_up\{node_id="[^"]+",name="pi-checks",check="web",kind="http"\} 0$/m,
  );
  assert.match(
    metrics,
    /^picluster_check_up\{node_id="[^"]+",name="pi-checks",check="port",kind="tcp"\} 1$/m,
  );
  assert.match(metrics, /^picluster_check_latency_seconds\{[^}]*check="port"[^}]*\} [\d.e-]+$/m);

  // Back up: an event, and since moves.
  healthy = true;
  await waitFor(async () => (await byName()).web?.state === "up", "web up again", 10_000, 200);
  // The event is stored with the store's next flush, a moment after the state.
  const upChecks = async () =>
    (
      (await (await fetch(`${base}/api/events?kind=check.up`)).json()) as {
        events: Array<{ data: { check: string } }>;
      }
    ).events.map((e) => e.data.check);
  await waitFor(async () => (await upChecks()).length > 0, "a check.up event stored", 5_000, 100);
  assert.deepEqual(await upChecks(), ["web"]);
  assert.ok(((await byName()).web?.since ?? 0) > (first.web?.since ?? 0));

  // The public status page: the chosen checks only, state and since, no targets or reasons.
  const status = (await (await fetch(`${base}/status.json`)).json()) as {
    checks: Array<Record<string, unknown>>;
  };
  assert.deepEqual(
    status.checks.map((c) => [c.node, c.check, c.state]),
    [
      ["pi-checks", "nginx", "down"],
      ["pi-checks", "web", "up"],
    ],
  );
  assert.deepEqual(Object.keys(status.checks[0] ?? {}).sort(), ["check", "node", "since", "state"]);
  const html = await (await fetch(`${base}/status`)).text();
  assert.match(html, /<td>web<\/td><td class="state">up<\/td>/);
  assert.match(html, /1 of 2 not up/);
  assert.doesNotMatch(html, new RegExp(String(webPort)));
});
