/**
 * The dashboard's task controls, its own stream's loss and return, the
 * keyboard, and the phone layout: real Chromium against a real primary with
 * real agents running real task processes on loopback.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { waitFor } from "@picluster/common/testing";
import type { Page } from "playwright-core";
import { launch, NO_BROWSER, SHOTS, TAKE_SHOTS, until } from "./support/browser.js";
import { httpPort, scratchDir, startAgent, startPrimary } from "./support/cluster.js";

const TOKEN = "dashboard-test-token";
/** Four lines, half a second apart: long enough to be watched while it runs. */
const COUNT_TASK = [
  "[task.count]",
  "description = Counts to four, slowly",
  "command = /bin/sh -c 'for i in 1 2 3 4; do echo line $i; sleep 0.5; done'",
  "",
].join("\n");

async function text(page: Page, selector: string): Promise<string> {
  return (await page.textContent(selector)) ?? "";
}

test("dashboard tasks - run a task on a selection with live output, confirm before a reboot, ask for the token, and list a node's runs", {
  skip: NO_BROWSER,
}, async (t) => {
  const p = await startPrimary(t, { "http.token": TOKEN, "primary.vitals_interval": "1s" });
  const marker = join(scratchDir(t, "picluster-reboot-"), "rebooted");
  const rebootIni = `[tasks]\nreboot = on\n[task.reboot]\ncommand = /usr/bin/touch ${marker}\n`;
  startAgent(t, p, "pi-a", { "node.labels": "rack=a" }, "pi4", COUNT_TASK + rebootIni);
  startAgent(t, p, "pi-b", { "node.labels": "rack=b" }, "pi4", COUNT_TASK);
  await waitFor(
    () =>
      p.primary.registry.list().filter((n) => n.state === "alive" && n.details?.tasks).length === 2,
    "two agents alive with their tasks",
    15_000,
  );
  const base = `http://127.0.0.1:${httpPort(p)}`;
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(err.message));

  // The link `picluster up` prints hands the token over in the fragment, which then goes.
  await page.goto(`${base}/#token=${TOKEN}`);
  await until(page, 'document.querySelectorAll("[data-node]").length === 2');
  assert.equal(await page.evaluate("location.hash"), "#/");
  assert.equal(await page.evaluate('localStorage.getItem("picluster.token")'), TOKEN);

  // A selection on the cluster page (label rack=a) leads to the task form with its selector.
  await page.selectOption('select[aria-label="Filter by label"]', "rack=a");
  await page.click("text=Run a task on pi-a");
  await until(page, 'location.hash === "#/tasks?on=rack%3Da"');
  await until(page, `document.querySelector('[data-testid="run-preview"]') !== null`);
  await page.selectOption('form[aria-label="Run a task"] select', "count");
  assert.match(await text(page, '[data-testid="run-preview"]'), /Runs on 1 node: pi-a\./);
  await page.fill('form[aria-label="Run a task"] input[type="text"]', "all");
  assert.match(await text(page, '[data-testid="run-preview"]'), /Runs on 2 nodes: pi-a, pi-b\./);

  // Run it: the run page shows each node's output while the task still runs.
  await page.click('[data-testid="run-task"]');
  await until(page, "/^#\\/tasks\\/\\d+$/.test(location.hash)");
  const runId = Number((await page.evaluate<string>("location.hash")).split("/")[2]);
  await until(
    page,
    `document.querySelector('li[data-node="pi-a"] pre')?.textContent.includes("line 1") === true`,
  );
  assert.equal(
    await text(page, '[data-testid="run-status"]'),
    "running",
    "output shown while the task runs",
  );
  assert.doesNotMatch(await text(page, 'li[data-node="pi-a"] pre'), /line 4/);
  await until(page, `document.querySelector('[data-testid="run-status"]')?.textContent === "ok"`);
  for (const name of ["pi-a", "pi-b"]) {
    assert.equal(await page.getAttribute(`li[data-node="${name}"]`, "data-status"), "ok");
    assert.equal(
      await text(page, `li[data-node="${name}"] pre`),
      "line 1\nline 2\nline 3\nline 4\n",
    );
  }
  assert.match(await text(page, ".progress"), /2 of 2 nodes done/);
  // A run's detail and output are the token's holder's only.
  assert.equal((await fetch(`${base}/api/tasks/${runId}`)).status, 401);
  const stored = (await (
    await fetch(`${base}/api/tasks/${runId}`, { headers: { authorization: `Bearer ${TOKEN}` } })
  ).json()) as {
    requestedBy: string;
    nodes: Array<{ status: string }>;
  };
  assert.deepEqual(
    stored.nodes.map((n) => n.status),
    ["ok", "ok"],
  );
  assert.equal(stored.requestedBy, "api-token");

  // A node's page lists its recent runs.
  await page.goto(`${base}/#/node/pi-b`);
  await until(page, `document.querySelector('.runs tr[data-run="${runId}"]') !== null`);
  assert.equal(await page.getAttribute(`.runs tr[data-run="${runId}"]`, "data-status"), "ok");
  assert.match(await text(page, `.runs tr[data-run="${runId}"]`), /count.*exit 0/);

  // A reboot asks first; Cancel starts nothing.
  const runsBefore = p.primary.tasks.list(100).length;
  await page.goto(`${base}/#/tasks?on=pi-a&task=reboot`);
  await until(page, `document.querySelector('[data-testid="run-task"]')?.disabled === false`);
  assert.equal(await text(page, '[data-testid="run-task"]'), "Run reboot");
  await page.click("summary");
  await page.uncheck("text=Wait until each batch is back before the next");
  await page.click('[data-testid="run-task"]');
  await until(page, 'document.querySelector("dialog.confirm")?.open === true');
  assert.match(await text(page, "dialog.confirm"), /Run reboot 1 node\?.*On: pi-a\./s);
  await page.click('dialog.confirm button:has-text("Cancel")');
  await until(page, 'document.querySelector("dialog.confirm") === null');
  assert.equal(p.primary.tasks.list(100).length, runsBefore, "cancel starts nothing");
  // Confirmed, it runs: the node answers, says bye and shows as left.
  await page.click('[data-testid="run-task"]');
  await page.click('[data-testid="confirm-run"]');
  await until(page, `document.querySelector('[data-testid="run-status"]')?.textContent === "ok"`);
  await waitFor(() => existsSync(marker), "the reboot command ran", 5_000);
  await page.goto(`${base}/#/`);
  await until(page, `document.querySelector('[data-node="pi-a"]')?.dataset.state === "left"`);

  // A browser without the token is asked for it; a wrong one is refused, the right one runs.
  const stranger = await browser.newPage();
  stranger.on("pageerror", (err) => errors.push(err.message));
  await stranger.goto(`${base}/#/tasks?on=pi-b&task=count`);
  await until(stranger, `document.querySelector('[data-testid="run-task"]')?.disabled === false`);
  await stranger.click('[data-testid="run-task"]');
  await until(stranger, 'document.querySelector(".token-form") !== null');
  assert.match(await text(stranger, ".token-form"), /bearer token/);
  await stranger.fill('input[aria-label="API token"]', "wrong");
  await stranger.click('.token-form button[type="submit"]');
  // Tried and refused: the form is back, empty.
  await until(stranger, `document.querySelector('input[aria-label="API token"]')?.value === ""`);
  assert.equal(p.primary.tasks.list(100).length, runsBefore + 1, "refused: no run");
  await stranger.fill('input[aria-label="API token"]', TOKEN);
  await stranger.click('.token-form button[type="submit"]');
  await until(stranger, "/^#\\/tasks\\/\\d+$/.test(location.hash)");
  await until(
    stranger,
    `document.querySelector('[data-testid="run-status"]')?.textContent === "ok"`,
  );
  if (TAKE_SHOTS) {
    mkdirSync(SHOTS, { recursive: true });
    await stranger.setViewportSize({ width: 1100, height: 700 });
    await stranger.screenshot({ path: `${SHOTS}task-run.png` });
  }
  assert.deepEqual(errors, [], "no script errors on the page");
});

