/**
 * Simulated agents, as cheap as an agent can be: one TLS-PSK socket each,
 * frames written by hand from templates, no collectors. Run by the cluster
 * suite as a forked child (`node bench/dist/sim/agents.js`) and driven over
 * IPC (see cluster/ipc.ts).
 *
 * After the primary's `welcome`, each agent sends a heartbeat every
 * heartbeatMs and a vitals sample every vitalsMs (both from the welcome).
 * One 10 ms timer wheel drives all of them: heartbeat phases are spread by
 * the golden ratio, vitals phases evenly over the whole simulated cluster, so
 * 10 000 agents send ~10 000 heartbeats and ~1 000 vitals every second at a
 * steady rate instead of in bursts. Every vitals frame's `ts` is the wall
 * clock when it is written; the send times are kept so the suite can join
 * them with the primary's registry events.
 */
import { readFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { connect, type TLSSocket } from "node:tls";
import { TLS_CIPHERS, TLS_MIN_VERSION } from "@picluster/common";
import type {
  ConnectArgs,
  ConnectResult,
  CredentialsFile,
  FailoverStatus,
  SimCommands,
  SimCredential,
  SimWindow,
} from "../cluster/ipc.js";
import { preciseNow } from "../cluster/ipc.js";
import { notify, serve } from "../cluster/rpc.js";
import { vitalsFrames } from "../suites/codec.js";

const SLOT_MS = 10;
const GOLDEN = 0.618_033_988_749_895;
const PAYLOAD_VARIANTS = 64;
const MAX_WELCOME_BYTES = 64 * 1024;
const PROGRESS_MS = 1_000;

/** Vitals payloads as a Raspberry Pi 4 sends them (the codec suite's generator), pre-serialised. */
const PAYLOADS: string[] = (() => {
  const next = vitalsFrames(0x51_4a_7e);
  return Array.from({ length: PAYLOAD_VARIANTS }, (_, i) =>
    JSON.stringify((next(i) as { payload: unknown }).payload),
  );
})();

class SimAgent {
  socket: TLSSocket | undefined;
  ready = false;
  silenced = false;
  closed = false;
  seq = 0;
  /** Send time of each vitals frame, by seq - 1. */
  readonly sentTs: number[] = [];
  lastSentAt: number | undefined;
  private inbound = "";

  constructor(
    readonly index: number,
    readonly cred: SimCredential,
  ) {}

  /** Connect, say hello and wait for welcome; resolves with the welcome payload. */
  connect(
    host: string,
    port: number,
    timeoutMs: number,
    onClosed: (agent: SimAgent) => void,
  ): Promise<{ heartbeatMs: number; vitalsMs: number }> {
    const key = Buffer.from(this.cred.key, "base64url");
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (reason: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        reject(new Error(reason));
      };
      const timer = setTimeout(() => fail("no welcome in time"), timeoutMs);
      const socket = connect({
        host,
        port,
        minVersion: TLS_MIN_VERSION,
        ciphers: TLS_CIPHERS,
        pskCallback: () => ({ identity: this.cred.identity, psk: key }),
        checkServerIdentity: () => undefined,
      });
      socket.setNoDelay(true);
      socket.on("secureConnect", () => {
        socket.write(
          `{"v":1,"type":"hello","ts":${Date.now()},"payload":{"nodeId":"${this.cred.nodeId}","name":"${this.cred.name}","version":"0.1.0-sim","protocols":[1],"labels":{"sim":"1"}}}\n`,
        );
      });
      socket.on("data", (chunk: Buffer) => {
        // Once welcomed, what the primary sends is dropped (acks) or answered (pings).
        if (this.ready) return this.answerPings(chunk);
        if (settled) return;
        this.inbound += chunk.toString("utf8");
        if (this.inbound.length > MAX_WELCOME_BYTES) return fail("no welcome in 64 KiB");
        let nl = this.inbound.indexOf("\n");
        while (nl >= 0) {
          const line = this.inbound.slice(0, nl);
          this.inbound = this.inbound.slice(nl + 1);
          let msg: {
            type?: unknown;
            payload?: { heartbeatMs?: unknown; vitalsMs?: unknown; code?: unknown };
          };
          try {
            msg = JSON.parse(line) as typeof msg;
          } catch (err) {
            return fail(`unreadable frame from the primary (${String(err)})`);
          }
          if (msg.type === "welcome") {
            const { heartbeatMs, vitalsMs } = msg.payload ?? {};
            if (typeof heartbeatMs !== "number" || typeof vitalsMs !== "number")
              return fail("welcome without intervals");
            settled = true;
            clearTimeout(timer);
            this.inbound = "";
            this.ready = true;
            this.socket = socket;
            resolve({ heartbeatMs, vitalsMs });
            return;
          }
          if (msg.type === "error") return fail(`primary error ${String(msg.payload?.code)}`);
          nl = this.inbound.indexOf("\n");
        }
      });
      socket.on("error", (err: NodeJS.ErrnoException) => fail(err.code ?? err.message));
      socket.on("close", () => {
        if (!settled) return fail("closed before welcome");
        if (this.socket === socket) {
          this.closed = true;
          onClosed(this);
        }
      });
    });
  }

  /** Answer `ping` requests as the agent does: `{"time"}` in a response carrying `re`. */
  private answerPings(chunk: Buffer): void {
    this.inbound += chunk.toString("utf8");
    // The answers to one chunk go out in one write, as the primary's corked writes do.
    let out = "";
    let start = 0;
    let nl = this.inbound.indexOf("\n");
    while (nl >= 0) {
      const line = this.inbound.slice(start, nl);
      start = nl + 1;
      if (line.includes('"type":"task.run"')) {
        // A no-op task: done at once, exit 0, no output.
        const { id } = JSON.parse(line) as { id?: number };
        if (typeof id === "number") {
          taskRunsAnswered++;
          out += `{"v":1,"type":"task.run","ts":${Date.now()},"re":${id},"payload":{"exitCode":0,"signal":null,"durationMs":0,"truncated":false}}\n`;
        }
      } else if (line.includes('"type":"ping"')) {
        const { id } = JSON.parse(line) as { id?: number };
        if (typeof id === "number")
          out += `{"v":1,"type":"ping","ts":${Date.now()},"re":${id},"payload":{"time":${Date.now()}}}\n`;
      }
      nl = this.inbound.indexOf("\n", start);
    }
    this.inbound = this.inbound.slice(start);
    if (out !== "") this.socket?.write(out);
    if (this.inbound.length > MAX_WELCOME_BYTES) this.inbound = "";
  }

  /** Details that allow `task` with `slots` at once (unsequenced, as details may be). */
  offerTask(task: string, slots: number): boolean {
    const socket = this.socket;
    if (socket === undefined || this.closed) return false;
    const details = {
      hostname: this.cred.name,
      os: { name: "Debian GNU/Linux", version: "12" },
      kernel: "6.6.51-sim",
      arch: "arm64",
      cpu: { model: "Cortex-A72 (sim)", cores: 4 },
      memory: { totalBytes: 4_000_000_000, swapBytes: 0 },
      disks: [],
      interfaces: [],
      agentVersion: "0.1.0-sim",
      nodeVersion: "v20",
      tasks: [
        {
          name: task,
          description: "no-op (bench)",
          builtin: false,
          disruptive: false,
          args: [{ name: "n", type: "integer" }],
        },
      ],
      maxRunning: slots,
    };
    socket.write(
      `{"v":1,"type":"details","ts":${Date.now()},"payload":${JSON.stringify(details)}}\n`,
    );
    return true;
  }

  heartbeat(): void {
    const socket = this.socket;
    if (socket === undefined || this.closed || this.silenced) return;
    socket.write(`{"v":1,"type":"heartbeat","ts":${Date.now()},"payload":{"dropped":0}}\n`);
    this.lastSentAt = preciseNow();
  }

  vitals(): void {
    const socket = this.socket;
    if (socket === undefined || this.closed || this.silenced) return;
    const seq = ++this.seq;
    const ts = Date.now();
    const payload = PAYLOADS[(this.index + seq) % PAYLOAD_VARIANTS] as string;
    socket.write(`{"v":1,"type":"vitals","ts":${ts},"seq":${seq},"payload":${payload}}\n`);
    this.sentTs[seq - 1] = ts;
    this.lastSentAt = preciseNow();
  }
}

