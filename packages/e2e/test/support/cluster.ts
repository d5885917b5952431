/**
 * Real parts on loopback for end-to-end tests: a primary on a free port with
 * its own data directory, agents joined with real tokens, and a scripted
 * peer that speaks the wire protocol by hand to misbehave on purpose.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { type TLSSocket, connect as tlsConnect } from "node:tls";
import { Agent, nodeOsFacts } from "@picluster/agent";
import { buildPrimary } from "@picluster/cli";
import {
  type Config,
  createLogger,
  type Envelope,
  JOIN_IDENTITY_PREFIX,
  type LineSink,
  type Logger,
  loadConfig,
  NdjsonDecoder,
  parseJoinToken,
  TLS_CIPHERS,
  TLS_MIN_VERSION,
} from "@picluster/common";
import { scratchDir as commonScratchDir, deadline, removeAtExit } from "@picluster/common/testing";
import type { Primary } from "@picluster/primary";

export interface TestContext {
  after(fn: () => void | Promise<void>): void;
}

/** Log lines captured as parsed records, for assertions on what was logged. */
export function captureLog(): { log: Logger; records: Array<Record<string, unknown>> } {
  const records: Array<Record<string, unknown>> = [];
  const sink: LineSink = {
    write: (line) => records.push(JSON.parse(line) as Record<string, unknown>),
  };
  return {
    log: createLogger(sink, { level: process.env.PICLUSTER_TEST_LOG === "1" ? "debug" : "info" }),
    records,
  };
}

/** A test's scratch directory (common's, prefixed for the end-to-end tests). */
export function scratchDir(t: TestContext, prefix = "picluster-e2e-"): string {
  return commonScratchDir(t, prefix);
}

/** A config from `section.key` flags over the defaults (and an INI file, if given), as the CLI would build it. */
export function testConfig(flags: Record<string, string>, configPath?: string): Config {
  return loadConfig({
    env: {},
    flags,
    paths: { cwd: "/nonexistent", home: "/nonexistent", uid: 1000 },
    configPath,
  }).config;
}

export interface TestPrimary {
  primary: Primary;
  port: number;
  dataDir: string;
  records: Array<Record<string, unknown>>;
  config: Config;
  addNode(name: string): string;
  close(): Promise<void>;
}

export async function startPrimary(
  t: TestContext,
  flags: Record<string, string> = {},
  dataDir?: string,
  agentBundle?: string,
  /** INI text for the primary's config file (alert rules and channels, say). */
  ini?: string,
): Promise<TestPrimary> {
  // Its own directory unless given one, removed only when the test process exits:
  // a test may start a primary on it again, and the hooks that close them run in order.
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), "picluster-primary-"));
  if (dataDir === undefined) removeAtExit(dir);
  let built: Primary | undefined;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await built?.close();
  };
  // Registered before anything can fail, so a primary that did not start still goes.
  t.after(close);
  let configPath: string | undefined;
  if (ini !== undefined) {
    configPath = join(scratchDir(t, "picluster-primary-config-"), "picluster.ini");
    writeFileSync(configPath, ini);
  }
  const config = testConfig(
    {
      "primary.port": "0",
      "http.port": "0",
      "primary.bind_host": "127.0.0.1",
      "log.liveness_interval": "1h",
      ...flags,
    },
    configPath,
  );
  const { log, records } = captureLog();
  const { primary } = await buildPrimary({
    config,
    dataDir: dir,
    log,
    localToken: "off",
    version: "0.1.0-test",
    dashboardDir: DASHBOARD,
    agentBundle: agentBundle ?? null,
  });
  built = primary;
  const { agentPort } = await primary.start();
  return {
    primary,
    port: agentPort,
    dataDir: dir,
    records,
    config,
    addNode: (name) => {
      if (primary.credentials === undefined) throw new Error("primary runs without TLS");
      return primary.credentials.addToken(name);
    },
    close,
  };
}

/** The port the primary's HTTP API listens on, from its log. */
export function httpPort(p: TestPrimary): number {
  const r = p.records.find((x) => x.msg === "HTTP API listening");
  return Number(r?.port);
}

const DASHBOARD = new URL("../../../../dashboard/dist/web", import.meta.url).pathname;
const BIN = new URL("../../../../cli/bin/picluster.js", import.meta.url).pathname;

/**
 * An agent in its own process (the CLI), so that it can be killed -9;
 * `ini` is its config file's text (tasks, say).
 */
