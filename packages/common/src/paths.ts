import { homedir } from "node:os";
import { join, resolve } from "node:path";

/** Facts about the process that decide default locations; injected for tests. */
export interface PathContext {
  cwd: string;
  home: string;
  /** Effective uid, or undefined off POSIX. */
  uid: number | undefined;
}

export function processPathContext(): PathContext {
  return { cwd: process.cwd(), home: homedir(), uid: process.getuid?.() };
}

/** Where a config file is looked for when neither --config nor PICLUSTER_CONFIG names one. */
export function configSearchPaths(ctx: PathContext): string[] {
  return [join(ctx.cwd, "picluster.ini"), "/etc/picluster/picluster.ini"];
}

/**
 * The data directory: the configured one, else /var/lib/picluster for root
 * (a service), else ~/.local/share/picluster (someone trying it out).
 */
export function resolveDataDir(configured: string, ctx: PathContext): string {
  if (configured !== "") return resolve(ctx.cwd, configured);
  if (ctx.uid === 0) return "/var/lib/picluster";
  return join(ctx.home, ".local", "share", "picluster");
}

/** The log directory: the configured one, else `log/` inside the data directory. */
export function resolveLogDir(configured: string, dataDir: string, ctx: PathContext): string {
  return configured !== "" ? resolve(ctx.cwd, configured) : join(dataDir, "log");
}
