/**
 * The composition root of the agent: builds every part, starts them in
 * order and stops them in reverse. Nothing else constructs subsystems.
 */

import { existsSync } from "node:fs";
import { hostname } from "node:os";
import type { Duplex } from "node:stream";
import {
  type Clock,
  type Config,
  dataFiles,
  describeError,
  formatHostPort,
  type HostPort,
  JOIN_IDENTITY_PREFIX,
  type Logger,
  type MessageMap,
  PiclusterError,
  PROTOCOL_VERSION,
  parseHostPort,
  parseJoinToken,
  readCredentialFile,
  readJoinTokenFile,
  startLiveness,
  systemClock,
  writeCredentialFile,
} from "@picluster/common";
import { Checks } from "./checks.js";
import {
  type CollectorContext,
  collectDetails,
  nodeOsFacts,
  VitalsCollector,
} from "./collectors/index.js";
import { Containers } from "./containers.js";
import { CustomMetrics } from "./custom-metrics.js";
import { type DialTarget, dial, isRefusal, type PskCredential } from "./dial.js";
import { nodeId } from "./identity.js";
import { AgentLink } from "./link.js";
import { Outbox } from "./outbox.js";
import { type CatalogTask, countUpgradable, taskCatalog } from "./tasks/catalog.js";
import { TaskExecutor } from "./tasks/executor.js";
import type { RunResult } from "./tasks/runner.js";

export interface AgentOptions {
  config: Config;
  /** Resolved data directory (node id, credential). */
  dataDir: string;
  log: Logger;
  /** Where the periodic `alive` record goes (the log file, not a terminal); default `log`. */
  livenessLog?: Logger;
  version: string;
  clock?: Clock;
  /** Filesystem root for the collectors ("/" on a node; a fixture tree in tests). */
  collectors?: CollectorContext;
  /**
   * The programs unit and ping checks run (default `systemctl`, `ping` from
   * PATH). Tests where no systemd runs point `systemctl` at a program that
   * answers as `systemctl show` does.
   */
  checkPrograms?: { systemctl?: string; ping?: string };
  /** Override the transport (tests); defaults to TLS/TCP dialing. */
  dial?: (target: DialTarget, signal: AbortSignal) => Promise<Duplex>;
  /** The agent's own log file, for `logs.tail`; absent when it logs to the console only. */
  logFile?: string;
  /** The agent cannot go on (a reboot that failed): the process should exit non-zero. */
  onFatal?: () => void;
}

export class AgentError extends PiclusterError {}

/** The first automatic updates.check after start, then one an hour. */
export const UPDATES_FIRST_MS = 5 * 60_000;
export const UPDATES_EVERY_MS = 3_600_000;

/** Between a reboot/shutdown task's answer and the agent's bye. */
export const POWER_DELAY_MS = 500;

function describeTask(t: CatalogTask): NonNullable<MessageMap["details"]["tasks"]>[number] {
  return {
    name: t.name,
    description: t.description,
    builtin: t.builtin,
    disruptive: t.disruptive,
    timeoutMs: t.steps.reduce((sum, s) => sum + s.timeoutMs, 0),
    args: t.steps.flatMap((s) =>
      s.args.map((a) => ({
        name: a.name,
        type: a.type,
        ...(a.pattern === undefined ? {} : { pattern: a.pattern }),
      })),
    ),
  };
}

/** How often details (addresses, disks, …) are checked for changes; sent only when they differ. */
export const DETAILS_CHECK_MS = 60_000;

export function credentialPath(config: Config, dataDir: string): string {
  return config.agent.credential === "" ? dataFiles(dataDir).credential : config.agent.credential;
}

/** How long a vitals sample waits for the container API before going without it. */
const CONTAINERS_WITHIN_MS = 3_000;

