/**
 * The server side of a cluster load run, alone in its own process so that
 * process.cpuUsage() and RSS are the server's and nothing else's. Run by the
 * cluster suite as a forked child (`node bench/dist/sim/server.js`), driven
 * over IPC (see cluster/ipc.ts), in one of two modes:
 *
 * - `primary`: the real Primary from @picluster/primary (TLS-PSK listener,
 *   sessions, decoder, dispatcher, handlers, registry, liveness), configured
 *   as `picluster primary` would be, logging to a file in its data dir. The
 *   bench listens on its EventBus for `node.vitals` and `node.state`, and
 *   counts received messages by wrapping `registry.seen` (the dispatcher calls
 *   it once per message after the handshake).
 * - `noop`: the ceiling. A plain TLS-PSK server with the same TLS settings
 *   and keys that splits lines and JSON.parses them (the codec suite's no-op
 *   reader), answers `hello` with a canned `welcome`, and nothing else: no
 *   validation, registry, acks or liveness.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createServer, type Server, type TLSSocket } from "node:tls";
import {
  createLogger,
  LogOutput,
  loadConfig,
  PSK_IDENTITY_HINT,
  TLS_CIPHERS,
  TLS_MIN_VERSION,
} from "@picluster/common";
import { Primary } from "@picluster/primary";
import {
  type CredentialsFile,
  type ServerCommands,
  type ServerStartArgs,
  type ServerStatus,
  type ServerWindow,
  simIndex,
} from "../cluster/ipc.js";
import { serve } from "../cluster/rpc.js";
import { NoopNdjsonReader } from "../suites/codec.js";

const RSS_SAMPLE_MS = 1_000;
const LOOP_RESOLUTION_MS = 10;
/** What the no-op reader's canned welcome promises, the primary's defaults. */
const NOOP_HEARTBEAT_MS = 1_000;
const NOOP_VITALS_MS = 10_000;
const NOOP_HANDSHAKE_TIMEOUT_MS = 5_000;

interface Host {
  port: number;
  status(): ServerStatus;
  pingAll?(timeoutMs: number): Promise<{ ms: number; ok: number; total: number }>;
  close(): Promise<void>;
}

/** What the current measurement window has seen. */
class Recorder {
  on = false;
  received = 0;
  vitals = 0;
  readonly vitalsEvents: number[] = [];
  readonly lagsMs: number[] = [];
  readonly transitions: Record<string, number> = {};
  readonly phases: Record<string, { calls: number; totalMs: number; maxMs: number }> = {};
  private startedAt = 0;
  private cpu: NodeJS.CpuUsage = process.cpuUsage();
  private rss: number[] = [];
  private rssTimer: NodeJS.Timeout | undefined;
  private delay: ReturnType<typeof monitorEventLoopDelay> | undefined;

  start(): void {
    this.received = 0;
    this.vitals = 0;
    this.vitalsEvents.length = 0;
    this.lagsMs.length = 0;
    for (const k of Object.keys(this.transitions)) delete this.transitions[k];
    for (const k of Object.keys(this.phases)) delete this.phases[k];
    this.rss = [process.memoryUsage.rss()];
    clearInterval(this.rssTimer);
    this.rssTimer = setInterval(() => this.rss.push(process.memoryUsage.rss()), RSS_SAMPLE_MS);
    this.delay?.disable();
    this.delay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    this.delay.enable();
    this.on = true;
    this.startedAt = performance.now();
    this.cpu = process.cpuUsage();
  }

  phase(label: string, ms: number): void {
    const p = this.phases[label] ?? { calls: 0, totalMs: 0, maxMs: 0 };
    p.calls++;
    p.totalMs += ms;
    p.maxMs = Math.max(p.maxMs, ms);
    this.phases[label] = p;
  }

