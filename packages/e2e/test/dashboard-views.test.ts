/**
 * The dashboard's views of the cluster beyond the tiles: the table, the
 * totals and their chart, a down node's last known figures, adding a node,
 * the alerts page and the node page's charts. Real Chromium against a real
 * primary with real agents on loopback.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { test } from "node:test";
import { waitFor } from "@picluster/common/testing";
import { joinCommand, joinSettings, sha256 } from "@picluster/primary";
import type { Page } from "playwright-core";
import { launch, NO_BROWSER, SHOTS, TAKE_SHOTS, until, watchErrors } from "./support/browser.js";
import { httpPort, spawnAgent, startAgent, startPrimary } from "./support/cluster.js";
import { startReceiver } from "./support/http-receiver.js";

const TOKEN = "dashboard-views-token";
const BUNDLE = new URL("../../../cli/dist/agent-bundle.cjs", import.meta.url).pathname;

async function text(page: Page, selector: string): Promise<string> {
  return ((await page.textContent(selector)) ?? "").trim();
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return typeof address === "object" && address !== null ? address.port : 0;
}

/** The table's node names, top to bottom. */
function rowOrder(page: Page): Promise<string[]> {
  return page.$$eval("table.nodes-table tbody tr", (rows) =>
    rows.map((r) => r.getAttribute("data-node") ?? ""),
  );
}