export class Agent {
  /** `[agent] primary_host`: the primaries to try, in order; the one in use is `primaryAt`. */
  private readonly primaries: HostPort[];
  private primaryAt = 0;
  readonly id: string;
  readonly link: AgentLink;
  readonly outbox: Outbox;
  private credential: PskCredential | undefined;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly collectors: CollectorContext;
  private readonly vitals: VitalsCollector;
  /** The `[metrics.NAME]` sections' series, sent with each vitals sample. */
  readonly custom: CustomMetrics;
  /** The `[check.NAME]` sections' latest results, sent with each vitals sample. */
  readonly checks: Checks;
  /** Containers from the node's Docker or Podman API, when it has one. */
  readonly containers: Containers;
  private readonly abort = new AbortController();
  private vitalsMs: number;
  private stopVitals: () => void = () => {};
  private sampling = false;
  readonly tasks: TaskExecutor;
  private readonly catalog: ReadonlyMap<string, CatalogTask>;
  /** From the last updates.check, sent with the details. */
  private updates: { available: number; checkedAt: number } | undefined;

  constructor(private readonly opts: AgentOptions) {
    const { config } = opts;
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log.child({ component: "agent" });
    this.primaries = config.agent.primary_host.map((h) =>
      parseHostPort(h, config.agent.primary_port),
    );
    if (this.primaries.length === 0)
      throw new AgentError(
        "E_CONFIG",
        "[agent] primary_host is empty: name the primary to report to",
      );
    this.collectors = opts.collectors ?? { root: "/", os: nodeOsFacts() };
    this.id = nodeId(this.collectors.root, opts.dataDir);
    this.credential = config.agent.tls ? this.loadCredential() : undefined;
    this.outbox = new Outbox(config.agent.outbox_size);
    this.vitals = new VitalsCollector(this.collectors);
    this.custom = new CustomMetrics({
      defs: Object.values(config.metrics),
      maxSeries: config.agent.max_custom_series,
      clock: this.clock,
      log: this.log.child({ component: "custom-metrics" }),
      cwd: opts.dataDir,
    });
    this.checks = new Checks({
      defs: Object.values(config.check),
      clock: this.clock,
      log: this.log.child({ component: "checks" }),
      ...opts.checkPrograms,
    });
    this.containers = new Containers({
      socket: config.containers.socket,
      max: config.containers.max,
      statsEveryMs: config.containers.stats_interval,
      clock: this.clock,
      log: this.log.child({ component: "containers" }),
    });
    this.vitalsMs = config.primary.vitals_interval;
    const catalog = taskCatalog(config, opts.version, this.collectors.root);
    this.catalog = catalog;
    this.tasks = new TaskExecutor({
      catalog,
      maxRunning: config.tasks.max_running,
      outputLimit: config.tasks.output_limit,
      defaultCwd: opts.dataDir,
      root: this.collectors.root,
      log: opts.log.child({ component: "tasks" }),
      onPowerAction: (effect, act) => this.powerAction(effect, act),
      onSummarized: (task, stdout) => {
        if (task !== "updates.check") return;
        this.updates = { available: countUpgradable(stdout), checkedAt: this.clock.now() };
        this.link.refreshDetails();
      },
    });
    const taskInfo = [...catalog.values()].map(describeTask);
    this.link = new AgentLink({
      clock: this.clock,
      log: opts.log.child({ component: "link" }),
      outbox: this.outbox,
      target: () => ({
        ...(this.primaries[this.primaryAt % this.primaries.length] as HostPort),
        credential: this.credential,
        timeoutMs: config.primary.handshake_timeout,
      }),
      // With several primaries, one that cannot be reached or was lost gives way to the next.
      nextTarget: () => {
        this.primaryAt = (this.primaryAt + 1) % this.primaries.length;
      },
      dial: opts.dial ?? dial,
      hello: () => this.hello(),
      details: async () => ({
        ...(await collectDetails(this.collectors, {
          agentVersion: opts.version,
          nodeVersion: process.version,
        })),
        tasks: taskInfo,
        maxRunning: config.tasks.max_running,
        ...(this.updates === undefined ? {} : { updates: this.updates }),
      }),
      tasks: this.tasks,
      // Loaded when first asked (the agent's memory budget counts what loads at start).
      processesTop: async (r) =>
        (await import("./collectors/processes.js")).topProcesses(
          this.collectors,
          r.n,
          r.sampleMs ?? 500,
        ),
      ...(opts.logFile === undefined
        ? {}
        : {
            logsTail: async (r, follow) => {
              const { followLines, tailLines } = await import("./log-tail.js");
              const file = opts.logFile as string;
              const lines = tailLines(file, r.lines);
              if (r.follow !== true) return { lines };
              follow.output(lines.map((l) => `${l}\n`).join(""));
              await followLines(file, follow.output, follow.signal);
              return { lines: [] };
            },
          }),
      onCredential: (c) => this.saveCredential(c),
      onWelcome: (w) => {
        this.setVitalsInterval(w.vitalsMs);
        // A node that just connected (a new one, or the primary restarted)
        // shows its figures at once, not one interval later. The agent's
        // first sample has no earlier counters: its rates are averages since
        // boot (see VitalsCollector), true if not current, and current from
        // the next one on.
        this.sampleVitals();
      },
      reconnectMaxMs: config.agent.reconnect_max,
      maxFrameBytes: config.primary.max_frame_bytes,
      onDialError: (err) => this.onDialError(err),
    });
  }