export function spawnAgent(
  t: TestContext,
  p: TestPrimary,
  name: string,
  ini = "",
  /** An earlier agent's data directory: the same node comes back (no new token). */
  dataDir?: string,
): ChildProcess & { dataDir: string } {
  const dir = dataDir ?? scratchDir(t, "picluster-agent-proc-");
  const config = join(dir, "agent.ini");
  writeFileSync(config, ini);
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("PICLUSTER_")),
  );
  const child = spawn(process.execPath, [BIN, "agent", "--config", config], {
    env: {
      ...env,
      PICLUSTER_NODE_DATA_DIR: dir,
      PICLUSTER_NODE_NAME: name,
      PICLUSTER_AGENT_PRIMARY_HOST: "127.0.0.1",
      PICLUSTER_AGENT_PRIMARY_PORT: String(p.port),
      PICLUSTER_AGENT_JOIN_TOKEN: dataDir === undefined ? p.addNode(name) : "",
      PICLUSTER_LOG_FORMAT: "json",
      PICLUSTER_LOG_LIVENESS_INTERVAL: "1h",
    },
    stdio: ["ignore", "ignore", "ignore"],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  return Object.assign(child, { dataDir: dir });
}

/**
 * The real primary in a child process (the CLI), so that it can be killed
 * with SIGKILL; `env` adds settings (PICLUSTER_SECTION_KEY). `port` is the
 * agent port (0: chosen free); `joined()` resolves when it has joined the
 * scale-out cluster.
 */
export function spawnPrimary(
  dataDir: string,
  port: number,
  env: Record<string, string> = {},
): { child: ChildProcess; port: Promise<number>; joined: () => Promise<void> } {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("PICLUSTER_")),
  );
  const child = spawn(process.execPath, [BIN, "primary"], {
    env: {
      ...clean,
      PICLUSTER_NODE_DATA_DIR: dataDir,
      PICLUSTER_PRIMARY_PORT: String(port),
      PICLUSTER_HTTP_PORT: "0",
      PICLUSTER_PRIMARY_BIND_HOST: "127.0.0.1",
      PICLUSTER_PRIMARY_VITALS_INTERVAL: "1s",
      PICLUSTER_LOG_FORMAT: "json",
      PICLUSTER_LOG_LIVENESS_INTERVAL: "1h",
      ...env,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let onJoined: () => void = () => {};
  const joined = new Promise<void>((resolve) => {
    onJoined = resolve;
  });
  const listening = new Promise<number>((resolve, reject) => {
    if (child.stderr === null) return reject(new Error("no stderr"));
    createInterface({ input: child.stderr }).on("line", (line) => {
      if (!line.startsWith("{")) return;
      const r = JSON.parse(line) as { msg?: string; port?: number };
      if (r.msg === "listening for agents" && typeof r.port === "number") resolve(r.port);
      if (r.msg === "joined the primaries' cluster") onJoined();
    });
    child.once("exit", (code) => reject(new Error(`primary exited early (${code})`)));
  });
  return {
    child,
    port: deadline(listening, 10_000, "primary listening"),
    joined: () => deadline(joined, 20_000, "primary joined the cluster"),
  };
}

/** SIGKILL `child` (if it still runs) and wait for it to end. */
export function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

const FIXTURES = new URL("../../../../agent/test/fixtures/", import.meta.url).pathname;

export interface TestAgent {
  agent: Agent;
  dataDir: string;
  records: Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

/**
 * A real agent joined to `p` with a fresh token. Its collectors read a copy
 * of a fixture tree (so every agent has its own node id and steady figures).
 */
export function startAgent(
  t: TestContext,
  p: { port: number; addNode?(name: string): string },
  name: string,
  flags: Record<string, string> = {},
  board = "pi4",
  /** INI text for the agent's config file (task sections, say). */
  ini?: string,
  /** The file `logs.tail` reads as the agent's own log. */
  logFile?: string,
  /** The programs unit and ping checks run (see AgentOptions.checkPrograms). */
  checkPrograms?: { systemctl?: string; ping?: string },
): TestAgent {
  const dataDir = scratchDir(t, "picluster-agent-");
  const root = join(dataDir, "root");
  cpSync(join(FIXTURES, board), root, { recursive: true });
  const token = p.addNode ? p.addNode(name) : "";
  let configPath: string | undefined;
  if (ini !== undefined) {
    configPath = join(dataDir, "agent.ini");
    writeFileSync(configPath, ini);
  }
  const config = testConfig(
    {
      "agent.primary_host": "127.0.0.1",
      "agent.primary_port": String(p.port),
      "agent.join_token": token,
      "node.name": name,
      "log.liveness_interval": "1h",
      ...flags,
    },
    configPath,
  );
  const { log, records } = captureLog();
  const agent = new Agent({
    config,
    dataDir,
    log,
    version: "0.1.0-test",
    collectors: { root, os: { ...nodeOsFacts(), hostname: () => name } },
    ...(logFile === undefined ? {} : { logFile }),
    ...(checkPrograms === undefined ? {} : { checkPrograms }),
  });
  agent.start();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await agent.stop("test over");
  };
  t.after(stop);
  return { agent, dataDir, records, stop };
}

/** A hand-driven peer: raw frames in and out over TLS-PSK with a join token. */
export class ScriptedPeer {
  readonly received: Envelope[] = [];
  private readonly decoder = new NdjsonDecoder();
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(readonly socket: TLSSocket) {
    socket.on("data", (chunk: Buffer) => {
      for (const item of this.decoder.feed(chunk))
        if (!(item instanceof Error)) this.received.push(item);
      this.wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    socket.on("error", () => {});
  }

  static connect(
    t: TestContext,
    port: number,
    credential: { identity: string; key: Buffer },
  ): Promise<ScriptedPeer> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({
        host: "127.0.0.1",
        port,
        minVersion: TLS_MIN_VERSION,
        ciphers: TLS_CIPHERS,
        pskCallback: () => ({ identity: credential.identity, psk: credential.key }),
        checkServerIdentity: () => undefined,
      });
      t.after(() => {
        socket.destroy();
      });
      socket.once("secureConnect", () => resolve(new ScriptedPeer(socket)));
      socket.once("error", reject);
    });
  }

  /** Join with a token from `node add`, send hello, and wait for welcome. */
  static async join(
    t: TestContext,
    p: TestPrimary,
    name: string,
    nodeId: string,
  ): Promise<ScriptedPeer> {
    const token = parseJoinToken(p.addNode(name));
    const peer = await ScriptedPeer.connect(t, p.port, {
      identity: `${JOIN_IDENTITY_PREFIX}${token.id}`,
      key: token.secret,
    });
    peer.send({
      v: 1,
      type: "hello",
      ts: Date.now(),
      payload: { nodeId, name, version: "0.1.0-test", protocols: [1], labels: {} },
    });
    await peer.next("welcome", 2_000);
    return peer;
  }

  send(env: Envelope): void {
    this.writeRaw(`${JSON.stringify(env)}\n`);
  }

  writeRaw(data: string | Buffer): void {
    this.socket.write(data);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** The next received message of `type` not yet taken, waiting up to `within` ms. */
  async next(
    type: string,
    within: number,
    where: (e: Envelope) => boolean = () => true,
  ): Promise<Envelope> {
    const deadline = Date.now() + within;
    for (;;) {
      const index = this.received.findIndex((e) => e.type === type && where(e));
      if (index >= 0) return this.received.splice(index, 1)[0] as Envelope;
      if (this.closed) throw new Error(`connection closed before a "${type}" message arrived`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no "${type}" message within ${within} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Resolves when the primary closes the connection, or rejects after `within` ms. */
  async closedWithin(within: number): Promise<void> {
    const deadline = Date.now() + within;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`connection still open after ${within} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

/** The primary's audit log, once what it wrote so far is on disk (the log is written asynchronously). */
export async function auditLines(p: TestPrimary): Promise<Array<Record<string, unknown>>> {
  await p.primary.audit.flushed();
  return readFileSync(join(p.dataDir, "audit.log"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The `picluster` command's entry point, run as its own process by the tests. */
export const CLI_BIN = new URL("../../../../cli/bin/picluster.js", import.meta.url).pathname;

export interface CliRun {
  status: number | null;
  out: string;
  err: string;
}

/**
 * The CLI in its own process against a primary's HTTP port, to its end:
 * no PICLUSTER_ variables of ours leak in; `token` null sends none.
 */
export function runCli(
  t: TestContext,
  args: string[],
  opts: {
    port: number;
    token: string | null;
    env?: Record<string, string>;
    stdin?: string;
    timeoutMs?: number;
  },
): Promise<CliRun> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("PICLUSTER_")),
  );
  const child = spawn(
    process.execPath,
    [
      CLI_BIN,
      ...args,
      "--http-port",
      String(opts.port),
      ...(opts.token === null ? [] : ["--http-token", opts.token]),
    ],
    { env: { ...clean, ...opts.env }, cwd: scratchDir(t, "picluster-cli-cwd-") },
  );
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  child.stdin.end(opts.stdin ?? "");
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  return deadline(
    new Promise((resolve) => child.on("close", (status) => resolve({ status, out, err }))),
    opts.timeoutMs ?? 15_000,
    `picluster ${args.join(" ")}`,
  );
}

/** Whether GET /api/alerts shows `rule` firing on `node` (with `value`, when given). */
export async function alertFiring(
  base: string,
  rule: string,
  node: string,
  value?: number,
): Promise<boolean> {
  const a = (await (await fetch(`${base}/api/alerts`)).json()) as {
    states: Array<{ rule: string; name: string; state: string; value: number }>;
  };
  return a.states.some(
    (s) =>
      s.rule === rule &&
      s.name === node &&
      s.state === "firing" &&
      (value === undefined || s.value === value),
  );
}
