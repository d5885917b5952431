/**
 * `picluster demo cluster` (`npm run demo:cluster`): the scale-out mode on
 * this machine in one command: three nats-servers with JetStream, three
 * primaries (each its own process, so that one can be killed to watch the
 * others take over) and a few agents, on loopback ports chosen free, in a
 * temporary directory. Ctrl-C ends everything and removes the directory.
 *
 * The agents run in this process and report this machine's real figures;
 * each has a root of its own (its own /etc/machine-id, the real /proc and
 * /sys linked in) so that each is a node of its own.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import {
  describeError,
  freePort,
  loadConfig,
  natsServerInstalled,
  silentLogger,
  startNatsServers,
  systemClock,
} from "@picluster/common";
import type { Command } from "commander";
import { type CliIo, EXIT_FAILED, EXIT_OK, EXIT_USAGE } from "../io.js";
import { version } from "../version.js";

const PRIMARIES = ["p1", "p2", "p3"] as const;

interface DemoPrimary {
  name: string;
  agentPort: number;
  httpPort: number;
  child: ChildProcess;
}

/** A root for one demo agent: its own machine-id, this machine's /proc, /sys and /etc files. */
function agentRoot(dir: string): string {
  const root = join(dir, "root");
  mkdirSync(join(root, "etc"), { recursive: true });
  writeFileSync(join(root, "etc", "machine-id"), `${randomBytes(16).toString("hex")}\n`);
  for (const real of ["/proc", "/sys"]) symlinkSync(real, join(root, real.slice(1)));
  for (const file of ["os-release", "passwd", "hostname"])
    if (existsSync(`/etc/${file}`)) symlinkSync(`/etc/${file}`, join(root, "etc", file));
  return root;
}

export function registerDemoCommands(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
): void {
  const demo = program.command("demo").description("try picluster on this machine");
  demo
    .command("cluster")
    .description(
      "the scale-out mode in one command: three nats-servers, three primaries and a few agents on loopback; Ctrl-C ends it",
    )
    .option("--agents <n>", "how many agents (1–20)", "6")
    .addHelpText(
      "after",
      "\nNeeds Debian's nats-server (sudo apt-get install nats-server). Kill a primary (its pid is printed) to watch its agents move to the others and the lease change hands.\n",
    )
    .action(async (opts: { agents: string }) => {
      const agents = Number(opts.agents);
      if (!Number.isInteger(agents) || agents < 1 || agents > 20) {
        io.err(`error: --agents ${opts.agents}: expected a whole number from 1 to 20\n`);
        return setExit(EXIT_USAGE);
      }
      if (!natsServerInstalled()) {
        io.err(
          "error: nats-server is not installed: sudo apt-get install nats-server (Debian's package), then run this again\n",
        );
        return setExit(EXIT_FAILED);
      }
      setExit(await runDemo(io, agents));
    });
}

async function runDemo(io: CliIo, agentCount: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "picluster-demo-"));
  const say = (line: string) => io.out(`${line}\n`);
  const primaries: DemoPrimary[] = [];
  const stops: Array<() => Promise<void>> = [];
  const cleanup = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    say("starting 3 NATS servers with JetStream…");
    const nats = await startNatsServers(3);
    stops.push(() => nats.stop());
    const ports = await Promise.all(
      PRIMARIES.map(async () => ({ agent: await freePort(), http: await freePort() })),
    );
    const bin = process.argv[1] ?? "picluster";
    for (const [i, name] of PRIMARIES.entries()) {
      const { agent, http } = ports[i] as { agent: number; http: number };
      const dataDir = join(dir, name);
      mkdirSync(dataDir, { recursive: true });
      say(`starting primary ${name}…`);
      const child = spawn(process.execPath, [bin, "primary"], {
        env: {
          ...Object.fromEntries(
            Object.entries(process.env).filter(([k]) => !k.startsWith("PICLUSTER_")),
          ),
          PICLUSTER_NODE_DATA_DIR: dataDir,
          PICLUSTER_PRIMARY_PORT: String(agent),
          PICLUSTER_PRIMARY_BIND_HOST: "127.0.0.1",
          PICLUSTER_PRIMARY_ADVERTISE_HOST: "127.0.0.1",
          PICLUSTER_HTTP_PORT: String(http),
          PICLUSTER_CLUSTER_NATS: nats.urls.join(","),
          PICLUSTER_CLUSTER_NAME: name,
          PICLUSTER_LOG_FORMAT: "json",
          PICLUSTER_LOG_LIVENESS_INTERVAL: "1h",
        },
        stdio: ["ignore", "ignore", "pipe"],
      });
      const joined = new Promise<void>((resolve, reject) => {
        createInterface({ input: child.stderr as NodeJS.ReadableStream }).on("line", (line) => {
          if (line.includes('"joined the primaries\' cluster"')) resolve();
        });
        child.once("exit", (code) => reject(new Error(`primary ${name} exited (${code})`)));
      });
      stops.push(
        () =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once("exit", () => resolve());
            child.kill("SIGTERM");
          }),
      );
      primaries.push({ name, agentPort: agent, httpPort: http, child });
      await joined;
    }
    // Join tokens from p1's store (the primaries share them through NATS).
    const { Agent, nodeOsFacts } = await import("@picluster/agent");
    const { credentialStore } = await import("@picluster/primary");
    const p1Config = loadConfig({
      env: {},
      flags: {},
      paths: { cwd: dir, home: dir, uid: process.getuid?.() ?? 1000 },
    }).config;
    const creds = credentialStore(p1Config, join(dir, "p1"), systemClock).load();
    const names = Array.from({ length: agentCount }, (_, i) => `demo-${i + 1}`);
    const tokens = names.map((n) => creds.addToken(n));
    creds.close();
    for (const [i, name] of names.entries()) {
      const agentDir = join(dir, name);
      mkdirSync(agentDir, { recursive: true });
      // Spread over the primaries: each agent starts with a different one.
      const order = PRIMARIES.map((_, k) => primaries[(i + k) % primaries.length] as DemoPrimary);
      const config = loadConfig({
        env: {},
        flags: {
          "agent.primary_host": order.map((p) => `127.0.0.1:${p.agentPort}`).join(","),
          "agent.join_token": tokens[i] as string,
          "agent.reconnect_max": "2s",
          "node.name": name,
        },
        paths: { cwd: agentDir, home: agentDir, uid: 1000 },
      }).config;
      const agent = new Agent({
        config,
        dataDir: agentDir,
        log: silentLogger(),
        version: version(),
        collectors: { root: agentRoot(agentDir), os: { ...nodeOsFacts(), hostname: () => name } },
      });
      agent.start();
      stops.push(() => agent.stop("demo over"));
    }
    say("");
    say(`picluster demo: 3 NATS servers, 3 primaries, ${agentCount} agents (${dir})`);
    for (const p of primaries)
      say(
        `  ${p.name}  dashboard http://127.0.0.1:${p.httpPort}/  agents 127.0.0.1:${p.agentPort}  pid ${p.child.pid}`,
      );
    say("");
    say(
      `Try: picluster cluster status --http-port ${primaries[0]?.httpPort}; kill -9 a primary's pid and watch its agents move.`,
    );
    say("Ctrl-C ends everything.");
    await new Promise<void>((resolve) => {
      const done = () => resolve();
      process.once("SIGINT", done);
      process.once("SIGTERM", done);
    });
    say("stopping…");
    await cleanup();
    return EXIT_OK;
  } catch (err) {
    io.err(`error: the demo could not start: ${describeError(err)}\n`);
    await cleanup();
    return EXIT_FAILED;
  }
}