test("dashboard table - a row per node with CPU, RAM and disk bars, temperature, load, uptime, power flags and labels; sorted by its headers; the choice of view is remembered", {
  skip: NO_BROWSER,
}, async (t) => {
  const p = await startPrimary(t, { "primary.vitals_interval": "1s" });
  startAgent(t, p, "pi-alpha", { "node.labels": "rack=a" }, "pi4");
  startAgent(t, p, "pi-beta", { "node.labels": "rack=b" }, "pi-zero-2w");
  startAgent(t, p, "pi-gamma", {}, "x86-server");
  await waitFor(
    () => p.primary.registry.list().filter((n) => n.vitals !== undefined).length === 3,
    "three agents with a sample",
    15_000,
  );
  const base = `http://127.0.0.1:${httpPort(p)}`;
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = watchErrors(page);
  await page.goto(`${base}/`);
  await until(page, 'document.querySelectorAll(".tile[data-node]").length === 3');
  assert.equal(await page.getAttribute('[data-testid="view-tiles"]', "aria-pressed"), "true");

  await page.click('[data-testid="view-table"]');
  await until(page, 'document.querySelectorAll("table.nodes-table tbody tr").length === 3');
  assert.equal(await page.$(".tile"), null, "the table replaces the tiles");
  assert.equal(await page.getAttribute('[data-testid="view-table"]', "aria-pressed"), "true");
  const cell = (node: string, col: string) => `tr[data-node="${node}"] td[data-col="${col}"]`;
  await until(
    page,
    `/\\d+ %/.test(document.querySelector('${cell("pi-alpha", "cpu")}')?.textContent ?? "")`,
  );

  // Figures as the registry has them, a bar as wide as its figure.
  const alpha = p.primary.registry.list().find((n) => n.name === "pi-alpha");
  const mem = alpha?.vitals
    ? (alpha.vitals.memory.usedBytes / alpha.vitals.memory.totalBytes) * 100
    : NaN;
  assert.equal(await text(page, cell("pi-alpha", "mem")), `${mem.toFixed(0)} %`);
  const barWidth = await page.$eval(
    `${cell("pi-alpha", "mem")} .fill`,
    (el) => (el as unknown as { style: { width: string } }).style.width,
  );
  assert.ok(Math.abs(Number.parseFloat(barWidth) - mem) < 0.5, `bar ${barWidth} for ${mem} %`);
  assert.match(await text(page, cell("pi-alpha", "temp")), /^\d+ °C$/);
  assert.equal(await text(page, cell("pi-gamma", "temp")), "–", "no sensor on the x86 box");
  assert.match(await text(page, cell("pi-alpha", "load")), /^\d+\.\d\d$/);
  assert.match(await text(page, cell("pi-alpha", "uptime")), /^\d+d \d+h$/);
  // The pi4 firmware reports under-voltage and throttling; the x86 box has no such flags.
  assert.match(await text(page, cell("pi-alpha", "power")), /^under-voltage throttled$/);
  assert.equal(await text(page, cell("pi-gamma", "power")), "–");
  assert.equal(await text(page, cell("pi-alpha", "labels")), "rack=a");
  assert.match(await text(page, cell("pi-beta", "state")), /^alive/);

  // Sorted by a click on a header, reversed by a second; a node without a figure goes last.
  assert.deepEqual(await rowOrder(page), ["pi-alpha", "pi-beta", "pi-gamma"]);
  await page.click('th[data-col="name"] button');
  assert.deepEqual(await rowOrder(page), ["pi-gamma", "pi-beta", "pi-alpha"]);
  assert.equal(await page.getAttribute('th[data-col="name"]', "aria-sort"), "descending");
  await page.click('th[data-col="temp"] button');
  const temps = p.primary.registry
    .list()
    .filter((n) => n.vitals?.temps.length)
    .sort(
      (a, b) =>
        Math.max(...(b.vitals?.temps.map((x) => x.celsius) ?? [])) -
        Math.max(...(a.vitals?.temps.map((x) => x.celsius) ?? [])),
    )
    .map((n) => n.name);
  assert.deepEqual(await rowOrder(page), [...temps, "pi-gamma"]);
  assert.equal(await page.getAttribute('th[data-col="temp"]', "aria-sort"), "descending");
  assert.equal(await page.getAttribute('th[data-col="name"]', "aria-sort"), "none");

  if (TAKE_SHOTS) {
    await page.click('th[data-col="name"] button');
    await new Promise((r) => setTimeout(r, 3_000));
    mkdirSync(SHOTS, { recursive: true });
    for (const scheme of ["light", "dark"] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.screenshot({ path: `${SHOTS}table-${scheme}.png` });
    }
    await page.emulateMedia({ colorScheme: "light" });
  }

  // Remembered in this browser: a reload shows the table again, and the tiles once chosen.
  await page.reload();
  await until(page, 'document.querySelectorAll("table.nodes-table tbody tr").length === 3');
  await page.click('[data-testid="view-tiles"]');
  await until(page, 'document.querySelectorAll(".tile[data-node]").length === 3');
  await page.reload();
  await until(page, 'document.querySelectorAll(".tile[data-node]").length === 3');
  assert.equal(await page.$("table.nodes-table"), null);

  // On a phone the table fits the screen's width.
  const phone = await browser.newPage({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  });
  await phone.goto(`${base}/`);
  await until(phone, 'document.querySelectorAll(".tile[data-node]").length === 3');
  await phone.click('[data-testid="view-table"]');
  await until(phone, 'document.querySelectorAll("table.nodes-table tbody tr").length === 3');
  const width = await phone.evaluate<number>("document.documentElement.scrollWidth");
  assert.ok(width <= 390, `the table view is ${width} px wide on a 390 px screen`);
  if (TAKE_SHOTS) await phone.screenshot({ path: `${SHOTS}phone-table.png` });
  assert.deepEqual(errors, []);
});