/** Every agent's sends, from one timer. */
class Scheduler {
  private readonly heartbeatWheel: SimAgent[][];
  private readonly vitalsWheel: SimAgent[][];
  private readonly start = performance.now();
  private lastSlot = -1;
  private readonly timer: NodeJS.Timeout;
  lateness: number[] | undefined;
  sentHeartbeats = 0;
  sentVitals = 0;

  constructor(
    readonly heartbeatMs: number,
    readonly vitalsMs: number,
  ) {
    this.heartbeatWheel = Array.from(
      { length: Math.max(1, Math.round(heartbeatMs / SLOT_MS)) },
      () => [],
    );
    this.vitalsWheel = Array.from(
      { length: Math.max(1, Math.round(vitalsMs / SLOT_MS)) },
      () => [],
    );
    this.timer = setInterval(() => this.tick(), SLOT_MS);
  }

  add(agent: SimAgent, spreadOver: number): void {
    const hb = this.heartbeatWheel.length;
    const v = this.vitalsWheel.length;
    this.heartbeatWheel[Math.floor(((agent.index * GOLDEN) % 1) * hb)]?.push(agent);
    this.vitalsWheel[Math.floor((agent.index / Math.max(1, spreadOver)) * v) % v]?.push(agent);
  }

  private tick(): void {
    const now = performance.now();
    const slot = Math.floor((now - this.start) / SLOT_MS);
    for (let s = this.lastSlot + 1; s <= slot; s++) {
      // Lateness past the end of the slot: 0 when the timer keeps up.
      this.lateness?.push(Math.max(0, now - (this.start + (s + 1) * SLOT_MS)));
      for (const a of this.heartbeatWheel[s % this.heartbeatWheel.length] ?? []) {
        a.heartbeat();
        this.sentHeartbeats++;
      }
      for (const a of this.vitalsWheel[s % this.vitalsWheel.length] ?? []) {
        a.vitals();
        this.sentVitals++;
      }
    }
    this.lastSlot = slot;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

const agents = new Map<number, SimAgent>();
/** task.run requests answered by every agent of this simulator. */
let taskRunsAnswered = 0;
let scheduler: Scheduler | undefined;
let closedSinceWindow = 0;
let window:
  | { startedAt: number; cpu: NodeJS.CpuUsage; delay: ReturnType<typeof monitorEventLoopDelay> }
  | undefined;
const credsCache = new Map<string, SimCredential[]>();

function credentials(file: string): SimCredential[] {
  let creds = credsCache.get(file);
  if (creds === undefined) {
    creds = (JSON.parse(readFileSync(file, "utf8")) as CredentialsFile).agents;
    credsCache.set(file, creds);
  }
  return creds;
}

/** Where each agent may go, in order (its first primary, then the others), when it has a list. */
const targets = new Map<number, { list: Array<{ host: string; port: number }>; at: number }>();
const failover: FailoverStatus = { away: 0, reconnected: 0, lastWelcomeAt: null };
/** Set by `close`: links dropped from here on are not followed. */
let closing = false;
/** The agent's first wait (link.ts RECONNECT_BASE_MS): a uniform 0–500 ms, then doubling. */
const RECONNECT_BASE_MS = 500;

function onClosed(agent: SimAgent): void {
  if (window !== undefined) closedSinceWindow++;
  agent.socket = undefined;
  const route = targets.get(agent.index);
  if (route === undefined || closing || agent.silenced) return;
  failover.away++;
  void (async () => {
    for (let attempt = 0; !closing; attempt++) {
      route.at = (route.at + 1) % route.list.length;
      const step = Math.min(5_000, RECONNECT_BASE_MS * 2 ** attempt);
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * step)));
      const target = route.list[route.at] as { host: string; port: number };
      try {
        agent.closed = false;
        agent.ready = false;
        await agent.connect(target.host, target.port, 10_000, onClosed);
        failover.away--;
        failover.reconnected++;
        failover.lastWelcomeAt = preciseNow();
        return;
      } catch {
        // The next primary in the list, after a longer wait.
      }
    }
  })();
}

