/**
 * The node's containers, read from a Docker-compatible API socket (Docker's
 * or Podman's): at each vitals sample the list (`GET /containers/json?all=1`);
 * each running container's stats (`/containers/ID/stats?stream=false`) every
 * `[containers] stats_interval`, spread over the samples (a request per
 * container is most of what containers cost the agent: bench/README.md); and,
 * once a minute or when its state changes, its inspection (restart count,
 * health, exit code). CPU, memory and network rates are computed from this
 * agent's previous reading, so one-shot stats suffice; between readings a
 * sample carries the latest figures. No CLI
 * subprocess, and not node:http (http-get.ts: the agent's RSS budget). A
 * sample's requests go one after another on one kept-alive connection.
 */
import { existsSync } from "node:fs";
import { type Clock, describeError, type Logger } from "@picluster/common";
import { KeptConnection } from "./http-get.js";

export interface ContainerInfo {
  id: string;
  name: string;
  image: string;
  state: string;
  health?: string;
  restarts: number;
  /** Restarts in the last RESTART_WINDOW_MS, as this agent saw the count grow (absent: none). */
  recentRestarts?: number;
  exitCode?: number;
  cpuPct?: number;
  memBytes?: number;
  memLimitBytes?: number;
  rxBps?: number;
  txBps?: number;
}

/** Where the API socket usually is, first found wins. */
export function defaultSockets(env: NodeJS.ProcessEnv = process.env): string[] {
  const out = ["/var/run/docker.sock", "/run/podman/podman.sock"];
  if (env.XDG_RUNTIME_DIR) out.push(`${env.XDG_RUNTIME_DIR}/podman/podman.sock`);
  return out;
}

const INSPECT_EVERY_MS = 60_000;
/** How far back `recentRestarts` counts. */
export const RESTART_WINDOW_MS = 600_000;
const REQUEST_TIMEOUT_MS = 5_000;
/** The longest answer read (a list of `max` containers, one's stats or inspection). */
const MAX_ANSWER = 4 * 1024 * 1024;

interface ListItem {
  Id: string;
  Names?: string[];
  Image?: string;
  State?: string | { Status?: string };
  Status?: string;
}

interface Stats {
  read?: string;
  cpu_stats?: {
    cpu_usage?: { total_usage?: number };
    system_cpu_usage?: number;
    online_cpus?: number;
  };
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }>;
}

interface Inspect {
  RestartCount?: number;
  State?: { Status?: string; ExitCode?: number; Health?: { Status?: string } };
}

interface Previous {
  at: number;
  cpuTotal: number;
  system: number;
  rx: number;
  tx: number;
  /** The figures from the latest reading, sent until the next. */
  figures: Pick<ContainerInfo, "cpuPct" | "memBytes" | "memLimitBytes" | "rxBps" | "txBps">;
}

export interface ContainersOptions {
  /** `[containers] socket`: "" for the usual places, "off" for none. */
  socket: string;
  max: number;
  /** `[containers] stats_interval`: how often each running container's stats are read. */
  statsEveryMs: number;
  clock: Clock;
  log: Logger;
}

export class Containers {
  private socketPath: string | undefined;
  private readonly previous = new Map<string, Previous>();
  private readonly inspected = new Map<string, { at: number; state: string; info: Inspect }>();
  /** Each container's restart counts as read, oldest first, over the last window. */
  private readonly restartLog = new Map<string, Array<{ at: number; n: number }>>();
  private failing = false;
  private warnedOverMax = false;

  constructor(private readonly opts: ContainersOptions) {}

  /** The socket in use, or undefined when there is none (looked for again at each sample). */
  private find(): string | undefined {
    if (this.opts.socket === "off") return undefined;
    const candidates = this.opts.socket === "" ? defaultSockets() : [this.opts.socket];
    return candidates.find((p) => existsSync(p));
  }

  /** Whether this node has an API to ask (a cheap test at each sample). */
  get available(): boolean {
    this.socketPath = this.find();
    return this.socketPath !== undefined;
  }

  /** The connection of the sample under way. */
  private connection: KeptConnection | undefined;
  /** The last complete sample's answer. */
  private last: ContainerInfo[] = [];
  /** When the previous sample was taken: the gap between samples sets each one's share of stats. */
  private lastSampleAt: number | undefined;

