/**
 * The dashboard in real Chromium (Debian's /usr/bin/chromium, installed by
 * .ci/run) driven by playwright-core, against a real primary with real
 * agents on loopback.
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { test } from "node:test";
import { waitFor } from "@picluster/common/testing";
import type { Page } from "playwright-core";
import { launch, NO_BROWSER, SHOTS, TAKE_SHOTS, until } from "./support/browser.js";
import { httpPort, spawnAgent, startAgent, startPrimary } from "./support/cluster.js";

async function tiles(page: Page): Promise<Record<string, string>> {
  return page.$$eval("[data-node]", (els) =>
    Object.fromEntries(
      els.map((e) => [e.getAttribute("data-node") ?? "", e.getAttribute("data-state") ?? ""]),
    ),
  );
}

test("dashboard - tiles for every agent, a killed agent turns down without a reload, search and filters work, a node page has charts with points", {
  skip: NO_BROWSER,
}, async (t) => {
  const p = await startPrimary(t, { "primary.vitals_interval": "1s" });
  startAgent(t, p, "pi-alpha", { "node.labels": "rack=a" });
  startAgent(t, p, "pi-beta", { "node.labels": "rack=b" });
  const doomed = spawnAgent(t, p, "pi-gamma");
  await waitFor(
    () => p.primary.registry.list().filter((n) => n.state === "alive").length === 3,
    "three agents alive",
    15_000,
  );
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(err.message));
  await page.goto(`http://127.0.0.1:${httpPort(p)}/`);

  await until(page, 'document.querySelectorAll("[data-node]").length === 3');
  assert.deepEqual(await tiles(page), {
    "pi-alpha": "alive",
    "pi-beta": "alive",
    "pi-gamma": "alive",
  });
  await until(
    page,
    `document.querySelector('[data-testid="stream-status"]')?.textContent === "live"`,
  );
  // The pi4 fixture's firmware reports under-voltage: the stock rule fires at once, on the tile and above.
  await until(
    page,
    `document.querySelector('[data-node="pi-alpha"] [data-testid="tile-alerts"]')?.textContent.includes("pi-alpha reports under-voltage") === true`,
  );
  assert.match(
    (await page.textContent('[data-testid="alert-banner"]')) ?? "",
    /2 alerts firing.*pi-alpha reports under-voltage/s,
  );
  assert.equal(await page.$('[data-node="pi-gamma"] [data-testid="tile-alerts"]'), null);

  // Killed: the tile turns to down, live, with no reload.
  const killedAt = Date.now();
  doomed.kill("SIGKILL");
  await until(page, `document.querySelector('[data-node="pi-gamma"]')?.dataset.state === "down"`);
  const downAfterMs = Date.now() - killedAt;
  assert.ok(downAfterMs < 5_000, `down on the page after ${downAfterMs} ms`);
  assert.equal(await page.textContent('[data-testid="count-down"] b'), "1");

  // Search by name, filter by state and by label.
  await page.fill('input[type="search"]', "beta");
  assert.deepEqual(Object.keys(await tiles(page)), ["pi-beta"]);
  await page.fill('input[type="search"]', "");
  await page.click('[data-testid="count-down"]');
  assert.deepEqual(Object.keys(await tiles(page)), ["pi-gamma"]);
  await page.click('[data-testid="count-down"]');
  await page.selectOption('select[aria-label="Filter by label"]', "rack=a");
  assert.deepEqual(Object.keys(await tiles(page)), ["pi-alpha"]);
  await page.selectOption('select[aria-label="Filter by label"]', "");

  if (TAKE_SHOTS) {
    // Let a few samples arrive, so the pictures show figures and sparklines.
    await new Promise((r) => setTimeout(r, 8_000));
    mkdirSync(SHOTS, { recursive: true });
    for (const scheme of ["light", "dark"] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.screenshot({ path: `${SHOTS}cluster-${scheme}.png` });
    }
  }

  // A node page: details, and charts whose series have points.
  await page.click('[data-node="pi-alpha"]');
  await until(page, `document.querySelector(".node-page h1") !== null`);
  assert.match((await page.textContent(".node-page h1")) ?? "", /pi-alpha/);
  await until(
    page,
    `Number(document.querySelector('figure[data-metric="CPU"]')?.getAttribute("data-points") ?? 0) > 0`,
    15_000,
  );
  // The points come first (a prop); uPlot makes its canvas in an effect after that render.
  await until(page, `document.querySelector('figure[data-metric="CPU"] canvas') !== null`, 5_000);
  assert.ok(await page.$('figure[data-metric="CPU"] canvas'), "uPlot drew a canvas");
  if (TAKE_SHOTS) {
    await new Promise((r) => setTimeout(r, 2_000));
    for (const scheme of ["light", "dark"] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.screenshot({ path: `${SHOTS}node-${scheme}.png`, fullPage: true });
    }
  }
  assert.deepEqual(errors, [], "no script errors on the page");
});

test("dashboard - served from the primary: index revalidated, hashed assets cached for a year, 304 on a matching etag, nothing from outside", async (t) => {
  // A sample a second: the default 10 s interval would sit on the wait's edge.
  const p = await startPrimary(t, { "primary.vitals_interval": "1s" });
  const base = `http://127.0.0.1:${httpPort(p)}`;
  const index = await fetch(`${base}/`);
  assert.equal(index.status, 200);
  assert.equal(index.headers.get("cache-control"), "no-cache");
  const html = await index.text();
  const assets = [...html.matchAll(/(?:src|href)="\.\/(assets\/[^"]+)"/g)].map((m) => m[1]);
  assert.ok(assets.length >= 2, `script and stylesheet: ${assets.join(", ")}`);
  assert.doesNotMatch(html, /https?:\/\//, "no request leaves the machine");
  for (const asset of assets) {
    const res = await fetch(`${base}/${asset}`);
    assert.equal(res.status, 200, asset);
    assert.equal(res.headers.get("cache-control"), "public, max-age=31536000, immutable");
    const body = await res.text();
    assert.doesNotMatch(
      body,
      /https?:\/\/(?!www\.w3\.org)[a-z]/i,
      `${asset} loads nothing from outside`,
    );
    const etag = res.headers.get("etag") ?? "";
    assert.equal(
      (await fetch(`${base}/${asset}`, { headers: { "if-none-match": etag } })).status,
      304,
    );
  }
  assert.equal((await fetch(`${base}/assets/nope.js`)).status, 404);

  // The tiles' data: figures, not whole vitals.
  startAgent(t, p, "pi-sum");
  await waitFor(() => p.primary.registry.list()[0]?.vitals !== undefined, "a sample", 10_000);
  const summary = (await (await fetch(`${base}/api/nodes?view=summary`)).json()) as {
    nodes: Array<{
      name: string;
      vitals: unknown;
      figures: Record<string, number | null>;
      uptimeS: number;
    }>;
  };
  assert.equal(summary.nodes[0]?.name, "pi-sum");
  assert.equal(summary.nodes[0]?.vitals, null);
  assert.equal(typeof summary.nodes[0]?.figures.cpu, "number");
  assert.equal(typeof summary.nodes[0]?.figures.temp, "number");
  assert.equal((await fetch(`${base}/api/nodes?view=everything`)).status, 400);
});