test("dashboard - the page shows when its stream is lost, greys the tiles out as unreachable after a few seconds, and is live again by itself when the primary is back", {
  skip: NO_BROWSER,
}, async (t) => {
  const first = await startPrimary(t, { "primary.vitals_interval": "1s" });
  const port = httpPort(first);
  startAgent(t, first, "pi-a", { "agent.reconnect_max": "1s" });
  await waitFor(
    () => first.primary.registry.list()[0]?.state === "alive",
    "the agent alive",
    10_000,
  );
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${port}/`);
  const badge = `document.querySelector('[data-testid="stream-status"]')?.textContent`;
  await until(page, `${badge} === "live"`);

  assert.equal(await page.$('[data-testid="unreachable"]'), null);
  await first.close();
  await until(page, `${badge} === "stream lost, reconnecting…"`);
  assert.equal(
    await page.getAttribute('[data-testid="stream-status"]', "class"),
    "stream stream-reconnecting",
  );
  // A few seconds on, the page stops showing the last states as if current.
  await until(page, `document.querySelector('[data-testid="unreachable"]') !== null`);
  assert.match(
    (await page.textContent('[data-testid="unreachable"]')) ?? "",
    /^Primary unreachable since \d\d:\d\d:\d\d/,
  );
  const tile = '[data-node="pi-a"]';
  assert.equal(await page.getAttribute(tile, "data-stale"), "true");
  const since = (await page.textContent(`${tile} .since`)) ?? "";
  assert.match(since, /^unreachable since \d\d:\d\d:\d\d$/);
  assert.doesNotMatch(since, /alive/);

  // The same primary again (its data, its ports): the page comes back without a reload.
  const second = await startPrimary(
    t,
    {
      "primary.vitals_interval": "1s",
      "http.port": String(port),
      "primary.port": String(first.port),
    },
    first.dataDir,
  );
  await until(page, `${badge} === "live"`, 20_000);
  await waitFor(
    () => second.primary.registry.list()[0]?.state === "alive",
    "the agent back",
    20_000,
  );
  await until(page, `document.querySelector('[data-node="pi-a"]')?.dataset.state === "alive"`);
  await until(page, `document.querySelector('[data-testid="unreachable"]') === null`);
  assert.equal(await page.getAttribute(tile, "data-stale"), null);
  assert.match((await page.textContent(`${tile} .since`)) ?? "", /^alive · /);
});

test("dashboard - reachable by keyboard, and laid out for a phone without sideways scrolling", {
  skip: NO_BROWSER,
}, async (t) => {
  const p = await startPrimary(t, { "primary.vitals_interval": "1s" });
  startAgent(t, p, "pi-alpha", { "node.labels": "rack=a" }, "pi4", COUNT_TASK);
  startAgent(t, p, "pi-beta", { "node.labels": "rack=b" }, "pi-zero-2w");
  await waitFor(
    () => p.primary.registry.list().filter((n) => n.state === "alive").length === 2,
    "two agents alive",
    15_000,
  );
  const base = `http://127.0.0.1:${httpPort(p)}`;
  const browser = await launch();
  t.after(() => browser.close());

  // Keyboard: Tab from the top reaches a tile, Enter opens its page.
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${base}/`);
  await until(page, 'document.querySelectorAll("[data-node]").length === 2');
  const stops: string[] = [];
  for (let i = 0; i < 30; i++) {
    await page.keyboard.press("Tab");
    const at = await page.evaluate(
      "(() => { const e = document.activeElement; return e?.dataset?.node ? 'tile:' + e.dataset.node : (e?.getAttribute('aria-label') || e?.textContent?.trim() || e?.tagName || ''); })()",
    );
    stops.push(String(at));
    if (String(at).startsWith("tile:")) break;
  }
  assert.ok(stops.at(-1)?.startsWith("tile:"), `Tab reaches a tile: ${stops.join(" → ")}`);
  for (const expected of ["Cluster", "Tasks", "Events", "Alerts", "Search by name", "Sort"])
    assert.ok(stops.includes(expected), `${expected} on the way: ${stops.join(" → ")}`);
  const focusVisible = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle");
  assert.equal(focusVisible, "solid", "the focused tile is outlined");
  await page.keyboard.press("Enter");
  await until(page, `document.querySelector(".node-page h1") !== null`);

  // A phone: every page fits its width.
  const phone = await browser.newPage({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  });
  for (const [path, ready] of [
    ["#/", 'document.querySelectorAll("[data-node]").length === 2'],
    ["#/node/pi-alpha", 'document.querySelector(".node-page h1") !== null'],
    ["#/tasks", 'document.querySelector("[data-testid=run-preview]") !== null'],
    ["#/events", 'document.querySelector("table, .empty") !== null'],
    ["#/alerts", 'document.querySelector("table.rules") !== null'],
  ] as const) {
    await phone.goto(`${base}/${path}`);
    await until(phone, ready);
    const width = await phone.evaluate<number>("document.documentElement.scrollWidth");
    assert.ok(width <= 390, `${path} is ${width} px wide on a 390 px screen`);
  }
  if (TAKE_SHOTS) {
    mkdirSync(SHOTS, { recursive: true });
    await phone.goto(`${base}/#/`);
    await until(phone, 'document.querySelectorAll("[data-node]").length === 2');
    await new Promise((r) => setTimeout(r, 4_000));
    await phone.screenshot({ path: `${SHOTS}phone-cluster.png` });
  }
});

