/**
 * The dashboard's Jobs page: real Chromium against a real primary with real
 * agents running real task processes on loopback.
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { test } from "node:test";
import { waitFor } from "@picluster/common/testing";
import type { Page } from "playwright-core";
import { launch, NO_BROWSER, SHOTS, TAKE_SHOTS, until } from "./support/browser.js";
import { httpPort, startAgent, startPrimary } from "./support/cluster.js";

const TOKEN = "dashboard-jobs-token";
/** Item 7 fails (exit 1); the others print `ok N`. */
const TASKS = [
  "[tasks]",
  "max_running = 2",
  "[task.check]",
  "description = Fails on 7",
  "command = /bin/sh -c 'test \"$0\" -ne 7 && echo ok $0' {n}",
  "arg.n = integer",
  "[task.nap]",
  "command = /bin/sleep {seconds}",
  "arg.seconds = integer",
  "",
].join("\n");

async function text(page: Page, selector: string): Promise<string> {
  return (await page.textContent(selector)) ?? "";
}

test("dashboard jobs - submit a range from an allowed task, watch it end with per-node bars and the failed item's output; bad items are refused naming why; cancel stops a job", {
  // Without Debian's chromium (which .ci/run installs) there is no browser to drive.
  skip: NO_BROWSER,
}, async (t) => {
  const p = await startPrimary(t, { "http.token": TOKEN });
  startAgent(t, p, "pi-a", {}, "pi4", TASKS);
  startAgent(t, p, "pi-b", {}, "pi4", TASKS);
  await waitFor(
    () =>
      p.primary.registry.list().filter((n) => n.state === "alive" && n.details?.tasks).length === 2,
    "two agents alive with their tasks",
    15_000,
  );
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(err.message));
  await page.goto(`http://127.0.0.1:${httpPort(p)}/#token=${TOKEN}`);
  await until(page, 'document.querySelectorAll("[data-node]").length === 2');

  await page.click('nav a[href="#/jobs"]');
  await until(page, `document.querySelector('form[aria-label="Submit a job"] select') !== null`);
  await page.selectOption('form[aria-label="Submit a job"] select', "check");
  assert.equal(await page.inputValue('input[aria-label="Argument n"]'), "{item}");
  await page.fill('input[aria-label="From"]', "1");
  await page.fill('input[aria-label="To"]', "20");
  await page.click('[data-testid="submit-job"]');
  await until(page, "/^#\\/jobs\\/\\d+$/.test(location.hash)");
  const jobId = Number((await page.evaluate<string>("location.hash")).split("/")[2]);
  await until(
    page,
    `document.querySelector('[data-testid="job-status"]')?.textContent === "failed"`,
  );
  assert.match(
    await text(page, '[data-testid="job-counts"]'),
    /^19 done, 1 failed, 0 running, 0 queued of 20$/,
  );
  // Per-node throughput: both nodes took items, and together all twenty.
  await until(page, `document.querySelectorAll('[data-testid="per-node"] li').length === 2`);
  const perNode = await page.$$eval('[data-testid="per-node"] li', (lis) =>
    lis.map((li) => Number(li.querySelector(".n")?.textContent)),
  );
  assert.equal(
    perNode.reduce((a, b) => a + b, 0),
    20,
  );
  assert.ok(
    perNode.every((n) => n > 0),
    `both nodes took items: ${perNode}`,
  );
  await until(
    page,
    `document.querySelector('[data-testid="failed-items"] li[data-item="6"]') !== null`,
  );
  assert.match(
    await text(page, '[data-testid="failed-items"] li[data-item="6"]'),
    /^7 on pi-[ab]: exit 1/,
  );
  assert.equal(
    (await p.primary.jobs.get(jobId))?.counts.failed,
    1,
    "the page says what the primary has",
  );
  if (TAKE_SHOTS) {
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({
      path: `${SHOTS}jobs.png`,
      clip: { x: 0, y: 0, width: 900, height: 400 },
    });
  }

  // Pasted items the task cannot take: refused before anything runs, saying why.
  await page.click('nav a[href="#/jobs"]');
  await until(page, `document.querySelector('form[aria-label="Submit a job"] select') !== null`);
  await page.selectOption('form[aria-label="Submit a job"] select', "check");
  await page.check('input[type="radio"][name="items"] >> nth=1');
  await page.fill('textarea[aria-label="Items"]', "1\nnot-a-number\n");
  await page.click('[data-testid="submit-job"]');
  await until(page, `document.querySelector('[data-testid="job-problem"]') !== null`);
  assert.match(
    await text(page, '[data-testid="job-problem"]'),
    /item 1 \("not-a-number"\): argument "n" = "not-a-number": expected a whole number/,
  );
  assert.equal(
    await page.evaluate("location.hash"),
    "#/jobs",
    "no job page: nothing was submitted",
  );

  // A long job, cancelled from its page.
  await page.selectOption('form[aria-label="Submit a job"] select', "nap");
  await page.check('input[type="radio"][name="items"] >> nth=0');
  await page.fill('input[aria-label="From"]', "30");
  await page.fill('input[aria-label="To"]', "37");
  await page.fill('input[aria-label="Argument seconds"]', "30");
  await page.click('[data-testid="submit-job"]');
  await until(page, "/^#\\/jobs\\/\\d+$/.test(location.hash)");
  await until(
    page,
    `/ 4 running/.test(document.querySelector('[data-testid="job-counts"]')?.textContent ?? "")`,
  );
  await page.click('[data-testid="cancel-job"]');
  await until(
    page,
    `document.querySelector('[data-testid="job-status"]')?.textContent === "cancelled"`,
  );
  assert.deepEqual(errors, []);
});