  private async get<T>(path: string): Promise<T> {
    const connection = this.connection;
    if (connection === undefined) throw new Error("no container API socket");
    const got = await connection.get(path);
    if (got.status >= 300)
      throw new Error(`${path}: HTTP ${got.status}: ${got.body.slice(0, 200).trim()}`);
    if (got.truncated) throw new Error(`${path}: an answer longer than ${MAX_ANSWER} bytes`);
    try {
      return JSON.parse(got.body) as T;
    } catch {
      throw new Error(`${path}: not JSON`);
    }
  }

  /**
   * `sample()`, or the last complete sample's answer when it takes longer than
   * `ms`: a slow API must not hold the vitals back (the reading still
   * completes, for the next rates).
   */
  sampleWithin(ms: number): Promise<ContainerInfo[]> {
    if (this.opts.socket === "off") return Promise.resolve([]);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(this.last), ms);
      this.sample().then(
        (list) => {
          clearTimeout(timer);
          resolve(list);
        },
        () => {
          clearTimeout(timer);
          resolve([]);
        },
      );
    });
  }

  /** The containers now, running first then by name, at most `max`; [] when the API fails (logged once). */
  async sample(): Promise<ContainerInfo[]> {
    if (!this.available || this.socketPath === undefined) {
      this.last = [];
      return [];
    }
    // A sample still under way (a slow API) has the connection: its predecessor's word stands.
    if (this.connection !== undefined) return this.last;
    this.connection = new KeptConnection({
      socketPath: this.socketPath,
      host: "docker",
      timeoutMs: REQUEST_TIMEOUT_MS,
      maxBody: MAX_ANSWER,
    });
    try {
      this.last = await this.sampleOn();
      return this.last;
    } finally {
      this.connection.close();
      this.connection = undefined;
    }
  }

  private async sampleOn(): Promise<ContainerInfo[]> {
    let list: ListItem[];
    try {
      list = await this.get<ListItem[]>("/containers/json?all=1");
      if (this.failing) {
        this.failing = false;
        this.opts.log.info("container API answers again", { socket: this.socketPath });
      }
    } catch (err) {
      if (!this.failing) {
        this.failing = true;
        this.opts.log.warn("cannot list containers", {
          socket: this.socketPath,
          err: describeError(err),
        });
      }
      return [];
    }
    const stateOf = (c: ListItem) =>
      typeof c.State === "string" ? c.State : (c.State?.Status ?? "unknown");
    const nameOf = (c: ListItem) => (c.Names?.[0] ?? c.Id.slice(0, 12)).replace(/^\//, "");
    const sorted = [...list].sort((a, b) => {
      const ra = stateOf(a) === "running" ? 0 : 1;
      const rb = stateOf(b) === "running" ? 0 : 1;
      return ra - rb || (nameOf(a) < nameOf(b) ? -1 : 1);
    });
    if (sorted.length > this.opts.max && !this.warnedOverMax) {
      this.warnedOverMax = true;
      this.opts.log.warn("more containers than [containers] max; the rest are not sent", {
        max: this.opts.max,
        containers: sorted.length,
      });
    }
    const shown = sorted.slice(0, this.opts.max);
    const now = this.opts.clock.now();
    // Stats: containers seen running for the first time, and of the others the
    // share that keeps each read once per stats_interval at this sampling rate,
    // oldest reading first (so each sample reads about as many).
    const running = shown.filter((c) => stateOf(c) === "running");
    const known = running
      .filter((c) => this.previous.has(c.Id))
      .sort((a, b) => (this.previous.get(a.Id)?.at ?? 0) - (this.previous.get(b.Id)?.at ?? 0));
    const gap =
      this.lastSampleAt === undefined ? Number.POSITIVE_INFINITY : now - this.lastSampleAt;
    this.lastSampleAt = now;
    const share = Math.ceil(known.length * Math.min(1, gap / this.opts.statsEveryMs));
    const readNow = new Set(running.filter((c) => !this.previous.has(c.Id)).map((c) => c.Id));
    for (const c of known.slice(0, share)) readNow.add(c.Id);
    const out: ContainerInfo[] = [];
    for (const c of shown)
      out.push(await this.describe(c, stateOf(c), nameOf(c), now, readNow.has(c.Id)));
    // Forget what is gone.
    const ids = new Set(shown.map((c) => c.Id));
    for (const id of [...this.previous.keys()]) if (!ids.has(id)) this.previous.delete(id);
    for (const id of [...this.inspected.keys()]) if (!ids.has(id)) this.inspected.delete(id);
    for (const id of [...this.restartLog.keys()]) if (!ids.has(id)) this.restartLog.delete(id);
    return out;
  }

  private async describe(
    c: ListItem,
    state: string,
    name: string,
    now: number,
    /** Whether its stats are read in this sample (else the latest figures stand). */
    readStats: boolean,
  ): Promise<ContainerInfo> {
    const info: ContainerInfo = {
      id: c.Id.slice(0, 64),
      name,
      image: c.Image ?? "",
      state,
      restarts: 0,
    };
    let seen = this.inspected.get(c.Id);
    if (seen === undefined || seen.state !== state || now - seen.at >= INSPECT_EVERY_MS) {
      try {
        seen = { at: now, state, info: await this.get<Inspect>(`/containers/${c.Id}/json`) };
        this.inspected.set(c.Id, seen);
        const log = this.restartLog.get(c.Id) ?? [];
        log.push({ at: now, n: seen.info.RestartCount ?? 0 });
        // Keep the newest reading from before the window: the count the window starts from.
        while (log.length > 1 && (log[1] as { at: number }).at <= now - RESTART_WINDOW_MS)
          log.shift();
        this.restartLog.set(c.Id, log);
      } catch {
        // Gone between the list and now, or the API hiccuped: the list's word stands.
      }
    }
    if (seen !== undefined) {
      info.restarts = seen.info.RestartCount ?? 0;
      const log = this.restartLog.get(c.Id);
      const recent = log === undefined ? 0 : info.restarts - (log[0] as { n: number }).n;
      if (recent > 0) info.recentRestarts = recent;
      const health = seen.info.State?.Health?.Status;
      if (health !== undefined && health !== "") info.health = health;
      if (state === "exited" && seen.info.State?.ExitCode !== undefined)
        info.exitCode = seen.info.State.ExitCode;
    }
    if (state !== "running") {
      this.previous.delete(c.Id);
      return info;
    }
    const prev = this.previous.get(c.Id);
    if (prev !== undefined && !readStats) return Object.assign(info, prev.figures);
    let stats: Stats;
    try {
      stats = await this.get<Stats>(`/containers/${c.Id}/stats?stream=false&one-shot=true`);
    } catch {
      return prev === undefined ? info : Object.assign(info, prev.figures);
    }
    const figures: Previous["figures"] = {};
    const mem = stats.memory_stats;
    if (mem?.usage !== undefined) {
      // What `docker stats` shows: the page cache is not the container's own.
      const cache =
        mem.stats?.inactive_file ?? mem.stats?.total_inactive_file ?? mem.stats?.cache ?? 0;
      figures.memBytes = Math.max(0, mem.usage - cache);
      if (mem.limit !== undefined && mem.limit > 0) figures.memLimitBytes = mem.limit;
    }
    const cpuTotal = stats.cpu_stats?.cpu_usage?.total_usage ?? 0;
    const system = stats.cpu_stats?.system_cpu_usage ?? 0;
    let rx = 0;
    let tx = 0;
    for (const n of Object.values(stats.networks ?? {})) {
      rx += n.rx_bytes ?? 0;
      tx += n.tx_bytes ?? 0;
    }
    if (prev !== undefined && now > prev.at) {
      const cpus = stats.cpu_stats?.online_cpus ?? 1;
      const dSystem = system - prev.system;
      const dCpu = cpuTotal - prev.cpuTotal;
      // % of one core, as `docker stats` counts it.
      if (dSystem > 0 && dCpu >= 0) figures.cpuPct = (dCpu / dSystem) * cpus * 100;
      const seconds = (now - prev.at) / 1000;
      if (rx >= prev.rx) figures.rxBps = (rx - prev.rx) / seconds;
      if (tx >= prev.tx) figures.txBps = (tx - prev.tx) / seconds;
    }
    this.previous.set(c.Id, { at: now, cpuTotal, system, rx, tx, figures });
    return Object.assign(info, figures);
  }
}