  end(): ServerWindow {
    const cpu = process.cpuUsage(this.cpu);
    const wallMs = performance.now() - this.startedAt;
    this.on = false;
    clearInterval(this.rssTimer);
    this.rssTimer = undefined;
    this.rss.push(process.memoryUsage.rss());
    const delay = this.delay;
    this.delay = undefined;
    delay?.disable();
    // The histogram holds the timer's whole period; the delay is what exceeds it.
    const late = (ns: number | undefined) =>
      Math.max(0, (ns ?? Number.NaN) / 1e6 - LOOP_RESOLUTION_MS);
    const rss = [...this.rss].sort((a, b) => a - b);
    return {
      wallMs,
      cpuUserMs: cpu.user / 1000,
      cpuSystemMs: cpu.system / 1000,
      cpuPct: ((cpu.user + cpu.system) / 1000 / wallMs) * 100,
      rssBytes: {
        median: rss[rss.length >> 1] ?? Number.NaN,
        max: rss[rss.length - 1] ?? Number.NaN,
        samples: rss.length,
      },
      received: { total: this.received, vitals: this.vitals },
      vitalsEvents: [...this.vitalsEvents],
      lagsMs: [...this.lagsMs],
      transitions: { ...this.transitions },
      phases: structuredClone(this.phases),
      eventLoopDelayMs: {
        p50: late(delay?.percentile(50)),
        p99: late(delay?.percentile(99)),
        max: late(delay?.max),
      },
    };
  }

  stop(): void {
    clearInterval(this.rssTimer);
    this.delay?.disable();
  }
}

const recorder = new Recorder();

/**
 * Time every call of `target[method]` during the window by replacing it with
 * a timing wrapper on the instance. The method's own callers (timers inside
 * the primary) look it up on `this`, so they go through the wrapper. A
 * method that does not exist (the primary changed) is left alone and shows
 * as absent in the report.
 */
function timeMethod(target: object, method: string, label: string): void {
  const t = target as Record<string, unknown>;
  const original = t[method];
  if (typeof original !== "function") return;
  t[method] = function timed(this: unknown, ...args: unknown[]): unknown {
    if (!recorder.on) return original.apply(this, args);
    const started = performance.now();
    try {
      return original.apply(this, args);
    } finally {
      recorder.phase(label, performance.now() - started);
    }
  };
}
let host: Host | undefined;

async function startPrimary(args: ServerStartArgs): Promise<Host> {
  const { config } = loadConfig({
    env: {},
    flags: {
      "node.data_dir": args.dataDir,
      "primary.bind_host": "127.0.0.1",
      "primary.port": "0",
      "http.host": "127.0.0.1",
      "http.port": "0",
      "primary.max_handshakes_per_address": String(args.maxHandshakesPerAddress),
      ...args.flags,
    },
    paths: { cwd: args.dataDir, home: args.dataDir, uid: process.getuid?.() },
    configPath: undefined,
  });
  // As `picluster primary` logs, minus the console: JSON lines to a rotating file.
  const output = new LogOutput({
    file: {
      dir: join(args.dataDir, "log"),
      name: "primary.log",
      maxBytes: config.log.rotate_size,
      keep: config.log.rotate_count,
    },
  });
  const log = createLogger(output, { level: config.log.level, bindings: { role: "primary" } });
  const primary = new Primary({ config, dataDir: args.dataDir, log, version: "0.1.0-bench" });

  // Where the primary's time goes between messages: its periodic work, timed in place.
  timeMethod(primary.liveness, "sweep", "liveness.sweep");
  timeMethod(primary, "checkCredentials", "credentials check");
  const store = (primary as unknown as Record<string, unknown>).store;
  if (typeof store === "object" && store !== null) {
    timeMethod(store, "flush", "store.flush");
    timeMethod(store, "rollUp", "store.rollUp");
    timeMethod(store, "prune", "store.prune");
  }

  const registry = primary.registry;
  const seen = registry.seen.bind(registry);
  registry.seen = (id, at) => {
    if (recorder.on) recorder.received++;
    seen(id, at);
  };
  primary.events.on((e) => {
    if (!recorder.on) return;
    if (e.kind === "node.vitals") {
      recorder.vitals++;
      recorder.vitalsEvents.push(simIndex(e.name), e.seq ?? -1, e.at);
    } else if (e.kind === "node.state") {
      recorder.transitions[e.to] = (recorder.transitions[e.to] ?? 0) + 1;
    }
  });

  const { agentPort } = await primary.start();
  await primary.clusterReady();
  return {
    port: agentPort,
    async pingAll(timeoutMs: number) {
      const t0 = performance.now();
      const results = await primary.tasks.ping("all", timeoutMs);
      return {
        ms: performance.now() - t0,
        ok: results.filter((r) => r.ok).length,
        total: results.length,
      };
    },
    status() {
      const states: Record<string, number> = {};
      for (const node of registry.list()) states[node.state] = (states[node.state] ?? 0) + 1;
      return { states, connections: primary.sessions.size };
    },
    async close() {
      await primary.close();
      output.close();
    },
  };
}

