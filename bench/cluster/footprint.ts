/**
 * What one real agent costs its node: the real CLI (`picluster agent`),
 * configured only through PICLUSTER_* environment variables, joined to a
 * primary in this process with a fresh token, reading this machine's /proc
 * and /sys at the default intervals (1 s heartbeats, 10 s vitals). When it
 * is built, the single-file bundle that nodes install (agent-bundle.cjs)
 * runs beside it the same way, joined to a second primary (both read the
 * same /etc/machine-id, so one primary would take them for one node). RSS and CPU ticks are read
 * from /proc/<pid> every few seconds; a bare `node -e
 * "setInterval(()=>{},1000)"` is sampled alongside for comparison, and the
 * floor of any agent the design allows: the same with one TLS-PSK socket and
 * a heartbeat line written on it each second.
 */
import { type ChildProcess, spawn } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer, type Server as TlsServer } from "node:tls";
import { AGENT_NODE_FLAGS } from "@picluster/common";
import { IMAGE, NO_PODMAN, startPodman } from "@picluster/common/testing";
import { preciseNow } from "./ipc.js";
import { type LocalPrimary, startLocalPrimary } from "./local-primary.js";
import { clockTicksPerSecond, readProcRss, readProcTicks, sleep } from "./stats.js";

export const CLI_SCRIPT = new URL("../../../packages/cli/bin/picluster.js", import.meta.url)
  .pathname;
/** What a node installs (`npm run build` makes it; `tsc -b` alone does not). */
export const BUNDLE_SCRIPT = new URL("../../../packages/cli/dist/agent-bundle.cjs", import.meta.url)
  .pathname;

export interface FootprintOptions {
  warmupMs: number;
  windowMs: number;
  sampleMs: number;
}

export interface ProcessFootprint {
  rssMedianBytes: number;
  rssMaxBytes: number;
  /** Peak RSS over the whole life (VmHWM), start-up included. */
  hwmBytes: number;
  /** CPU ticks over the window / wall time, % of one core. */
  cpuPct: number;
  /** Ticks over the window: all threads, user and kernel. */
  ticks: number;
  userTicks: number;
  systemTicks: number;
  /** Ticks of the main (JavaScript) thread; the rest is V8's and libuv's helper threads. */
  mainThreadTicks: number;
  /** CPU ticks of waited-for children over the window (an agent spawning commands shows here). */
  childTicks: number;
  samples: number;
}

/** One real agent process and what it cost. */
export interface AgentFootprint {
  label: string;
  script: string;
  name: string;
  footprint: ProcessFootprint;
  /** Registry `node.vitals` events from it during the window (sanity: ~window / 10 s). */
  vitalsReceived: number;
  /** Its registry state at the end of the window. */
  stateAtEnd: string;
  joinMs: number;
}

export interface FootprintResult {
  windowMs: number;
  clockTicksPerSecond: number;
  /** The CLI agent first (the budget's subject), then the installed bundle when it is built. */
  agents: AgentFootprint[];
  bareNode: ProcessFootprint;
  /**
   * A bare node run with the installed agent's flags (AGENT_NODE_FLAGS, as its
   * systemd unit runs it): the like-for-like reference for the bundle.
   */
  bareNodeAgentFlags: ProcessFootprint;
  /**
   * The floor of any agent built as the design says: a bare node with the
   * agent's flags that holds one TLS-PSK connection (no trust store, as the
   * agent's link) and writes a heartbeat-sized line on it once a second.
   */
  tlsHeartbeatFloor: ProcessFootprint;
  notes: string[];
}

/** The floor process's script; PORT is the bench's TLS-PSK server. */
function floorScript(port: number): string {
  const line = JSON.stringify(
    `${JSON.stringify({ v: 1, type: "heartbeat", ts: Date.now(), payload: { dropped: 0 } })}\n`,
  );
  return [
    "const tls=require('node:tls');",
    `const s=tls.connect({host:'127.0.0.1',port:${port},ca:[],ciphers:'${FLOOR_CIPHER}',maxVersion:'TLSv1.2',`,
    `pskCallback:()=>({identity:'floor',psk:Buffer.from('${FLOOR_PSK.toString("hex")}','hex')}),checkServerIdentity:()=>undefined});`,
    `s.on('secureConnect',()=>setInterval(()=>s.write(${line}),1000));`,
    "s.on('data',()=>{});s.on('error',(e)=>{console.error(String(e));process.exit(1)});",
  ].join("");
}