test("dashboard - totals and a chart of the cluster since the page opened; a killed node's figures are shown as last known with their age; the page loads without a console error (favicon)", {
  skip: NO_BROWSER,
}, async (t) => {
  const p = await startPrimary(t, { "primary.vitals_interval": "1s" });
  startAgent(t, p, "pi-alpha", {}, "pi4");
  startAgent(t, p, "pi-beta", {}, "pi-zero-2w");
  const doomed = spawnAgent(t, p, "pi-gamma");
  await waitFor(
    () =>
      p.primary.registry.list().filter((n) => n.state === "alive" && n.details !== undefined)
        .length === 3,
    "three agents alive with their details",
    15_000,
  );
  const base = `http://127.0.0.1:${httpPort(p)}`;
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = watchErrors(page);
  await page.goto(`${base}/`);
  await until(page, 'document.querySelectorAll("[data-node]").length === 3');

  // The icon is one of the build's files, served by the primary.
  const icon = await page.getAttribute('link[rel="icon"]', "href");
  assert.ok(icon, "the page names an icon");
  const served = await fetch(new URL(icon, `${base}/`));
  assert.equal(served.status, 200);
  assert.equal(served.headers.get("content-type"), "image/svg+xml");
  assert.match(await served.text(), /^<svg/);

  // Totals, from the nodes' own details.
  const nodes = p.primary.registry.list();
  const cores = nodes.reduce((sum, n) => sum + (n.details?.cpu.cores ?? 0), 0);
  await until(
    page,
    `document.querySelector('[data-testid="total-cores"]')?.textContent === "${cores}"`,
  );
  assert.match(await text(page, '[data-testid="total-nodes"]'), /^3 alive$/);
  assert.match(
    await text(page, '[data-testid="total-memory"]'),
    /^[\d.]+ [KMGT]iB of [\d.]+ [KMGT]iB$/,
  );
  assert.match(await text(page, '[data-testid="total-cpu"]'), /^\d+ %$/);
  // The chart gathers a point per vitals batch.
  await until(
    page,
    `Number(document.querySelector('[data-testid="cluster-chart"]')?.dataset.points ?? 0) >= 3`,
  );
  assert.ok(await page.$('[data-testid="cluster-chart"] canvas'), "uPlot drew the chart");
  assert.equal(await text(page, '[data-testid="chart-alive"]'), "3");
  // Killed: its tile keeps its figures, dimmed and said to be last known, with their age.
  const gamma = '[data-node="pi-gamma"]';
  assert.equal(await page.$(`${gamma} [data-testid="last-seen"]`), null, "alive: current figures");
  doomed.kill("SIGKILL");
  await until(page, `document.querySelector('${gamma}')?.dataset.state === "down"`);
  await until(page, `document.querySelector('${gamma} [data-testid="last-seen"]') !== null`);
  assert.match(
    await text(page, `${gamma} [data-testid="last-seen"]`),
    /^last seen (\d+m )?\d+s ago$/,
  );
  assert.ok(await page.$(`${gamma} .figures.last-known`), "figures dimmed");
  assert.match(await text(page, `${gamma} .seen`), /^last known/);
  assert.match(await text(page, `${gamma} .figures`), /CPU\s*\d+ %/, "its last figures stay");
  await until(
    page,
    `document.querySelector('[data-testid="total-nodes"]')?.textContent === "2 alive, 1 down"`,
  );
  await until(page, `document.querySelector('[data-testid="chart-alive"]')?.textContent === "2"`);
  // The table says the same.
  await page.click('[data-testid="view-table"]');
  await until(page, `document.querySelector('tr${gamma}') !== null`);
  assert.match(
    await text(page, `tr${gamma} td[data-col="state"]`),
    /down.*last seen (\d+m )?\d+s ago/,
  );
  assert.ok(await page.$(`tr${gamma}.last-known`));
  assert.deepEqual(errors, [], "no console errors, no failed requests");
});