async function connectAll(args: ConnectArgs): Promise<ConnectResult> {
  const creds = credentials(args.credsFile);
  if (args.first + args.count > creds.length)
    throw new Error(`asked for ${args.first + args.count} agents, the file has ${creds.length}`);
  const started = performance.now();
  const deadline = started + args.deadlineMs;
  const errors: Record<string, number> = {};
  let next = args.first;
  const end = args.first + args.count;
  let connected = 0;
  let failed = 0;
  let inFlight = 0;
  const progress = setInterval(
    () => notify("progress", { connected, failed, inFlight, of: args.count }),
    PROGRESS_MS,
  );
  const worker = async () => {
    while (next < end && performance.now() < deadline) {
      const index = next++;
      const cred = creds[index] as SimCredential;
      let agent = agents.get(index);
      if (agent === undefined) {
        agent = new SimAgent(index, cred);
        agents.set(index, agent);
      }
      inFlight++;
      for (let attempt = 1; ; attempt++) {
        try {
          const welcome = await agent.connect(
            args.host,
            args.port,
            args.attemptTimeoutMs,
            onClosed,
          );
          scheduler ??= new Scheduler(welcome.heartbeatMs, welcome.vitalsMs);
          scheduler.add(agent, args.spreadOver);
          if (args.failover !== undefined && args.failover.length > 0)
            targets.set(index, {
              list: [{ host: args.host, port: args.port }, ...args.failover],
              at: 0,
            });
          connected++;
          break;
        } catch (err) {
          const reason = err instanceof Error ? err.message : String(err);
          errors[reason] = (errors[reason] ?? 0) + 1;
          if (attempt >= args.attempts || performance.now() >= deadline) {
            failed++;
            break;
          }
        }
      }
      inFlight--;
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, args.concurrency) }, worker));
  } finally {
    clearInterval(progress);
  }
  // Agents never tried before the deadline count as failed too.
  failed += end - next;
  const elapsedMs = performance.now() - started;
  return { connected, failed, elapsedMs, errors, perSecond: connected / (elapsedMs / 1000) };
}

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
}