const FLOOR_PSK = Buffer.alloc(32, 7);
const FLOOR_CIPHER = "PSK-AES256-GCM-SHA384";

const JOIN_WITHIN_MS = 20_000;

/** What issue 18's load needs around the agent: a web server, metric files, podman's socket. */
export interface Load {
  webPort: number;
  metricsDir: string;
  /** podman's API socket with CONTAINERS containers; undefined where podman cannot run. */
  containerSocket: string | undefined;
}

/**
 * Issue 18's load: a web server for the checks, five metric files in the
 * text format and, where podman can run, CONTAINERS sleeping containers on
 * its API socket. What it starts is ended by the functions pushed on `cleanups`.
 */
export async function startLoad(
  progress: (message: string) => void,
  cleanups: Array<() => void | Promise<void>>,
  notes: string[],
): Promise<Load> {
  const web = createServer((_req, res) => res.writeHead(200).end("ok\n"));
  await new Promise<void>((r) => web.listen(0, "127.0.0.1", r));
  cleanups.push(() => {
    web.close();
  });
  const metricsDir = mkdtempSync(join(tmpdir(), "picluster-bench-metrics-"));
  cleanups.push(() => rmSync(metricsDir, { recursive: true, force: true }));
  for (let i = 0; i < 5; i++) {
    writeFileSync(
      join(metricsDir, `backup${i}.prom`),
      [
        `# HELP backup${i}_age_seconds Seconds since the last backup.`,
        `# TYPE backup${i}_age_seconds gauge`,
        `backup${i}_age_seconds ${5120 + i}`,
        `backup${i}_bytes{target="nas"} 1.2e9`,
        "",
      ].join("\n"),
    );
  }
  let containerSocket: string | undefined;
  if (NO_PODMAN === false) {
    const podman = await startPodman({
      after: (fn) => cleanups.push(fn),
      diagnostic: (m) => notes.push(m),
    });
    for (let i = 0; i < CONTAINERS; i++) {
      progress(`starting container ${i + 1}/${CONTAINERS} in podman`);
      podman.run([
        "run",
        "-d",
        "--name",
        `bench${String(i).padStart(2, "0")}`,
        "--network",
        "none",
        IMAGE,
        "/bin/sleep",
        "1000000",
      ]);
    }
    containerSocket = podman.socket;
  } else {
    notes.push(`the loaded agent has no containers: ${NO_PODMAN}`);
  }
  return { webPort: (web.address() as AddressInfo).port, metricsDir, containerSocket };
}

/** The loaded agent's label in tables. */
export function loadLabel(load: Load): string {
  return `agent-bundle.cjs with 10 custom metrics, 5 checks${load.containerSocket === undefined ? "" : ` and ${CONTAINERS} containers`}`;
}

/**
 * The loaded agent's config: five metrics from programs (/bin/echo, as a
 * small script would print), five from a file in the text format (as a cron
 * job would leave it for node_exporter's textfile collector), two tcp
 * checks, two http checks and a ping of loopback, and the containers.
 * `interval` (a duration such as "2s") replaces every default interval.
 */
export function loadedIni(load: Load, interval?: string): string {
  const every = interval === undefined ? [] : [`interval = ${interval}`];
  const lines: string[] = [];
  if (load.containerSocket !== undefined) {
    lines.push("[containers]", `socket = ${load.containerSocket}`);
    if (interval !== undefined) lines.push(`stats_interval = ${interval}`);
  }
  for (let i = 0; i < 5; i++)
    lines.push(`[metrics.cmd${i}]`, `command = /bin/echo queue_${i} ${i * 7}`, ...every);
  for (let i = 0; i < 5; i++)
    lines.push(
      `[metrics.file${i}]`,
      `file = ${join(load.metricsDir, `backup${i}.prom`)}`,
      ...every,
    );
  lines.push(
    "[check.tcp0]",
    `tcp = 127.0.0.1:${load.webPort}`,
    ...every,
    "[check.tcp1]",
    "tcp = 127.0.0.1:1",
    ...every,
    "[check.http0]",
    `http = http://127.0.0.1:${load.webPort}/`,
    ...every,
    "[check.http1]",
    `http = http://127.0.0.1:${load.webPort}/healthz`,
    "body = ok",
    ...every,
    "[check.ping0]",
    "ping = 127.0.0.1",
    ...every,
    "",
  );
  return lines.join("\n");
}
const STOP_WITHIN_MS = 3_000;
/** Issue 18's load: the containers the loaded agent reports. */
export const CONTAINERS = 20;

