/**
 * A real Primary in this process with `count` simulated agents connected to
 * it (the simulator in a child process): the setup the fan-out and dashboard
 * suites share. `close()` ends both and removes the scratch directory.
 */
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { issueCredentials } from "./credentials.js";
import type { SimCommands } from "./ipc.js";
import { SIM_SCRIPT } from "./load.js";
import { type LocalPrimary, startLocalPrimary } from "./local-primary.js";
import { Child } from "./rpc.js";

export interface SimCluster {
  local: LocalPrimary;
  /** The simulator process, for commands beyond connecting (offer-task, crash…). */
  sim: Child<SimCommands>;
  close(): Promise<void>;
}

export async function startSimCluster(
  name: string,
  count: number,
  progress: (message: string) => void,
): Promise<SimCluster> {
  const dir = mkdtempSync(join(tmpdir(), `picluster-bench-${name}-`));
  const creds = issueCredentials(dir, count, progress);
  const local = await startLocalPrimary((d) =>
    copyFileSync(creds.storeFile, join(d, "picluster.db")),
  );
  const sim = new Child<SimCommands>(`simulator (${name})`, SIM_SCRIPT, []);
  const close = async () => {
    await sim.close("close", {});
    await local.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    progress(`${name}: connecting ${count} simulated agents`);
    const c = await sim.call(
      "connect",
      {
        host: "127.0.0.1",
        port: local.port,
        credsFile: creds.simFile,
        first: 0,
        count,
        // Under the primary's per-address cap of 64 connections in handshake.
        concurrency: 32,
        attemptTimeoutMs: 10_000,
        attempts: 3,
        deadlineMs: 90_000,
        spreadOver: count,
      },
      120_000,
    );
    if (c.connected !== count) throw new Error(`only ${c.connected} of ${count} agents connected`);
  } catch (err) {
    await close();
    throw err;
  }
  return { local, sim, close };
}
