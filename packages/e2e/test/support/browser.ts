/** Debian's Chromium driven by playwright-core, for the dashboard's tests. */
import { existsSync } from "node:fs";
import { type Browser, chromium, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
/** Why a browser test cannot run here, or false. */
export const NO_BROWSER = existsSync(CHROMIUM)
  ? false
  : `no ${CHROMIUM}: .ci/run installs Debian's chromium`;
/** `PICLUSTER_SCREENSHOTS=1` also writes the README's screenshots to docs/screenshots/. */
export const SHOTS = new URL("../../../../../docs/screenshots/", import.meta.url).pathname;
export const TAKE_SHOTS = process.env.PICLUSTER_SCREENSHOTS === "1";

export async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * Poll an expression in the page every 100 ms (not on animation frames: a
 * headless page gets few). Each poll is one page.evaluate, which DevTools
 * runs outside the page's CSP: waitForFunction with a string evals inside
 * the page, which the dashboard's policy (no 'unsafe-eval') rightly refuses.
 */
export async function until(page: Page, expression: string, timeout = 10_000): Promise<void> {
  const end = Date.now() + timeout;
  for (;;) {
    if (await page.evaluate(expression)) return;
    if (Date.now() > end) throw new Error(`page never had ${expression} within ${timeout} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * What goes wrong on a page, as it happens: script errors, console errors
 * (a 404 for a favicon is one) and answers of 400 or more.
 */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(`script: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`console: ${msg.text()}`);
  });
  page.on("response", (res) => {
    if (res.status() >= 400) errors.push(`${res.status()}: ${res.url()}`);
  });
  return errors;
}
