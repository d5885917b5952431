/**
 * A real Primary in the bench's own process, for the detection and agent
 * footprint runs (where the primary's CPU is not what is measured), with a
 * way to wait for a node's state change and know when it happened.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Config, createLogger, LogOutput, loadConfig } from "@picluster/common";
import { type NodeState, Primary } from "@picluster/primary";
import { preciseNow } from "./ipc.js";

export interface LocalPrimary {
  primary: Primary;
  config: Config;
  port: number;
  /** The HTTP API and dashboard. */
  httpPort: number;
  dataDir: string;
  /**
   * When (epoch ms, sub-ms precision, taken in the synchronous event
   * listener) `name` first went to `to` at or after `since`; waits up to
   * `withinMs` for it.
   */
  waitState(name: string, to: NodeState, since: number, withinMs: number): Promise<number>;
  close(): Promise<void>;
}

export async function startLocalPrimary(
  prepare: (dataDir: string) => void = () => {},
  /** More config flags (`section.key` → value), e.g. a shorter vitals interval. */
  flags: Record<string, string> = {},
): Promise<LocalPrimary> {
  const dataDir = mkdtempSync(join(tmpdir(), "picluster-bench-primary-"));
  let output: LogOutput | undefined;
  let primary: Primary | undefined;
  try {
    prepare(dataDir);
    const { config } = loadConfig({
      env: {},
      flags: {
        "node.data_dir": dataDir,
        "primary.bind_host": "127.0.0.1",
        "primary.port": "0",
        "http.host": "127.0.0.1",
        "http.port": "0",
        ...flags,
      },
      paths: { cwd: dataDir, home: dataDir, uid: process.getuid?.() },
      configPath: undefined,
    });
    output = new LogOutput({
      file: {
        dir: join(dataDir, "log"),
        name: "primary.log",
        maxBytes: config.log.rotate_size,
        keep: config.log.rotate_count,
      },
    });
    const log = createLogger(output, { level: config.log.level, bindings: { role: "primary" } });
    const p = new Primary({
      config,
      dataDir,
      log,
      version: "0.1.0-bench",
      dashboardDir: new URL("../../../packages/dashboard/dist/web", import.meta.url).pathname,
    });
    primary = p;

    const seen = new Map<string, number[]>();
    const waiters = new Set<() => void>();
    p.events.on((e) => {
      if (e.kind !== "node.state") return;
      const at = preciseNow();
      const key = `${e.name}\u0000${e.to}`;
      const times = seen.get(key) ?? [];
      times.push(at);
      seen.set(key, times);
      for (const wake of waiters) wake();
    });
    const { agentPort, httpPort } = await p.start();
    const out = output;

    return {
      primary: p,
      config,
      port: agentPort,
      httpPort,
      dataDir,
      waitState(name, to, since, withinMs) {
        const key = `${name}\u0000${to}`;
        const found = () => seen.get(key)?.find((t) => t >= since);
        return new Promise((resolve, reject) => {
          const now = found();
          if (now !== undefined) return resolve(now);
          const timer = setTimeout(() => {
            waiters.delete(check);
            reject(new Error(`${name} did not become ${to} within ${withinMs} ms`));
          }, withinMs);
          const check = () => {
            const t = found();
            if (t === undefined) return;
            clearTimeout(timer);
            waiters.delete(check);
            resolve(t);
          };
          waiters.add(check);
        });
      },
      async close() {
        await p.close();
        out.close();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await primary?.close();
    output?.close();
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
}