  /** Join-token refusals since start (a node that never had a credential). */
  private refusals = 0;

  /**
   * A refused join token will not be accepted later: say so in words that
   * name the fix, wait the longest, and after `[agent] join_refusals` give
   * up (the service manager's restart then starts over, slowly).
   */
  private onDialError(err: unknown): "retry" | "refused" | "give-up" {
    if (!isRefusal(err) || !this.credential?.identity.startsWith(JOIN_IDENTITY_PREFIX))
      return "retry";
    this.refusals++;
    const limit = this.opts.config.agent.join_refusals;
    this.log.error(
      "this join token was refused (unknown, used or expired): make a new one with `picluster node add NAME` on the primary",
      { refusals: this.refusals, ...(limit > 0 ? { giveUpAfter: limit } : {}) },
    );
    if (limit === 0 || this.refusals < limit) return "refused";
    this.log.error("giving up: the join token was refused every time", {
      refusals: this.refusals,
      key: "[agent] join_refusals",
    });
    void this.stop("join token refused").then(() => this.opts.onFatal?.());
    return "give-up";
  }

  /** This node's credential, or the join token to get one; TLS without either cannot work. */
  private loadCredential(): PskCredential {
    const path = credentialPath(this.opts.config, this.opts.dataDir);
    const saved = readCredentialFile(path);
    if (saved !== undefined) return { identity: saved.identity, key: saved.key };
    const { join_token, join_token_file } = this.opts.config.agent;
    // Only now, with no credential saved: a joined node needs neither the token nor its file.
    const token = join_token_file === "" ? join_token : readJoinTokenFile(join_token_file);
    if (token === "") {
      throw new AgentError(
        "E_NO_CREDENTIAL",
        `no credential at ${path} and no join token: on the primary run \`picluster node add NAME\`, then start this agent with --agent-join-token-file FILE (or - to read it from standard input)`,
      );
    }
    const parsed = parseJoinToken(token);
    this.log.info("no credential yet, joining with the one-time token", { credential: path });
    return { identity: `${JOIN_IDENTITY_PREFIX}${parsed.id}`, key: parsed.secret };
  }

  private saveCredential(c: MessageMap["credential"]): void {
    const path = credentialPath(this.opts.config, this.opts.dataDir);
    // Only a join hands out a credential; anything else offering one is ignored.
    if (!this.credential?.identity.startsWith(JOIN_IDENTITY_PREFIX)) {
      this.log.warn("ignored a credential offered outside a join", { identity: c.identity });
      return;
    }
    try {
      const key = Buffer.from(c.key, "base64url");
      writeCredentialFile(path, { identity: c.identity, key, name: c.name });
      this.credential = { identity: c.identity, key };
      this.log.info("joined: credential saved", { credential: path, name: c.name });
    } catch (err) {
      // Keep using the token: the primary hands out the same credential again.
      this.log.error("cannot save the credential; will retry on next connection", {
        credential: path,
        err: describeError(err),
      });
    }
  }

  private hello(): MessageMap["hello"] {
    const { config } = this.opts;
    return {
      nodeId: this.id,
      name: config.node.name || hostname(),
      version: this.opts.version,
      protocols: [PROTOCOL_VERSION],
      labels: { ...config.node.labels },
    };
  }