test("dashboard - Add node asks for the token, shows the line `picluster node add` prints with a copy button, and the node appears live when an agent joins with it", {
  skip: NO_BROWSER,
}, async (t) => {
  // A fixed HTTP port: the one-line install names it (with port 0 it would say :0).
  const p = await startPrimary(
    t,
    {
      "http.token": TOKEN,
      "primary.advertise_host": "127.0.0.1",
      "http.port": String(await freePort()),
    },
    undefined,
    existsSync(BUNDLE) ? BUNDLE : undefined,
  );
  const base = `http://127.0.0.1:${httpPort(p)}`;
  const browser = await launch();
  t.after(() => browser.close());
  const context = await browser.newContext({
    viewport: { width: 1280, height: 900 },
    permissions: ["clipboard-read", "clipboard-write"],
  });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(err.message));
  await page.goto(`${base}/`);
  await until(page, 'document.querySelector(".empty") !== null');

  await page.click('[data-testid="add-node"]');
  await until(page, 'document.querySelector("dialog.add-node")?.open === true');
  // A name the primary refuses: its reason is shown, after the token is asked for.
  await page.fill('input[aria-label="Node name"]', "bad name");
  await page.click('[data-testid="create-join-token"]');
  await until(page, 'document.querySelector("dialog.add-node .token-form") !== null');
  assert.match(await text(page, "dialog.add-node .token-form"), /to add nodes from this browser/);
  await page.fill('dialog.add-node input[aria-label="API token"]', TOKEN);
  await page.click('dialog.add-node .token-form button[type="submit"]');
  await until(page, 'document.querySelector("dialog.add-node .error") !== null');
  assert.match(await text(page, "dialog.add-node .error"), /name/);

  await page.fill('input[aria-label="Node name"]', "pi-new");
  await page.click('[data-testid="create-join-token"]');
  await until(page, `document.querySelector('[data-testid="join-manual"]') !== null`);
  const manual = await text(page, '[data-testid="join-manual"]');
  const m =
    /^printf '%s\\n' (pcj1\.\S+) \| picluster agent --agent-primary-host 127\.0\.0\.1 --agent-primary-port (\d+) --agent-join-token-file -$/.exec(
      manual,
    );
  assert.ok(m, `the line to paste where picluster is installed: ${manual}`);
  const token = m[1] as string;
  assert.equal(Number(m[2]), p.port);
  if (existsSync(BUNDLE)) {
    // The one-line install, exactly as `picluster node add` prints it.
    const expected = joinCommand(
      joinSettings(p.config, p.port, sha256(readFileSync(BUNDLE))),
      token,
      "pi-new",
    );
    assert.equal(await text(page, '[data-testid="join-command"]'), expected);
  }
  await page.click('[data-testid="copy-join-manual"]');
  await until(
    page,
    `document.querySelector('[data-testid="copy-join-manual"]')?.textContent === "Copied"`,
  );
  assert.equal(await page.evaluate("navigator.clipboard.readText()"), manual);
  assert.match(await text(page, '[data-testid="join-status"]'), /Waiting for pi-new to join/);
  if (TAKE_SHOTS) {
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: `${SHOTS}add-node.png` });
  }

  // A real agent joins with that token: the dialog says so and the tile is there, live.
  startAgent(t, { port: p.port }, "pi-new", { "agent.join_token": token });
  await until(
    page,
    `/pi-new joined/.test(document.querySelector('[data-testid="join-status"]')?.textContent ?? "")`,
    15_000,
  );
  await page.click('dialog.add-node button:has-text("Close")');
  await until(page, 'document.querySelector("dialog.add-node") === null');
  await until(page, `document.querySelector('[data-node="pi-new"]')?.dataset.state === "alive"`);
  assert.equal(p.primary.registry.list()[0]?.name, "pi-new");
  assert.deepEqual(errors, []);
});