async function startNoop(args: ServerStartArgs): Promise<Host> {
  const creds = (JSON.parse(readFileSync(args.credsFile, "utf8")) as CredentialsFile).agents;
  const keys = new Map(creds.map((c) => [c.identity, Buffer.from(c.key, "base64url")]));
  const sockets = new Set<TLSSocket>();
  let helloed = 0;
  const welcome = () =>
    `{"v":1,"type":"welcome","ts":${Date.now()},"payload":{"protocol":1,"heartbeatMs":${NOOP_HEARTBEAT_MS},"vitalsMs":${NOOP_VITALS_MS},"lastSeq":0,"primaryVersion":"0.1.0-noop"}}\n`;
  const server: Server = createServer(
    {
      minVersion: TLS_MIN_VERSION,
      ciphers: TLS_CIPHERS,
      pskIdentityHint: PSK_IDENTITY_HINT,
      handshakeTimeout: NOOP_HANDSHAKE_TIMEOUT_MS,
      pskCallback: (_socket, identity) => keys.get(identity) ?? null,
    },
    (socket) => {
      sockets.add(socket);
      socket.setNoDelay(true);
      const reader = new NoopNdjsonReader();
      let said = false;
      socket.on("data", (chunk: Buffer) => {
        let frames: unknown[];
        try {
          frames = reader.feed(chunk);
        } catch (err) {
          process.stderr.write(`noop reader: bad frame, closing: ${String(err)}\n`);
          socket.destroy();
          return;
        }
        for (const frame of frames) {
          const m = frame as { type?: unknown; ts?: unknown };
          if (recorder.on) recorder.received++;
          if (m.type === "vitals") {
            if (recorder.on) {
              recorder.vitals++;
              if (typeof m.ts === "number") recorder.lagsMs.push(Date.now() - m.ts);
            }
          } else if (m.type === "hello" && !said) {
            said = true;
            helloed++;
            socket.write(welcome());
          }
        }
      });
      socket.on("error", () => socket.destroy());
      socket.on("close", () => {
        sockets.delete(socket);
        if (said) helloed--;
      });
    },
  );
  server.on("tlsClientError", (err, socket) => {
    process.stderr.write(`noop reader: TLS refused: ${err.message}\n`);
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0 }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return {
    port: address.port,
    status: () => ({ states: { alive: helloed }, connections: sockets.size }),
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

serve<ServerCommands>({
  start: async (args) => {
    if (host !== undefined) throw new Error("already started");
    host = args.mode === "primary" ? await startPrimary(args) : await startNoop(args);
    return { port: host.port };
  },
  status: () => {
    if (host === undefined) throw new Error("not started");
    return host.status();
  },
  "window-start": () => {
    recorder.start();
    return {};
  },
  "window-end": () => recorder.end(),
  "ping-all": async ({ timeoutMs }) => {
    if (host?.pingAll === undefined) throw new Error("not a primary");
    return host.pingAll(timeoutMs);
  },
  close: async () => {
    recorder.stop();
    await host?.close();
    host = undefined;
    return {};
  },
});
