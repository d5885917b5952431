import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { waitFor } from "@picluster/common/testing";
import { launch, NO_BROWSER, SHOTS, TAKE_SHOTS, until } from "./support/browser.js";
import { httpPort, scratchDir, startAgent, startPrimary } from "./support/cluster.js";

test("dashboard checks - the Checks page lists every node's checks, the ones down first with why; a node page has its check rows and a chart per custom series", {
  skip: NO_BROWSER,
}, async (t) => {
  const web = createServer((_req, res) => res.writeHead(200).end("ok"));
  await new Promise<void>((r) => web.listen(0, "127.0.0.1", r));
  t.after(() => web.close());
  const webPort = (web.address() as AddressInfo).port;
  const dir = scratchDir(t, "picluster-dash-checks-");
  const queue = join(dir, "queue.txt");
  writeFileSync(queue, "queue_depth 12\njobs_running 3\n");

  const p = await startPrimary(t, { "primary.vitals_interval": "1s" });
  const ini = (extra: string[]) =>
    [
      "[check.web]",
      `http = http://127.0.0.1:${webPort}/`,
      "interval = 1s",
      "[check.backup-port]",
      "tcp = 127.0.0.1:1",
      "interval = 1s",
      ...extra,
      "",
    ].join("\n");
  startAgent(
    t,
    p,
    "pi-web",
    {},
    "pi4",
    ini(["[metrics.queue]", `command = /bin/cat ${queue}`, "interval = 1s"]),
  );
  startAgent(t, p, "pi-store", {}, "pi4", ini([]));
  await waitFor(
    () =>
      p.primary.registry.list().filter((n) => (n.vitals?.checks?.length ?? 0) === 2).length === 2,
    "both nodes' checks reported",
    15_000,
  );

  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(err.message));
  const base = `http://127.0.0.1:${httpPort(p)}`;
  await page.goto(`${base}/#/checks`);
  await until(page, 'document.querySelectorAll("table.checks tbody tr").length === 4');
  const rows = await page.$$eval("table.checks tbody tr", (trs) =>
    trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent?.trim() ?? "")),
  );
  // Down first (by node), then up; each with its node, kind and reason.
  assert.deepEqual(
    rows.map((r) => [r[0], r[1], r[2]]),
    [
      ["pi-store", "backup-port tcp", "down"],
      ["pi-web", "backup-port tcp", "down"],
      ["pi-store", "web http", "up"],
      ["pi-web", "web http", "up"],
    ],
  );
  assert.equal(rows[0]?.[4], "ECONNREFUSED");
  assert.match(rows[2]?.[4] ?? "", /^HTTP 200 in [\d.]+ ms$/);
  assert.match((await page.textContent(".checks-page h1")) ?? "", /2 of 4 not up/);
  if (TAKE_SHOTS) {
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: `${SHOTS}checks.png` });
  }

  // A node page: its two check rows, and a chart per custom series with points.
  await page.click('table.checks a:text("pi-web")');
  await until(
    page,
    'document.querySelector(".node-page h1")?.textContent.includes("pi-web") === true',
  );
  await until(page, 'document.querySelectorAll(".node-page table.checks tbody tr").length === 2');
  await until(
    page,
    `[...document.querySelectorAll(".custom-charts figure")].map((f) => f.dataset.metric).join() === "jobs_running,queue_depth"`,
    15_000,
  );
  await until(
    page,
    `Number(document.querySelector('.custom-charts figure[data-metric="queue_depth"]')?.dataset.points ?? 0) > 0`,
    15_000,
  );
  if (TAKE_SHOTS) {
    // Drawn, not only given points: uPlot makes its canvas in an effect after the render.
    await until(
      page,
      `document.querySelectorAll(".custom-charts figure canvas").length === 2`,
      5_000,
    );
    await page.screenshot({ path: `${SHOTS}node-checks-custom.png`, fullPage: true });
  }
  assert.deepEqual(errors, [], "no script errors on the page");
});