function median(sorted: readonly number[]): number {
  return sorted[sorted.length >> 1] ?? Number.NaN;
}

function exited(child: ChildProcess, withinMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), withinMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** SIGTERM (the agent says bye), then SIGKILL if it is still there. */
export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  if (!(await exited(child, STOP_WITHIN_MS))) {
    child.kill("SIGKILL");
    await exited(child, STOP_WITHIN_MS);
  }
}

interface TickPoint {
  user: number;
  system: number;
  main: number;
  children: number;
  at: number;
}

class Sampler {
  private readonly rss: number[] = [];
  private first: TickPoint | undefined;
  private last: TickPoint | undefined;
  private hwm = 0;
  lastRss = Number.NaN;

  constructor(readonly pid: number) {}

  sample(): void {
    const t = readProcTicks(this.pid);
    const main = readProcTicks(this.pid, this.pid);
    const m = readProcRss(this.pid);
    const point = {
      user: t.user,
      system: t.system,
      main: main.user + main.system,
      children: t.children,
      at: performance.now(),
    };
    this.first ??= point;
    this.last = point;
    this.rss.push(m.rss);
    this.lastRss = m.rss;
    this.hwm = Math.max(this.hwm, m.hwm);
  }

  result(hz: number): ProcessFootprint {
    const rss = [...this.rss].sort((a, b) => a - b);
    const first = this.first;
    const last = this.last;
    const delta = (pick: (p: TickPoint) => number) =>
      first && last ? pick(last) - pick(first) : Number.NaN;
    const ticks = delta((p) => p.user + p.system);
    const wallS = delta((p) => p.at) / 1000;
    return {
      rssMedianBytes: median(rss),
      rssMaxBytes: rss[rss.length - 1] ?? Number.NaN,
      hwmBytes: this.hwm,
      cpuPct: (ticks / hz / wallS) * 100,
      ticks,
      userTicks: delta((p) => p.user),
      systemTicks: delta((p) => p.system),
      mainThreadTicks: delta((p) => p.main),
      childTicks: delta((p) => p.children),
      samples: rss.length,
    };
  }
}

interface RunningAgent {
  /** Its own primary: agents on one machine share /etc/machine-id, so one primary would refuse the second. */
  local: LocalPrimary;
  stopCounting: () => void;
  label: string;
  script: string;
  name: string;
  dir: string;
  stderrFile: string;
  stderrFd: number;
  child: ChildProcess;
  vitals: number;
  joinMs: number;
  sampler?: Sampler;
}

/** The error, with the end of the agent's stderr (why it did not join or died). */
function withStderr(agent: RunningAgent, err: unknown): Error {
  const tail = readFileSync(agent.stderrFile, "utf8").trim().slice(-2_000);
  return new Error(
    `${agent.label}: ${err instanceof Error ? err.message : String(err)}${tail === "" ? "" : `; its stderr ends with:\n${tail}`}`,
    { cause: err },
  );
}

