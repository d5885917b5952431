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

/** Poll an expression in the page (not on animation frames: a headless page gets few). */
export async function until(page: Page, expression: string, timeout = 10_000): Promise<void> {
  await page.waitForFunction(expression, undefined, { timeout, polling: 100 });
}