  start(): void {
    const { config } = this.opts;
    if (!config.agent.tls) {
      this.log.warn(
        "TLS IS OFF: this node sends everything in clear and the primary cannot authenticate it. Use only to debug.",
      );
    }
    startLiveness({
      log: this.opts.livenessLog?.child({ component: "agent" }) ?? this.log,
      clock: this.clock,
      intervalMs: config.log.liveness_interval,
      signal: this.abort.signal,
    });
    this.setVitalsInterval(this.vitalsMs);
    this.custom.start();
    this.checks.start();
    const stopDetails = this.clock.every(DETAILS_CHECK_MS, () => this.link.refreshDetails());
    this.abort.signal.addEventListener("abort", stopDetails, { once: true });
    this.scheduleUpdatesCheck();
    this.link.start();
    this.log.info("agent started", {
      nodeId: this.id,
      primary: this.primaries.map(formatHostPort).join(", "),
    });
  }

  /**
   * Count upgradable packages now and then (a while after start, then
   * hourly), when this node allows updates.check and has apt. Runs through
   * the executor like a request, so it counts against max_running.
   */
  private scheduleUpdatesCheck(): void {
    if (!this.catalog.has("updates.check") || this.collectors.root !== "/") return;
    if (!existsSync("/usr/bin/apt-get")) return;
    let run = 0;
    const check = () => {
      // Negative ids never collide with the primary's requests.
      this.tasks
        .run(-1 - run++, { task: "updates.check", args: {} }, () => {})
        .catch((err: unknown) =>
          this.log.warn("updates check failed", { err: describeError(err) }),
        );
    };
    const cancelFirst = this.clock.after(UPDATES_FIRST_MS, () => {
      check();
      const stop = this.clock.every(UPDATES_EVERY_MS, check);
      this.abort.signal.addEventListener("abort", stop, { once: true });
    });
    this.abort.signal.addEventListener("abort", cancelFirst, { once: true });
  }

  private setVitalsInterval(ms: number): void {
    if (ms === this.vitalsMs && this.sampling) return;
    this.vitalsMs = ms;
    this.sampling = true;
    this.stopVitals();
    this.stopVitals = this.clock.every(ms, () => this.sampleVitals());
  }

  private sampleVitals(): void {
    Promise.all([
      this.vitals.sample(this.clock.now()),
      this.containers.sampleWithin(CONTAINERS_WITHIN_MS),
    ]).then(
      ([sample, containers]) => {
        const custom = this.custom.size > 0 ? this.custom.current() : [];
        const checks = this.checks.size > 0 ? this.checks.current() : [];
        this.link.enqueueVitals({
          ...sample,
          ...(custom.length > 0 ? { custom } : {}),
          ...(checks.length > 0 ? { checks } : {}),
          ...(containers.length > 0 ? { containers } : {}),
        });
      },
      (err: unknown) => this.log.error("cannot collect vitals", { err: describeError(err) }),
    );
  }

  /**
   * A reboot or shutdown task has answered: say bye (the primary shows this
   * node as left, not down), then act. Should the command fail, the agent
   * exits non-zero so that its service manager starts it again.
   */
  private powerAction(effect: "reboot" | "shutdown", act: () => Promise<RunResult>): void {
    // A moment for the answer to leave before the link closes.
    this.clock.after(POWER_DELAY_MS, () => {
      void this.stop(`node ${effect}`).then(async () => {
        let result: RunResult | undefined;
        try {
          result = await act();
        } catch (err) {
          this.log.error(`cannot ${effect}`, { err: describeError(err) });
        }
        if (result?.exitCode === 0) {
          this.log.info(`${effect} under way`);
          return;
        }
        this.log.error(`${effect} failed; exiting so that the service restarts the agent`, {
          exitCode: result?.exitCode,
          signal: result?.signal,
        });
        this.opts.onFatal?.();
      });
    });
  }

  /** Say bye to the primary and stop; resolves within about 1.5 s. */
  async stop(reason = "agent stopping"): Promise<void> {
    this.abort.abort();
    this.stopVitals();
    this.custom.stop();
    this.checks.stop();
    this.tasks.cancelAll();
    await this.link.stop(reason);
    this.log.info("agent stopped", { reason });
  }
}