test("dashboard alerts - the Alerts page shows the rules and channels in effect and what fires, and sends a test message per channel saying whether it was delivered", {
  skip: NO_BROWSER,
}, async (t) => {
  const hook = await startReceiver(t);
  const dead = await startReceiver(t, () => ({ status: 503, body: "down for maintenance" }));
  const ini = [
    "[channel.hook]",
    "type = webhook",
    `url = ${hook.url}/hook`,
    "[channel.dead]",
    "type = webhook",
    `url = ${dead.url}/hook`,
    "retries = 0",
    "[alert.hot]",
    "when = temp > 75",
    "for = 30s",
    "channels = hook",
    "",
  ].join("\n");
  const p = await startPrimary(
    t,
    { "http.token": TOKEN, "primary.vitals_interval": "1s" },
    undefined,
    undefined,
    ini,
  );
  startAgent(t, p, "pi-volt", {}, "pi4");
  await waitFor(
    () => p.primary.alerts.states().some((s) => s.state === "firing"),
    "the under-voltage alert firing",
    15_000,
  );
  const base = `http://127.0.0.1:${httpPort(p)}`;
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(err.message));
  await page.goto(`${base}/`);
  await page.click('nav a:has-text("Alerts")');
  await until(page, 'location.hash === "#/alerts"');
  await until(page, 'document.querySelector("table.rules tr[data-rule=hot]") !== null');
  assert.equal(await page.getAttribute('nav a:has-text("Alerts")', "aria-current"), "page");

  // The rules in effect, stock and our own, in words.
  assert.match(await text(page, "tr[data-rule=hot]"), /temp > 75.*30s.*warning.*hook/s);
  assert.match(await text(page, "tr[data-rule=under_voltage]"), /stock/);
  assert.match(await text(page, "tr[data-rule=under_voltage]"), /1 firing/);
  assert.match(
    await text(page, '[data-testid="firing"]'),
    /pi-volt reports under-voltage: its power supply is too weak/,
  );
  assert.deepEqual(
    await page.$$eval("li[data-channel]", (els) =>
      els.map((e) => `${e.getAttribute("data-channel")}: ${e.querySelector(".type")?.textContent}`),
    ),
    ["hook: webhook", "dead: webhook"],
  );

  // A test message needs the token; it is asked for, then the message goes and the page says so.
  await page.click('li[data-channel="hook"] button:has-text("Send a test message")');
  await until(page, 'document.querySelector(".token-form") !== null');
  await page.fill('input[aria-label="API token"]', TOKEN);
  await page.click('.token-form button[type="submit"]');
  await until(
    page,
    `/^Delivered/.test(document.querySelector('li[data-channel="hook"] [data-testid="test-result"]')?.textContent ?? "")`,
  );
  await waitFor(() => hook.requests.length >= 1, "the test message", 5_000);
  assert.match(hook.requests.at(-1)?.body ?? "", /"status":"test"/);
  await page.click('li[data-channel="dead"] button:has-text("Send a test message")');
  await until(
    page,
    `/^Not delivered/.test(document.querySelector('li[data-channel="dead"] [data-testid="test-result"]')?.textContent ?? "")`,
  );
  assert.match(await text(page, 'li[data-channel="dead"] [data-testid="test-result"]'), /503/);
  if (TAKE_SHOTS) {
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: `${SHOTS}alerts.png`, fullPage: true });
  }
  assert.deepEqual(errors, []);
});

test("dashboard charts - a metric without a sensor says so instead of an empty plot, the x axis spans the chosen range, and a near-constant axis has distinct labels", {
  skip: NO_BROWSER,
}, async (t) => {
  const p = await startPrimary(t, { "primary.vitals_interval": "1s" });
  startAgent(t, p, "pi-x86", {}, "x86-server");
  await waitFor(
    () => p.primary.registry.list()[0]?.vitals !== undefined,
    "the agent's first sample",
    15_000,
  );
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(err.message));
  await page.goto(`http://127.0.0.1:${httpPort(p)}/#/node/pi-x86`);
  const fig = (metric: string) => `figure[data-metric="${metric}"]`;
  await until(
    page,
    `Number(document.querySelector('${fig("CPU")}')?.dataset.points ?? 0) >= 2 && document.querySelector('${fig("Disk")} [data-y-ticks]') !== null`,
    15_000,
  );

  // No thermal zone on this box: said in words, no plot.
  assert.equal(await text(page, `${fig("Temperature")} .empty`), "No sensor on this node");
  assert.equal(await page.$(`${fig("Temperature")} canvas`), null);

  // The x scale spans the hour asked for, however short the node's history.
  const hour = await page.$eval(`${fig("CPU")} [data-x-from]`, (el) => {
    const d = (el as unknown as { dataset: Record<string, string> }).dataset;
    return { from: Number(d.xFrom) * 1000, to: Number(d.xTo) * 1000 };
  });
  assert.ok(Math.abs(hour.to - hour.from - 3_600_000) < 60_000, JSON.stringify(hour));
  assert.ok(Math.abs(hour.to - Date.now()) < 30_000, "it ends now");

  // The disk barely moves: its axis still names distinct values.
  const ticks = JSON.parse(
    (await page.getAttribute(`${fig("Disk")} [data-y-ticks]`, "data-y-ticks")) ?? "[]",
  ) as string[];
  assert.ok(ticks.length >= 2, `ticks: ${ticks.join(", ")}`);
  assert.equal(new Set(ticks).size, ticks.length, `distinct ticks: ${ticks.join(", ")}`);

  assert.deepEqual(errors, []);
});
