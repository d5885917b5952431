/**
 * dashboard: the cluster page with 1 000 simulated nodes, in Debian's
 * Chromium (headless, via playwright-core): time from navigation start until
 * every tile is on the page, and the page's JS heap then. The primary runs
 * in this process with the built dashboard; the nodes are the cluster
 * suite's simulator.
 */
import { chromium } from "playwright-core";
import { startSimCluster } from "../cluster/sim-cluster.js";
import { sleep } from "../cluster/stats.js";
import { budget, type SuiteContext, type SuiteReport } from "../harness.js";

/** Design budget (dashboard issue): first render of the cluster page under 1 s on loopback. */
const MAX_FIRST_RENDER_MS = 1_000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

export async function runDashboard(ctx: SuiteContext): Promise<SuiteReport> {
  const nodes = 1_000;
  const rounds = ctx.quick ? 3 : 10;
  const { local, close } = await startSimCluster("dashboard", nodes, ctx.progress);
  const renderMs: number[] = [];
  const heapMiB: number[] = [];
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  try {
    // Every node has sent a sample (10 s vitals), so tiles carry figures.
    await sleep(11_000);
    const { httpPort } = local;
    for (let r = 0; r < rounds; r++) {
      const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
      const cdp = await page.context().newCDPSession(page);
      await cdp.send("Performance.enable");
      await page.goto(`http://127.0.0.1:${httpPort}/`);
      await page.waitForFunction(
        `(document.querySelectorAll("[data-node]").length === ${nodes}) && (window.__rendered ??= performance.now())`,
        undefined,
        { timeout: 30_000, polling: 10 },
      );
      renderMs.push(Number(await page.evaluate("window.__rendered")));
      await sleep(2_000);
      const { metrics } = (await cdp.send("Performance.getMetrics")) as {
        metrics: Array<{ name: string; value: number }>;
      };
      heapMiB.push(
        (metrics.find((m) => m.name === "JSHeapUsedSize")?.value ?? Number.NaN) / 2 ** 20,
      );
      await page.close();
      ctx.progress(`dashboard: round ${r + 1}/${rounds}: ${renderMs.at(-1)?.toFixed(0)} ms`);
    }
  } finally {
    await browser.close();
    await close();
  }
  const p50 = median(renderMs);
  return {
    suite: "dashboard",
    description: "cluster page with 1 000 nodes in headless Chromium: time to every tile, JS heap",
    parameters: { nodes, rounds },
    measurements: [],
    ratios: [],
    budgets: [
      budget(
        "first-render",
        "every tile on the page, from navigation start (median)",
        "<",
        MAX_FIRST_RENDER_MS,
        p50,
        "ms",
      ),
    ],
    notes: [
      "time = performance.now() in the page when the 1 000th tile exists (polled every 10 ms)",
      "heap = JSHeapUsedSize from the DevTools protocol, 2 s after",
    ],
    tables: [
      {
        title: "cluster page, 1 000 nodes",
        columns: ["rounds", "render p50 ms", "render max ms", "heap p50 MiB"],
        rows: [
          [
            String(rounds),
            p50.toFixed(0),
            Math.max(...renderMs).toFixed(0),
            median(heapMiB).toFixed(1),
          ],
        ],
        numeric: [0, 1, 2, 3],
      },
    ],
    data: { renderMs, heapMiB },
  };
}