export async function runFootprint(
  opts: FootprintOptions,
  progress: (message: string) => void,
): Promise<FootprintResult> {
  const hz = clockTicksPerSecond();
  const notes: string[] = [];
  const agents: RunningAgent[] = [];
  let bare: ChildProcess | undefined;
  let bareFlags: ChildProcess | undefined;
  let floor: ChildProcess | undefined;
  let floorServer: TlsServer | undefined;
  let counting = false;
  const cleanups: Array<() => void | Promise<void>> = [];
  // Spawned, not forked: these would outlive a bench that exits early, so they die with it.
  const killOnExit = () => {
    for (const a of agents) a.child.kill("SIGKILL");
    bare?.kill("SIGKILL");
    bareFlags?.kill("SIGKILL");
    floor?.kill("SIGKILL");
  };
  process.once("exit", killOnExit);
  try {
    const kinds: Array<{ label: string; script: string; name: string; ini?: string }> = [
      { label: "picluster agent (real CLI)", script: CLI_SCRIPT, name: "bench-agent" },
    ];
    if (existsSync(BUNDLE_SCRIPT)) {
      kinds.push({
        label: "agent-bundle.cjs agent (installed)",
        script: BUNDLE_SCRIPT,
        name: "bench-agent-bundle",
      });
      // Issue 18's load: 10 custom metrics and 5 checks at their default
      // intervals, and 20 containers where podman runs.
      const load = await startLoad((m) => progress(`footprint: ${m}`), cleanups, notes);
      kinds.push({
        label: loadLabel(load),
        script: BUNDLE_SCRIPT,
        name: "bench-agent-loaded",
        ini: loadedIni(load),
      });
    } else {
      notes.push(
        `no ${BUNDLE_SCRIPT} (built by \`npm run build\`): the installed bundle was not measured`,
      );
    }
    const since = preciseNow();
    for (const kind of kinds) {
      const local = await startLocalPrimary();
      const token = local.primary.credentials?.addToken(kind.name);
      if (token === undefined) {
        await local.close();
        throw new Error("the bench primary runs without TLS");
      }
      const dir = mkdtempSync(join(tmpdir(), "picluster-bench-agent-"));
      const stderrFile = join(dir, "agent.stderr");
      const stderrFd = openSync(stderrFile, "w");
      // Only what the agent needs: its config through PICLUSTER_*, nothing of this shell's.
      // The bundle runs as its systemd unit runs it (AGENT_NODE_FLAGS); the CLI as typed.
      // PICLUSTER_BENCH_AGENT_FLAGS: node flags for the bundle's agents instead of
      // AGENT_NODE_FLAGS (a V8 setting to try, --cpu-prof), split on spaces.
      const chosen = process.env.PICLUSTER_BENCH_AGENT_FLAGS;
      const bundleFlags =
        chosen === undefined ? AGENT_NODE_FLAGS : chosen.split(" ").filter(Boolean);
      const flags = kind.script === BUNDLE_SCRIPT ? bundleFlags : [];
      // PICLUSTER_BENCH_AGENT_ENV: NAME=VALUE pairs, split on spaces, added to the
      // bundle's agents' environment (a malloc setting to try).
      const extraEnv =
        kind.script === BUNDLE_SCRIPT
          ? Object.fromEntries(
              (process.env.PICLUSTER_BENCH_AGENT_ENV ?? "")
                .split(" ")
                .filter((pair) => pair.includes("="))
                .map((pair) => [
                  pair.slice(0, pair.indexOf("=")),
                  pair.slice(pair.indexOf("=") + 1),
                ]),
            )
          : {};
      const configArgs: string[] = [];
      if (kind.ini !== undefined) {
        writeFileSync(join(dir, "agent.ini"), kind.ini);
        configArgs.push("--config", join(dir, "agent.ini"));
      }
      const child = spawn(process.execPath, [...flags, kind.script, "agent", ...configArgs], {
        cwd: dir,
        env: {
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          HOME: dir,
          PICLUSTER_NODE_DATA_DIR: dir,
          PICLUSTER_NODE_NAME: kind.name,
          PICLUSTER_AGENT_PRIMARY_HOST: "127.0.0.1",
          PICLUSTER_AGENT_PRIMARY_PORT: String(local.port),
          PICLUSTER_AGENT_JOIN_TOKEN: token,
          ...extraEnv,
        },
        stdio: ["ignore", "ignore", stderrFd],
      });
      const agent: RunningAgent = {
        ...kind,
        local,
        stopCounting: () => {},
        dir,
        stderrFile,
        stderrFd,
        child,
        vitals: 0,
        joinMs: Number.NaN,
      };
      agent.stopCounting = local.primary.events.on((e) => {
        if (counting && e.kind === "node.vitals" && e.name === agent.name) agent.vitals++;
      });
      agents.push(agent);
    }
    const bareArgs = ["-e", "setInterval(()=>{},1000)"];
    const bareOpts = {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      stdio: "ignore",
    } as const;
    bare = spawn(process.execPath, bareArgs, bareOpts);
    bareFlags = spawn(process.execPath, [...AGENT_NODE_FLAGS, ...bareArgs], bareOpts);
    floorServer = createTlsServer(
      {
        pskCallback: () => FLOOR_PSK,
        ciphers: FLOOR_CIPHER,
        minVersion: "TLSv1.2",
        maxVersion: "TLSv1.2",
      },
      (socket) => {
        socket.on("data", () => {});
        socket.on("error", () => {});
      },
    );
    await new Promise<void>((r) => floorServer?.listen(0, "127.0.0.1", r));
    floor = spawn(
      process.execPath,
      [...AGENT_NODE_FLAGS, "-e", floorScript((floorServer.address() as AddressInfo).port)],
      { env: bareOpts.env, stdio: ["ignore", "ignore", "inherit"] },
    );
    for (const agent of agents) {
      const joinedAt = await agent.local
        .waitState(agent.name, "alive", since, JOIN_WITHIN_MS)
        .catch((err: unknown) => {
          throw withStderr(agent, err);
        });
      agent.joinMs = joinedAt - since;
    }
    progress(
      `footprint: ${agents.map((a) => `${a.name} joined in ${a.joinMs.toFixed(0)} ms`).join(", ")}; warm-up ${opts.warmupMs / 1000} s`,
    );
    await sleep(opts.warmupMs);

    const barePid = bare.pid;
    if (barePid === undefined) throw new Error("no pid for the bare node process");
    const bareSampler = new Sampler(barePid);
    if (bareFlags.pid === undefined) throw new Error("no pid for the bare node process with flags");
    const bareFlagsSampler = new Sampler(bareFlags.pid);
    if (floor.pid === undefined) throw new Error("no pid for the TLS heartbeat floor process");
    const floorSampler = new Sampler(floor.pid);
    for (const agent of agents) {
      const pid = agent.child.pid;
      if (pid === undefined) throw withStderr(agent, new Error("no pid"));
      agent.sampler = new Sampler(pid);
    }
    counting = true;
    const started = performance.now();
    for (;;) {
      for (const agent of agents) {
        try {
          agent.sampler?.sample();
        } catch (err) {
          throw withStderr(agent, err);
        }
      }
      bareSampler.sample();
      bareFlagsSampler.sample();
      floorSampler.sample();
      const elapsed = performance.now() - started;
      if (elapsed >= opts.windowMs) break;
      const rss = agents
        .map((a) => `${a.name} ${((a.sampler?.lastRss ?? Number.NaN) / 2 ** 20).toFixed(1)} MiB`)
        .join(", ");
      progress(`footprint: ${(elapsed / 1000).toFixed(0)}/${opts.windowMs / 1000} s, RSS ${rss}`);
      await sleep(Math.min(opts.sampleMs, opts.windowMs - elapsed));
    }
    counting = false;
    const windowMs = performance.now() - started;
    return {
      windowMs,
      clockTicksPerSecond: hz,
      agents: agents.map((a) => ({
        label: a.label,
        script: a.script,
        name: a.name,
        footprint: (a.sampler as Sampler).result(hz),
        vitalsReceived: a.vitals,
        stateAtEnd:
          a.local.primary.registry.list().find((n) => n.name === a.name)?.state ?? "unknown",
        joinMs: a.joinMs,
      })),
      bareNode: bareSampler.result(hz),
      bareNodeAgentFlags: bareFlagsSampler.result(hz),
      tlsHeartbeatFloor: floorSampler.result(hz),
      notes,
    };
  } finally {
    process.off("exit", killOnExit);
    for (const a of agents) a.stopCounting();
    await Promise.all(agents.map((a) => stop(a.child)));
    if (bare) await stop(bare);
    if (bareFlags) await stop(bareFlags);
    if (floor) await stop(floor);
    floorServer?.close();
    for (const a of agents) {
      closeSync(a.stderrFd);
      rmSync(a.dir, { recursive: true, force: true });
      await a.local.close();
    }
    for (const fn of cleanups) await fn();
  }
}