test("dashboard tasks - a node removed from its page: Cancel keeps it; confirmed, the page asks for the token, removes it and is back on the cluster view without it", {
  skip: NO_BROWSER,
}, async (t) => {
  const p = await startPrimary(t, { "http.token": TOKEN });
  const gone = startAgent(t, p, "pi-gone");
  startAgent(t, p, "pi-stays", {}, "x86-server");
  await waitFor(
    () => p.primary.registry.list().filter((n) => n.state === "alive").length === 2,
    "two agents alive",
    15_000,
  );
  const base = `http://127.0.0.1:${httpPort(p)}`;
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(err.message));
  await page.goto(`${base}/#/`);
  await until(page, 'document.querySelectorAll("[data-node]").length === 2');
  await page.click('[data-node="pi-gone"]');
  await until(page, `document.querySelector('[data-testid="remove-node"]') !== null`);
  assert.equal(await text(page, '[data-testid="remove-node"]'), "Remove pi-gone…");

  // Asked first; Cancel removes nothing.
  await page.click('[data-testid="remove-node"]');
  await until(page, 'document.querySelector("dialog.confirm")?.open === true');
  assert.match(await text(page, "dialog.confirm"), /Remove pi-gone\?.*credential is revoked/s);
  await page.click('dialog.confirm button:has-text("Cancel")');
  await until(page, 'document.querySelector("dialog.confirm") === null');
  assert.equal(p.primary.registry.get(gone.agent.id)?.state, "alive", "cancel removes nothing");

  // Confirmed without a token in this browser: it asks for it, then removes the node.
  await page.click('[data-testid="remove-node"]');
  await page.click('[data-testid="confirm-remove"]');
  await until(page, 'document.querySelector(".token-form") !== null');
  assert.match(await text(page, ".token-form"), /to remove nodes from this browser/);
  assert.equal(p.primary.registry.get(gone.agent.id)?.state, "alive", "refused without the token");
  await page.fill('input[aria-label="API token"]', TOKEN);
  await page.click('.token-form button[type="submit"]');
  await until(page, 'location.hash === "#/"');
  await until(
    page,
    'document.querySelectorAll("[data-node]").length === 1 && document.querySelector(\'[data-node="pi-gone"]\') === null',
  );
  assert.equal(p.primary.registry.get(gone.agent.id), undefined, "removed on the primary");
  // Still gone once the page reads everything again (a reload), and on the events page.
  await page.reload();
  await until(page, 'document.querySelectorAll("[data-node]").length === 1');
  assert.equal(await page.$('[data-node="pi-gone"]'), null);
  await page.goto(`${base}/#/events`);
  await until(page, 'document.body.textContent.includes("node.removed")');
  assert.match(await text(page, "main"), /node\.removed\s*pi-gone by api-token/);
  assert.deepEqual(errors, []);
});
