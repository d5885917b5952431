import { readFileSync } from "node:fs";

// Replaced by the bundler in the agent bundle, where no package.json sits beside the code.
declare const PICLUSTER_BUNDLED_VERSION: string | undefined;

/** The picluster version, from the CLI package's package.json. */
export function version(): string {
  if (typeof PICLUSTER_BUNDLED_VERSION === "string") return PICLUSTER_BUNDLED_VERSION;
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version?: unknown;
  };
  return typeof pkg.version === "string" ? pkg.version : "0.0.0";
}

/** The agent bundle `npm run build` makes, served by the primary to joining nodes. */
export function agentBundlePath(): string {
  return new URL("../agent-bundle.cjs", import.meta.url).pathname;
}

/** The dashboard `npm run build` makes, served by the primary at /. */
export function dashboardPath(): string {
  return new URL("../../../dashboard/dist/web", import.meta.url).pathname;
}