serve<SimCommands>({
  connect: connectAll,
  "window-start": () => {
    window?.delay.disable();
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    window = { startedAt: performance.now(), cpu: process.cpuUsage(), delay };
    closedSinceWindow = 0;
    if (scheduler !== undefined) {
      scheduler.sentHeartbeats = 0;
      scheduler.sentVitals = 0;
      scheduler.lateness = [];
    }
    return {};
  },
  "window-end": (): SimWindow => {
    if (window === undefined) throw new Error("window-end without window-start");
    const wallMs = performance.now() - window.startedAt;
    const cpu = process.cpuUsage(window.cpu);
    window.delay.disable();
    window = undefined;
    const late = [...(scheduler?.lateness ?? [])].sort((a, b) => a - b);
    if (scheduler !== undefined) scheduler.lateness = undefined;
    return {
      wallMs,
      cpuPct: ((cpu.user + cpu.system) / 1000 / wallMs) * 100,
      rssBytes: process.memoryUsage.rss(),
      sent: { heartbeat: scheduler?.sentHeartbeats ?? 0, vitals: scheduler?.sentVitals ?? 0 },
      closed: closedSinceWindow,
      schedulerLateMs: { p99: percentile(late, 0.99), max: late[late.length - 1] ?? Number.NaN },
    };
  },
  "sent-ts": () => {
    const last = Math.max(-1, ...agents.keys());
    const sentTs: Array<number[] | null> = Array.from(
      { length: last + 1 },
      (_, i) => agents.get(i)?.sentTs ?? null,
    );
    return { sentTs };
  },
  silence: ({ index }) => {
    const agent = agents.get(index);
    if (agent === undefined || !agent.ready) throw new Error(`agent ${index} is not connected`);
    agent.silenced = true;
    return { lastFrameAt: agent.lastSentAt };
  },
  crash: ({ index }) => {
    const agent = agents.get(index);
    const socket = agent?.socket;
    if (agent === undefined || socket === undefined)
      throw new Error(`agent ${index} is not connected`);
    agent.silenced = true;
    const at = preciseNow();
    socket.destroy();
    return { at };
  },
  "offer-task": ({ task, slots }) => {
    let sent = 0;
    for (const a of agents.values()) if (a.ready && a.offerTask(task, slots)) sent++;
    return { sent };
  },
  "task-count": () => ({ answered: taskRunsAnswered }),
  failover: () => ({ ...failover }),
  status: () => {
    let ready = 0;
    let closed = 0;
    for (const a of agents.values()) {
      if (a.closed) closed++;
      else if (a.ready) ready++;
    }
    return { ready, closed };
  },
  close: () => {
    closing = true;
    scheduler?.stop();
    window?.delay.disable();
    for (const a of agents.values()) {
      a.silenced = true;
      a.socket?.destroy();
    }
    // The parent disconnects once it has this answer; serve() then exits the process.
    return {};
  },
});
