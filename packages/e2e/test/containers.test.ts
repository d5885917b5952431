import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { test } from "node:test";
import { IMAGE, NO_PODMAN, startPodman, waitFor } from "@picluster/common/testing";
import { launch, NO_BROWSER, SHOTS, TAKE_SHOTS, until } from "./support/browser.js";
import { alertFiring, httpPort, runCli, startAgent, startPrimary } from "./support/cluster.js";

interface Container {
  name: string;
  image: string;
  state: string;
  restarts: number;
  recentRestarts?: number;
  exitCode?: number;
  cpuPct?: number;
  memBytes?: number;
}

test("containers - from a real Podman API: state, exit codes, restarts, CPU and memory per container; stored series, /metrics, the stock rules, `picluster containers`", {
  skip: NO_PODMAN,
}, async (t) => {
  const podman = await startPodman(t);
  podman.run(["run", "-d", "--name", "web", "--network", "none", IMAGE, "/bin/sleep", "1000"]);
  podman.run(["run", "--name", "done", "--network", "none", IMAGE, "/bin/sleep", "0"]);
  // Exits 1 (sleep refuses its argument): a container down with a failure.
  try {
    podman.run(["run", "--name", "broken", "--network", "none", IMAGE, "/bin/sleep", "forever"]);
  } catch {
    // podman run passes on the container's exit status.
  }
  // A crash loop: restarted by the engine each time it ends.
  podman.run([
    "run",
    "-d",
    "--name",
    "looping",
    "--network",
    "none",
    "--restart",
    "always",
    IMAGE,
    "/bin/sleep",
    "1",
  ]);

  const p = await startPrimary(
    t,
    { "primary.vitals_interval": "1s" },
    undefined,
    undefined,
    // The stock rule waits a minute; a test has not got one.
    "[alert.container_down]\nfor = 0s\n",
  );
  // Stats at every sample (1 s here): the spreading over stats_interval has its own test.
  startAgent(t, p, "pi-pods", {
    "containers.socket": podman.socket,
    "containers.stats_interval": "1s",
  });
  const base = `http://127.0.0.1:${httpPort(p)}`;
  const node = () => p.primary.registry.list().find((n) => n.name === "pi-pods");
  const list = async () =>
    (
      (await (await fetch(`${base}/api/nodes/${node()?.id}/containers`)).json()) as {
        containers: Container[];
      }
    ).containers;
  const byName = async () => Object.fromEntries((await list()).map((c) => [c.name, c]));
  await waitFor(
    async () => node() !== undefined && (await byName()).web?.cpuPct !== undefined,
    "web's CPU (its second sample)",
    20_000,
    200,
  );
  const c = await byName();
  assert.deepEqual(Object.keys(c).sort(), ["broken", "done", "looping", "web"]);
  assert.equal(c.web?.state, "running");
  assert.equal(c.web?.image, IMAGE);
  assert.ok((c.web?.memBytes ?? 0) > 0, `web's memory: ${c.web?.memBytes}`);
  assert.ok(
    (c.web?.cpuPct ?? -1) >= 0 && (c.web?.cpuPct ?? 100) < 50,
    `web's CPU: ${c.web?.cpuPct}`,
  );
  assert.deepEqual([c.done?.state, c.done?.exitCode], ["exited", 0]);
  assert.deepEqual([c.broken?.state, c.broken?.exitCode], ["exited", 1]);

  // container_down counts the failure, not the clean exit.
  await waitFor(
    () => alertFiring(base, "container_down", "pi-pods", 1),
    "container_down with 1",
    10_000,
    200,
  );
  // The crash loop: its restart count grows and container_restarting fires.
  await waitFor(
    async () => ((await byName()).looping?.restarts ?? 0) >= 2,
    "looping restarted twice",
    90_000,
    500,
  );
  await waitFor(
    () => alertFiring(base, "container_restarting", "pi-pods", 1),
    "container_restarting with 1",
    90_000,
    500,
  );
  // Its changes of state are events; the container that kept running has none.
  const stateEvents = async () =>
    (
      (await (await fetch(`${base}/api/events?kind=container.state`)).json()) as {
        events: Array<{ data: { container: string; from: string; to: string } }>;
      }
    ).events;
  await waitFor(
    async () => (await stateEvents()).some((e) => e.data.container === "looping"),
    "a container.state event for the crash loop",
    10_000,
    200,
  );
  const events = await stateEvents();
  assert.ok(
    events.every((e) => e.data.container === "looping" && e.data.from !== e.data.to),
    JSON.stringify(events.slice(0, 5)),
  );

  // Stored: web's memory as a series, as the node page charts it.
  const series = (await (
    await fetch(
      `${base}/api/nodes/${node()?.id}/vitals?metric=${encodeURIComponent('container.mem{name="web"}')}&from=${Date.now() - 600_000}`,
    )
  ).json()) as { points: Array<{ max: number | null }> };
  assert.ok(series.points.some((pt) => (pt.max ?? 0) > 0));
  // Not among the node's own series.
  const custom = (await (await fetch(`${base}/api/nodes/${node()?.id}/custom`)).json()) as {
    series: unknown[];
  };
  assert.deepEqual(custom.series, []);

  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(
    metrics,
    /^picluster_container_running\{node_id="[^"]+",name="pi-pods",container="web",image="localhost\/picluster-test:1"\} 1$/m,
  );
  assert.match(metrics, /^picluster_container_running\{[^}]*container="broken"[^}]*\} 0$/m);
  assert.match(metrics, /^picluster_container_memory_bytes\{[^}]*container="web"[^}]*\} \d+$/m);

  // The CLI, as a person runs it.
  const cli = await runCli(t, ["containers", "pi-pods"], { port: httpPort(p), token: null });
  assert.equal(cli.status, 0, cli.err);
  assert.match(cli.out, /^NAME\s+IMAGE\s+STATE\s+HEALTH\s+RESTARTS\s+CPU\s+MEMORY/m);
  assert.match(cli.out, /^broken\s+localhost\/picluster-test:1\s+exited \(1\)/m);
  assert.match(cli.out, /^web\s+localhost\/picluster-test:1\s+running\s+–\s+0\s+[\d.]+ %/m);

  // The node page: a row per container, and CPU and memory charts for the running ones.
  if (NO_BROWSER) {
    t.diagnostic(`node page not checked: ${NO_BROWSER}`);
    return;
  }
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(err.message));
  await page.goto(`${base}/#/node/${node()?.id}`);
  await until(page, 'document.querySelectorAll("table.containers tbody tr").length === 4');
  assert.match(
    (await page.textContent('table.containers tr[data-container="broken"]')) ?? "",
    /exited \(1\)/,
  );
  await until(
    page,
    `Number(document.querySelector('.container-charts figure[data-metric="web memory"]')?.dataset.points ?? 0) > 0`,
    15_000,
  );
  if (TAKE_SHOTS) {
    mkdirSync(SHOTS, { recursive: true });
    await page.evaluate('document.querySelector("table.containers").scrollIntoView()');
    await page.screenshot({ path: `${SHOTS}containers.png` });
  }
  assert.deepEqual(errors, [], "no script errors on the page");
});
