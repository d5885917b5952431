/**
 * NATS servers with JetStream on this machine, for the scale-out mode's
 * tests and its local demo (`picluster demo cluster`): Debian's
 * `nats-server`, `n` servers routed to each other on loopback ports chosen
 * free, each with its own store directory under one temporary directory.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface NatsServer {
  name: string;
  clientPort: number;
  /** Its monitoring endpoint (/jsz, /varz). */
  monitorPort: number;
  url: string;
  process: ChildProcess;
  /** Output so far (for a failing test's message). */
  output(): string;
}

export interface NatsCluster {
  servers: NatsServer[];
  urls: string[];
  /** Kill every server and remove their stores. */
  stop(): Promise<void>;
  /** SIGKILL one server. */
  kill(index: number): Promise<void>;
  /** Start a killed server again on the same ports and store. */
  restart(index: number): Promise<void>;
}

/** Whether `nats-server` is on the PATH. */
/**
 * node:child_process, loaded when first used: this module is in common's
 * index, which the agent loads, and child_process costs the agent ~1 MiB of
 * its memory budget for nothing (bench/README.md, suite footprint).
 */
function childProcess(): typeof import("node:child_process") {
  return createRequire(import.meta.url)(
    "node:child_process",
  ) as typeof import("node:child_process");
}

export function natsServerInstalled(): boolean {
  return childProcess().spawnSync("nats-server", ["--version"]).status === 0;
}

/** A loopback port nothing listens on now (for servers a test or the demo starts). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** JetStream is on, and in a cluster of `n` a meta leader is known. */
async function jetStreamReady(server: NatsServer, n: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${server.monitorPort}/jsz`);
    if (!res.ok) return false;
    const jsz = (await res.json()) as { disabled?: boolean; meta_cluster?: { leader?: string } };
    if (jsz.disabled === true) return false;
    return n === 1 || (jsz.meta_cluster?.leader ?? "") !== "";
  } catch {
    return false;
  }
}

export async function startNatsServers(n = 3): Promise<NatsCluster> {
  const dir = mkdtempSync(join(tmpdir(), "picluster-nats-"));
  const ports = await Promise.all(
    Array.from({ length: n }, async () => ({
      client: await freePort(),
      route: await freePort(),
      monitor: await freePort(),
    })),
  );
  const servers: NatsServer[] = [];
  const launch = (i: number): NatsServer => {
    const p = ports[i] as { client: number; route: number; monitor: number };
    const args = [
      "-a",
      "127.0.0.1",
      "-p",
      String(p.client),
      "-m",
      String(p.monitor),
      "--server_name",
      `s${i + 1}`,
      "-js",
      "-sd",
      join(dir, `s${i + 1}`),
    ];
    if (n > 1)
      args.push(
        "--cluster_name",
        "picluster-test",
        "--cluster",
        `nats://127.0.0.1:${p.route}`,
        "--routes",
        ports
          .filter((_, j) => j !== i)
          .map((o) => `nats://127.0.0.1:${o.route}`)
          .join(","),
      );
    const child = childProcess().spawn("nats-server", args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const keep = (b: Buffer) => {
      out = (out + b.toString()).slice(-20_000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    return {
      name: `s${i + 1}`,
      monitorPort: p.monitor,
      clientPort: p.client,
      url: `nats://127.0.0.1:${p.client}`,
      process: child,
      output: () => out,
    };
  };
  // Up means JetStream answers: in a cluster, once its servers have elected a meta leader.
  const up = async (server: NatsServer) => {
    for (let waited = 0; !(await jetStreamReady(server, n)); waited += 100) {
      if (server.process.exitCode !== null || waited > 30_000)
        throw new Error(`nats-server ${server.name} did not start JetStream:\n${server.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stop = (server: NatsServer) =>
    new Promise<void>((resolve) => {
      if (server.process.exitCode !== null || server.process.signalCode !== null) return resolve();
      server.process.once("exit", () => resolve());
      server.process.kill("SIGKILL");
    });
  const stopAll = async () => {
    await Promise.all(servers.map(stop));
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < n; i++) servers.push(launch(i));
  try {
    await Promise.all(servers.map(up));
  } catch (err) {
    await stopAll();
    throw err;
  }
  return {
    servers,
    urls: servers.map((s) => s.url),
    stop: stopAll,
    kill: (i) => stop(servers[i] as NatsServer),
    async restart(i) {
      await stop(servers[i] as NatsServer);
      servers[i] = launch(i);
      await up(servers[i] as NatsServer);
    },
  };
}
