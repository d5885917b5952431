/**
 * The one way a primary is put together: `picluster up`, `picluster
 * primary` and the tests all call buildPrimary, so what a primary is given
 * (its token, the agent bundle it serves, the dashboard) is decided here.
 */
import { type Clock, type Config, dataFiles, type Logger, localHttpToken } from "@picluster/common";
import type { Primary } from "@picluster/primary";
import { agentBundlePath, dashboardPath, version as ourVersion } from "./version.js";

export interface BuildPrimaryOptions {
  config: Config;
  /** The resolved data directory. */
  dataDir: string;
  log: Logger;
  /** Where the periodic `alive` record goes; default `log`. */
  livenessLog?: Logger;
  /**
   * With no `[http] token` configured: `create` makes (or reuses) the local
   * token in the data directory (`picluster up`), `read` uses one `up` made
   * (`picluster primary`), `off` runs without one (state-changing calls are refused).
   */
  localToken: "create" | "read" | "off";
  /** Default: this package's version. */
  version?: string;
  clock?: Clock;
  /** The agent bundle served to joining nodes; default the built one, `null` for none. */
  agentBundle?: string | null;
  /** The dashboard served at /; default the built one, `null` for the status page. */
  dashboardDir?: string | null;
}

export interface BuiltPrimary {
  primary: Primary;
  /** The local token in use when `[http] token` is empty, and where it is kept. */
  local?: { token: string; file: string };
}

export async function buildPrimary(opts: BuildPrimaryOptions): Promise<BuiltPrimary> {
  // Loaded here, not at the top: `picluster status` must not pay for the primary's modules.
  const { Primary } = await import("@picluster/primary");
  const { config, dataDir } = opts;
  const token =
    config.http.token !== "" || opts.localToken === "off"
      ? undefined
      : localHttpToken(dataDir, opts.localToken === "create");
  const agentBundle = opts.agentBundle === undefined ? agentBundlePath() : opts.agentBundle;
  const dashboardDir = opts.dashboardDir === undefined ? dashboardPath() : opts.dashboardDir;
  const primary = new Primary({
    config: token === undefined ? config : { ...config, http: { ...config.http, token } },
    dataDir,
    log: opts.log,
    ...(opts.livenessLog === undefined ? {} : { livenessLog: opts.livenessLog }),
    version: opts.version ?? ourVersion(),
    ...(opts.clock === undefined ? {} : { clock: opts.clock }),
    ...(agentBundle === null ? {} : { agentBundle }),
    ...(dashboardDir === null ? {} : { dashboardDir }),
  });
  return {
    primary,
    ...(token === undefined ? {} : { local: { token, file: dataFiles(dataDir).localHttpToken } }),
  };
}
