/**
 * The composition root of the primary: builds every part, starts them in
 * order and stops them in reverse. Nothing else constructs subsystems.
 */

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, realpathSync } from "node:fs";
import type { Socket } from "node:net";
import { hostname } from "node:os";
import { dirname, resolve } from "node:path";
import type { TLSSocket } from "node:tls";
import {
  assertNever,
  assertWritableDataDir,
  type Clock,
  type Config,
  dataFiles,
  describeError,
  type Envelope,
  type Logger,
  PiclusterError,
  startLiveness,
  systemClock,
} from "@picluster/common";
import type Database from "better-sqlite3";
import type { FastifyInstance } from "fastify";
import { createChannel, testMessage } from "./alerts/channels.js";
import { Deliverer } from "./alerts/delivery.js";
import { AlertEngine, parseQuietHours } from "./alerts/engine.js";
import type { AlertMessage } from "./alerts/message.js";
import { ApiTokens } from "./api-tokens.js";
import { AuditLog } from "./audit.js";
import { AlertGate } from "./cluster/alert-gate.js";
import { JobLog } from "./cluster/job-log.js";
import { ClusterLink, notJoined } from "./cluster/link.js";
import { CredentialStore, type PskLookup } from "./credentials.js";
import { Dispatcher, type HandlerContext } from "./dispatcher.js";
import { type ClusterEvent, EventBus } from "./events.js";
import { HANDLERS } from "./handlers/index.js";
import { Heartbeat, type HeartbeatBody } from "./heartbeat.js";
import { type JoinSettings, sha256 } from "./http/join.js";
import { buildHttp } from "./http/server.js";
import type { JobQueue } from "./jobs/queue.js";
import { JobService } from "./jobs/service.js";
import { LegacyListener } from "./legacy/listener.js";
import { AgentListener } from "./listener.js";
import { LivenessDetector } from "./liveness.js";
import { MemoryRegistry, RESTART_REASON } from "./registry.js";
import { NodeRemoval, type RemovedNode, type RemoveRequest } from "./removal.js";
import { Session } from "./session.js";
import { type LiveSessions, SessionRegistry } from "./sessions.js";
import { SqliteJobQueue } from "./store/job-queue.js";
import { type JobRecords, JobStore } from "./store/jobs.js";
import { openDatabase, Store, type StoreHealth, type StoreOutage } from "./store/store.js";
import { TaskService } from "./tasks/service.js";

/** How often the credential file is checked for `node add` / `node revoke` from the CLI. */
export const CREDENTIAL_POLL_MS = 1_000;

export interface PrimaryOptions {
  config: Config;
  /** Resolved data directory (credentials live here). */
  dataDir: string;
  log: Logger;
  /** Where the periodic `alive` record goes (the log file, not a terminal); default `log`. */
  livenessLog?: Logger;
  version: string;
  clock?: Clock;
  /** The agent bundle served to joining nodes (packages/cli/dist/agent-bundle.cjs). */
  agentBundle?: string;
  /** The dashboard's built files (packages/dashboard/dist/web), served at /. */
  dashboardDir?: string;
}

/** Where picluster before 0.2 kept credentials; imported into the store once. */
export function credentialFile(dataDir: string): string {
  return dataFiles(dataDir).legacyCredentials;
}

/** The credential store of the primary that `config` and `dataDir` describe (call load()). */
export function credentialStore(
  config: Config,
  dataDir: string,
  clock: Clock,
  log?: Logger,
): CredentialStore {
  return new CredentialStore(storeFile(config, dataDir), clock, {
    importFrom: credentialFile(dataDir),
    ...(log === undefined ? {} : { log }),
  });
}

/** Where nodes reach this primary, for join commands: the same from the CLI and the running primary. */
export function joinSettings(
  config: Config,
  agentPort: number,
  bundleSha256: string,
): JoinSettings {
  const host = config.primary.advertise_host || hostname();
  const web = host.includes(":") ? `[${host}]` : host;
  return {
    httpUrl: `http://${web}:${config.http.port}`,
    primaryHost: host,
    agentPort,
    bundleSha256,
  };
}

/** Whether the HTTP API binds only to this machine: reads are then open without a token. */
export function isLoopbackHost(host: string): boolean {
  return /^(::ffff:)?127\./.test(host) || host === "::1" || host === "localhost";
}

export function storeFile(config: Config, dataDir: string): string {
  return config.store.file === "" ? dataFiles(dataDir).store : config.store.file;
}

/**
 * A short digest of the store file's real path: /healthz shows it, so that
 * `picluster node add` can tell whether the primary answering on its port
 * keeps its nodes in the same file it would write (without telling anyone
 * where that file is).
 */
export function storeFingerprint(file: string): string {
  let path = resolve(file);
  try {
    path = realpathSync(path);
  } catch {
    // Not created yet: its absolute path is what it will be.
  }
  return createHash("sha256").update(path).digest("hex").slice(0, 16);
}

/** How long a stopping primary waits for alert messages already queued. */
const SHUTDOWN_DRAIN_MS = 2_000;

export class Primary {
  readonly events: EventBus;
  readonly registry: MemoryRegistry;
  readonly liveness: LivenessDetector;
  readonly credentials: CredentialStore | undefined;
  readonly store: Store;
  readonly tasks: TaskService;
  /** Built in start(): it resumes the stored jobs. */
  private jobService: JobService | undefined;
  /** The job queue's own connection to the store's file. */
  private jobsDb: Database.Database | undefined;
  /** Named API tokens with roles (`picluster token add`), in the store's file. */
  private readonly apiTokens: ApiTokens;
  /** The scale-out mode's shared job log (its replica is this primary's view of every job). */
  private jobLog: JobLog | undefined;
  /** Who asked for what; `audit.flushed()` resolves once what was written is on disk. */
  readonly audit: AuditLog;
  private readonly removal: NodeRemoval;
  readonly alerts: AlertEngine;
  /** The outbound heartbeat, when `[heartbeat] url` is set. */
  readonly heartbeat: Heartbeat | undefined;
  private readonly delivery: Deliverer;
  /** The live connections of agents; hello, revocation and removal go through it. */
  readonly sessions: SessionRegistry;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly dispatcher: Dispatcher;
  private readonly listener: AgentListener;
  readonly legacy: LegacyListener | undefined;
  private http: FastifyInstance | undefined;
  private readonly startedAt: number;
  /** Sessions here, and (scale-out) nodes held by the other primaries. */
  private readonly nodeLinks: LiveSessions;
  /** Scale-out: only the leader tells; absent when embedded. */
  private readonly alertGate: AlertGate | undefined;
  /** The scale-out mode's link to the other primaries (`[cluster] nats`); absent when embedded. */
  private cluster: ClusterLink | undefined;
  private readonly abort = new AbortController();
  private readonly eventsLog: Logger;
  private closing = false;
  private seenGeneration = -1;
  /** The dashboard's address once the HTTP server listens, for links in alerts. */
  private dashboardUrl: string | undefined;

  constructor(private readonly opts: PrimaryOptions) {
    const { config } = opts;
    this.clock = opts.clock ?? systemClock;
    this.startedAt = this.clock.now();
    this.sessions = new SessionRegistry(this.clock);
    this.log = opts.log.child({ component: "primary" });
    this.eventsLog = opts.log.child({ component: "events" });
    this.events = new EventBus(this.eventsLog);
    this.registry = new MemoryRegistry(this.events);
    this.liveness = new LivenessDetector({
      registry: this.registry,
      clock: this.clock,
      suspectAfterMs: config.primary.suspect_after,
      deadAfterMs: config.primary.dead_after,
    });
    this.apiTokens = new ApiTokens(
      storeFile(config, opts.dataDir),
      this.clock,
      opts.log.child({ component: "api-tokens" }),
    );
    this.credentials = config.primary.tls
      ? credentialStore(
          config,
          opts.dataDir,
          this.clock,
          opts.log.child({ component: "credentials" }),
        )
      : undefined;
    this.store = new Store({
      file: storeFile(config, opts.dataDir),
      clock: this.clock,
      log: opts.log.child({ component: "store" }),
      retention: {
        rawMs: config.store.raw_retention,
        minuteMs: config.store.minute_retention,
        hourMs: config.store.hour_retention,
      },
    });
    this.audit = new AuditLog(
      dataFiles(opts.dataDir).auditLog,
      this.clock,
      opts.log.child({ component: "audit" }),
    );
    // Scale-out: a node held by another primary is asked through it.
    const nodeLinks: LiveSessions = {
      get: (id) => this.sessions.get(id) ?? this.cluster?.requesterFor(id),
      has: (id) => this.sessions.has(id) || (this.cluster?.heldElsewhere(id) ?? false),
    };
    this.nodeLinks = nodeLinks;
    this.tasks = new TaskService({
      registry: this.registry,
      sessions: nodeLinks,
      events: this.events,
      store: this.store,
      clock: this.clock,
      log: opts.log.child({ component: "tasks" }),
      audit: this.audit,
    });
    const alertLog = opts.log.child({ component: "alerts" });
    // Failures are events (the page and `picluster events` show them); successes are logged.
    const undelivered = (channel: string, msg: AlertMessage, attempts: number, error: string) =>
      this.events.emit({
        kind: "alert.delivery_failed",
        at: this.clock.now(),
        channel,
        rule: msg.rule,
        title: msg.title,
        attempts,
        error,
      });
    this.delivery = new Deliverer({
      channels: Object.values(config.channel).map((def) => createChannel(def, { log: alertLog })),
      log: alertLog,
      hooks: {
        onGaveUp: (channel, msg, attempts, error) =>
          undelivered(channel, msg, attempts, error.message),
        onDropped: (channel, msg, capacity) =>
          undelivered(
            channel,
            msg,
            0,
            `dropped: ${capacity} messages were already waiting for this channel`,
          ),
      },
    });
    const delivery = this.delivery;
    if (config.cluster.nats.length > 0)
      this.alertGate = new AlertGate({
        deliver: (channels, msg) => delivery.deliver(channels, msg),
        holdMs: 2 * config.cluster.lease + 5_000,
        clock: this.clock,
        log: alertLog,
      });
    this.alerts = new AlertEngine({
      rules: Object.values(config.alert),
      settings: {
        enabled: config.alerts.enabled,
        channels: config.alerts.channels
          .split(",")
          .map((c) => c.trim())
          .filter((c) => c !== ""),
        quietHours: parseQuietHours(config.alerts.quiet_hours),
        legacyQuietHours: config.alerts.legacy_quiet_hours,
        summaryAfter: config.alerts.summary_after,
      },
      registry: this.registry,
      events: this.events,
      clock: this.clock,
      log: alertLog,
      version: opts.version,
      notifier: {
        channelNames: delivery.channelNames(),
        // Scale-out: only the leader tells (the gate keeps what a follower would have told).
        deliver: (channels, msg) =>
          this.alertGate === undefined
            ? delivery.deliver(channels, msg)
            : this.alertGate.deliver(channels, msg),
      },
      dashboardUrl: () => this.dashboardUrl,
    });
    this.removal = new NodeRemoval({
      registry: this.registry,
      store: this.store,
      credentials: this.credentials,
      alerts: this.alerts,
      events: this.events,
      audit: this.audit,
      clock: this.clock,
      log: this.log,
      cutSessions: (nodeId) => this.cutSessions(nodeId),
    });
    this.heartbeat =
      config.heartbeat.url === ""
        ? undefined
        : new Heartbeat({
            url: config.heartbeat.url,
            method: config.heartbeat.method,
            intervalMs: config.heartbeat.interval,
            timeoutMs: config.heartbeat.timeout,
            clock: this.clock,
            log: opts.log,
            version: opts.version,
            body: () => this.heartbeatBody(),
          });
    const ctx: HandlerContext = {
      registry: this.registry,
      store: this.store,
      liveness: this.liveness,
      credentials: this.credentials,
      clock: this.clock,
      log: this.log,
      sessions: this.sessions,
      ...(config.cluster.nats.length === 0
        ? {}
        : {
            shareVitals: (nodeId, ts, seq, vitals) =>
              this.cluster?.shareVitals(nodeId, ts, seq, vitals) ?? Promise.reject(notJoined()),
          }),
      settings: {
        heartbeatMs: config.primary.heartbeat_interval,
        vitalsMs: config.primary.vitals_interval,
        primaryVersion: opts.version,
      },
    };
    this.dispatcher = new Dispatcher(ctx, HANDLERS);
    this.listener = new AgentListener({
      host: config.primary.bind_host,
      port: config.primary.port,
      credentials: this.credentials,
      handshakeTimeoutMs: config.primary.handshake_timeout,
      maxHandshakesPerAddress: config.primary.max_handshakes_per_address,
      log: opts.log.child({ component: "listener" }),
      clock: this.clock,
      onConnection: (socket, auth, release) => this.openSession(socket, auth, release),
    });
    this.legacy =
      config.legacy.port === undefined
        ? undefined
        : new LegacyListener({
            host: config.legacy.host,
            port: config.legacy.port,
            maxFrameBytes: config.primary.max_frame_bytes,
            strikeLimit: config.primary.strike_limit,
            identifyTimeoutMs: config.primary.handshake_timeout * 6,
            heartbeatMs: config.primary.heartbeat_interval,
            maxNodes: config.legacy.max_nodes,
            newNodesPerMinute: config.legacy.new_nodes_per_minute,
            // A name with a credential or a pending join token is that node's.
            nameTaken: (name) =>
              this.credentials?.list().some((c) => c.name === name && c.status !== "revoked") ??
              false,
            registry: this.registry,
            store: this.store,
            liveness: this.liveness,
            clock: this.clock,
            log: opts.log.child({ component: "legacy" }),
          });
  }

  async start(): Promise<{ agentPort: number; legacyPort: number | undefined; httpPort: number }> {
    try {
      return await this.startAll();
    } catch (err) {
      // Undo what did start (timers, a listener, the store) so the process can exit.
      await this.close();
      throw err;
    }
  }

  private async startAll(): Promise<{
    agentPort: number;
    legacyPort: number | undefined;
    httpPort: number;
  }> {
    // One sentence for a read-only disk, before a write fails somewhere less telling.
    assertWritableDataDir(this.opts.dataDir);
    mkdirSync(this.opts.dataDir, { recursive: true, mode: 0o700 });
    this.store.open();
    const abandoned = this.store.abandonTaskRuns(this.clock.now());
    if (abandoned > 0)
      this.log.warn("task runs left unfinished by the last primary marked failed", {
        runs: abandoned,
      });
    this.credentials?.load();
    this.apiTokens.load();
    this.registry.restore(this.store.loadNodes(), RESTART_REASON, this.clock.now());
    this.store.start();
    this.events.on((e) => {
      this.logEvent(e);
      this.store.addEvent(e, "nodeId" in e ? this.registry.get(e.nodeId) : undefined);
    });
    const offHealth = this.store.onHealth((h, ended) => this.storeHealthChanged(h, ended));
    this.abort.signal.addEventListener("abort", offHealth, { once: true });
    await this.startJobs();
    const restored = this.alerts.restore([
      ...this.store.events({ kind: "alert.firing", limit: 10_000 }),
      ...this.store.events({ kind: "alert.resolved", limit: 10_000 }),
    ]);
    if (restored > 0) this.log.info("alerts still firing from before the restart", { restored });
    this.alerts.start();
    this.liveness.start(this.abort.signal);
    startLiveness({
      log: this.opts.livenessLog?.child({ component: "primary" }) ?? this.log,
      clock: this.clock,
      intervalMs: this.opts.config.log.liveness_interval,
      signal: this.abort.signal,
    });
    if (this.credentials !== undefined) {
      const stop = this.clock.every(CREDENTIAL_POLL_MS, () => this.checkCredentials());
      this.abort.signal.addEventListener("abort", stop, { once: true });
    }
    // A token made or revoked by the CLI is seen at the next request anyway; this also tells
    // the other primaries (scale-out) within a second when nobody calls the API meanwhile.
    const stopTokens = this.clock.every(CREDENTIAL_POLL_MS, () => {
      try {
        this.apiTokens.reloadIfChanged();
      } catch (err) {
        this.log.warn("cannot read the API tokens", { err: describeError(err) });
      }
    });
    this.abort.signal.addEventListener("abort", stopTokens, { once: true });
    const { port, host } = await this.listener.start();
    this.log.info("listening for agents", { host, port, tls: this.credentials !== undefined });
    const legacyPort = await this.legacy?.start();
    if (legacyPort !== undefined)
      this.log.info("listening for tutorial nodes", { port: legacyPort });
    const httpPort = await this.startHttp(port);
    if (this.opts.config.cluster.nats.length > 0) this.joinCluster(port);
    // Last: a beat says the primary is up, listeners and all.
    this.heartbeat?.start();
    return { agentPort: port, legacyPort, httpPort };
  }

  /** The scale-out mode: presence, the leader lease and shared credentials through NATS. */
  private joinCluster(agentPort: number): void {
    const { config } = this.opts;
    const host = config.primary.advertise_host || hostname();
    const name =
      config.cluster.name || `${hostname().replace(/[^A-Za-z0-9_-]/g, "-")}-${agentPort}`;
    const cluster = new ClusterLink({
      config: config.cluster,
      name,
      presence: () => ({
        httpUrl: this.dashboardUrl ?? "",
        agentAddress: host.includes(":") ? `[${host}]:${agentPort}` : `${host}:${agentPort}`,
        version: this.opts.version,
        startedAt: this.startedAt,
        sessions: this.sessions.size,
      }),
      credentials: this.credentials,
      apiTokens: this.apiTokens,
      registry: this.registry,
      events: this.events,
      holds: (nodeId) => this.sessions.has(nodeId),
      sessions: this.sessions,
      store: this.store,
      rawRetentionMs: config.store.raw_retention,
      deadAfterMs: config.primary.dead_after,
      onCredentialsChanged: () => this.checkCredentials(),
      ...(this.alertGate === undefined ? {} : { alertGate: this.alertGate }),
      ...(this.jobLog === undefined ? {} : { jobs: this.jobLog }),
      clock: this.clock,
      log: this.opts.log.child({ component: "cluster" }),
    });
    this.cluster = cluster;
    this.sessions.onBind = (nodeId) => cluster.nodeBound(nodeId);
    this.sessions.onUnbind = (nodeId) => cluster.nodeUnbound(nodeId);
    if (this.alertGate !== undefined) this.alertGate.self = name;
    cluster.start();
    // Shared jobs resume once the job log is replayed (this primary's own, and those it takes over).
    void cluster.ready.then(async () => {
      if (this.jobLog?.attached !== true) return;
      try {
        await this.jobService?.start();
      } catch (err) {
        this.log.error("cannot start the jobs", { err: describeError(err) });
      }
    });
  }

  /** Resolves once this primary has joined the scale-out cluster (at once when embedded). */
  clusterReady(): Promise<void> {
    return this.cluster?.ready ?? Promise.resolve();
  }

  /** The scale-out mode's status (primaries, leader, NATS); undefined when embedded. */
  clusterStatus(): ReturnType<ClusterLink["status"]> | undefined {
    return this.cluster?.status();
  }

  /** What a heartbeat tells the receiver: who we are, the nodes by state, alerts firing. */
  private heartbeatBody(): HeartbeatBody {
    const nodes = { alive: 0, suspect: 0, down: 0, left: 0 };
    for (const n of this.registry.list()) nodes[n.state] += 1;
    return {
      status: "ok",
      primary: hostname(),
      version: this.opts.version,
      nodes,
      alertsFiring: this.alerts.states().filter((s) => s.state === "firing").length,
      at: this.clock.now(),
    };
  }

  /**
   * The jobs, on a connection of their own to the store's file; unfinished
   * ones resume. In the scale-out mode they are shared through the job log
   * (cluster/job-log.ts) instead, and start once this primary has joined.
   */
  private async startJobs(): Promise<void> {
    const log = this.opts.log.child({ component: "jobs" });
    const shared = this.opts.config.cluster.nats.length > 0;
    let jobs: JobRecords;
    let queue: JobQueue;
    if (shared) {
      const jobLog = new JobLog({
        replicaFile: resolve(
          dirname(storeFile(this.opts.config, this.opts.dataDir)),
          "jobs-replica.db",
        ),
        clock: this.clock,
        log: log.child({ component: "job-log" }),
        onOwner: (jobId, owner) => {
          if (owner === this.cluster?.name) this.jobService?.adopt(jobId);
          else this.jobService?.release(jobId);
        },
        onCancelled: (jobId, _from, running) => this.jobService?.cancelledElsewhere(jobId, running),
        compactEvery: this.opts.config.cluster.jobs_snapshot_every,
      });
      this.jobLog = jobLog;
      jobs = jobLog.records;
      queue = jobLog.queue;
    } else {
      const db = openDatabase(storeFile(this.opts.config, this.opts.dataDir), log);
      this.jobsDb = db;
      jobs = new JobStore(db);
      queue = new SqliteJobQueue({ db, clock: this.clock, log });
    }
    const jobLog = this.jobLog;
    this.jobService = new JobService({
      registry: this.registry,
      sessions: this.nodeLinks,
      events: this.events,
      jobs,
      queue,
      ...(jobLog === undefined ? {} : { owns: (id: number) => jobLog.owns(id) }),
      clock: this.clock,
      log,
      audit: this.audit,
    });
    if (!shared) await this.jobService.start();
  }

  /** Jobs: one task once per item on whichever selected nodes are free (after start()). */
  get jobs(): JobService {
    if (this.jobService === undefined)
      throw new PiclusterError("E_NOT_STARTED", "jobs are available once the primary has started");
    return this.jobService;
  }

  private async startHttp(agentPort: number): Promise<number> {
    const { http } = this.opts.config;
    const join = this.joinSettings(agentPort);
    const app = buildHttp({
      registry: this.registry,
      store: this.store,
      events: this.events,
      clock: this.clock,
      log: this.opts.log.child({ component: "http" }),
      version: this.opts.version,
      token: http.token,
      apiTokens: this.apiTokens,
      readsOpen: isLoopbackHost(http.host) || http.public_read,
      ...(http.status_page ? { statusChecks: http.status_checks } : {}),
      tokenRate: http.token_rate,
      audit: (record) => this.audit.write(record),
      storeId: storeFingerprint(storeFile(this.opts.config, this.opts.dataDir)),
      limits: {
        // The names this primary is known by: what it binds, what it tells
        // nodes, this machine's own name; and what the user adds.
        allowedHosts: [
          http.host,
          this.opts.config.primary.advertise_host,
          hostname(),
          `${hostname()}.local`,
          ...http.allowed_hosts,
        ],
        bodyLimit: http.body_limit,
        headersTimeoutMs: http.headers_timeout,
        requestTimeoutMs: http.request_timeout,
        idleTimeoutMs: http.idle_timeout,
        maxConnections: http.max_connections,
        maxConnectionsPerAddress: http.max_connections_per_address,
        streams: {
          maxStreams: http.max_streams,
          maxPerAddress: http.max_streams_per_address,
          resumeBytes: http.stream_resume_bytes,
          stallMs: http.stream_stall_timeout,
        },
      },
      tasks: this.tasks,
      jobs: () => this.jobs,
      nodes: { remove: (req) => this.removeNode(req) },
      alerts: {
        enabled: this.alerts.enabled,
        rules: () => this.alerts.ruleDefs,
        states: () => this.alerts.states(),
        channels: () =>
          Object.values(this.opts.config.channel).map((c) => ({ name: c.name, type: c.type })),
        test: (channel) =>
          this.delivery.channelNames().includes(channel)
            ? this.delivery.test(channel, testMessage(this.clock.now(), this.dashboardUrl))
            : undefined,
      },
      ...(this.opts.dashboardDir === undefined ? {} : { dashboardDir: this.opts.dashboardDir }),
      ...(this.credentials === undefined ? {} : { credentials: this.credentials }),
      ...(join === undefined ? {} : { join }),
      agentAddress: {
        host: this.opts.config.primary.advertise_host || hostname(),
        port: agentPort,
      },
      scaleOut: () => this.cluster?.status(),
      otherPrimaries: () => {
        const status = this.cluster?.status();
        if (status === undefined) return [];
        return status.primaries.filter((p) => p.name !== status.self).map((p) => p.agentAddress);
      },
      stats: () => ({
        rssBytes: process.memoryUsage.rss(),
        cpuSecondsTotal: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
        startTimeSeconds: Math.floor(this.startedAt / 1000),
        sessions: this.sessions.size,
        legacySessions: this.legacy?.sessionCount ?? 0,
        samplesTotal: this.store.samplesStored,
        storeOk: this.store.health.ok,
        ...(this.heartbeat === undefined
          ? {}
          : {
              heartbeatLastSuccessSeconds: Math.floor((this.heartbeat.lastSuccessAt ?? 0) / 1000),
            }),
      }),
    });
    this.http = app;
    await app.listen({ host: http.host === "" ? undefined : http.host, port: http.port });
    const address = app.server.address();
    const port = typeof address === "object" && address !== null ? address.port : http.port;
    if (!isLoopbackHost(http.host) && http.public_read)
      this.log.warn(
        "HTTP API bound beyond loopback with [http] public_read = on: anyone who can reach it can read the cluster",
        { host: http.host },
      );
    const shown =
      http.host === "" || http.host === "0.0.0.0" || http.host === "::"
        ? this.opts.config.primary.advertise_host || "127.0.0.1"
        : http.host;
    this.dashboardUrl = `http://${shown.includes(":") ? `[${shown}]` : shown}:${port}/`;
    this.log.info("HTTP API listening", {
      host: http.host,
      port,
      url: `http://${http.host.includes(":") ? `[${http.host}]` : http.host}:${port}/`,
    });
    return port;
  }

  /** The install script and agent joining nodes download, if the bundle exists. */
  private joinSettings(agentPort: number): { settings: JoinSettings; bundle: Buffer } | undefined {
    const file = this.opts.agentBundle;
    if (file === undefined || !existsSync(file)) return undefined;
    const bundle = readFileSync(file);
    return { settings: joinSettings(this.opts.config, agentPort, sha256(bundle)), bundle };
  }

  /** Close every session (agents reconnect to the next primary) and stop. */
  async close(): Promise<void> {
    // Our own shutdown says nothing about the nodes: no `down` for each of them.
    this.closing = true;
    this.abort.abort();
    // No beat goes out from a primary that is stopping.
    const heartbeatDone = this.heartbeat?.close();
    try {
      this.credentials?.flushConfirmed();
    } catch (err) {
      this.log.error("cannot delete used join tokens", { err: describeError(err) });
    }
    // Runs in progress end as cancelled (their nodes are told to stop) and are stored.
    this.alerts.close();
    // Messages already queued get a moment to go out; a dead channel cannot hold the stop.
    const deliveryDone = this.delivery.close(SHUTDOWN_DRAIN_MS);
    const tasksDone = this.tasks.close();
    // Jobs are not cancelled: what runs is stopped and queued again, and the next primary resumes them.
    const jobsDone = this.jobService?.close();
    this.sessions.closeAll("primary shutting down");
    await Promise.all([
      this.cluster?.close(),
      this.listener.close(),
      this.legacy?.close(),
      this.http?.close(),
      tasksDone,
      jobsDone,
      deliveryDone,
      heartbeatDone,
    ]);
    // The last lines (a cancel at shutdown) are on disk before the process may exit.
    await this.audit.flushed();
    await this.jobLog?.stop();
    this.jobsDb?.close();
    this.apiTokens.close();
    this.store.close();
    this.credentials?.close();
    this.log.info("stopped");
  }

  private openSession(
    socket: Socket | TLSSocket,
    auth: PskLookup | { kind: "insecure" },
    release: () => void,
  ): void {
    const { config } = this.opts;
    const session = new Session({
      socket,
      auth,
      limits: {
        maxFrameBytes: config.primary.max_frame_bytes,
        handshakeTimeoutMs: config.primary.handshake_timeout,
        strikeLimit: config.primary.strike_limit,
      },
      clock: this.clock,
      events: {
        onMessage: (s: Session, msg: Envelope) => this.dispatcher.dispatch(s, msg),
        onClose: (s: Session, reason: string) => this.closedSession(s, reason),
      },
      log: this.opts.log.child({ component: "session" }),
      requestId: () => this.sessions.requestId(),
    });
    session.releaseHandshake = release;
    if (auth.kind === "node") session.credentialIdentity = auth.identity;
    this.sessions.opened(session);
    session.start();
  }

  private closedSession(session: Session, reason: string): void {
    const live = this.sessions.closed(session);
    const id = session.nodeId;
    if (id === undefined) {
      session.log.info("connection closed before hello", { reason });
      return;
    }
    // A session replaced by a newer connection of the same node says nothing about the node.
    if (!live) return;
    if (session.leftReason !== undefined) {
      this.liveness.unwatch(id);
      this.registry.setState(id, "left", session.leftReason, this.clock.now());
      return;
    }
    if (session.saidBye || this.closing) {
      this.liveness.unwatch(id);
      return;
    }
    if (session.unstoredSeq !== undefined) {
      // Its samples were refused by our failing store: the agent reconnects
      // to send them again (it closes a link that acknowledges nothing, or
      // we closed it when the store came back). That says nothing about the
      // node; its silence does, judged by the liveness sweep as for any.
      session.log.info("connection closed with samples to send again", {
        reason,
        unstoredSeq: session.unstoredSeq,
      });
      return;
    }
    this.liveness.unwatch(id);
    this.registry.setState(id, "down", reason, this.clock.now());
  }

  /** The store stopped or resumed writing: say so (an event, the alerts) and resume the agents. */
  private storeHealthChanged(health: StoreHealth, ended: StoreOutage | undefined): void {
    if (!health.ok) {
      this.events.emit({
        kind: "primary.store_failed",
        at: health.since,
        cause: health.cause,
        code: health.code,
        error: health.error,
      });
    } else {
      this.events.emit({
        kind: "primary.store_ok",
        at: this.clock.now(),
        failedForMs: ended?.failedForMs ?? 0,
        eventsDropped: ended?.eventsDropped ?? 0,
      });
      // Agents whose samples were refused send them again on a new
      // connection (acks are cumulative: never on the one that lost some).
      // Closed now, before any of their later samples could be stored.
      for (const session of this.sessions.connections())
        if (session.unstoredSeq !== undefined)
          session.close("the store writes again: send the samples it could not keep");
    }
    this.alerts.storeHealth(health);
  }

  /** Forget a node: revoke it, cut it, delete it (and its history unless kept); see removal.ts. */
  removeNode(req: RemoveRequest): RemovedNode {
    return this.removal.remove(req);
  }

  /** End every connection of a node being removed; its end then marks nothing down. */
  private cutSessions(nodeId: string): number {
    this.liveness.unwatch(nodeId);
    return this.sessions.cutNode(nodeId);
  }

  /** Pick up `node add` / `node revoke` made by the CLI; cut sessions whose credential was revoked. */
  private checkCredentials(): void {
    const store = this.credentials;
    if (store === undefined) return;
    try {
      store.flushConfirmed();
      store.reloadIfChanged();
    } catch (err) {
      this.log.error("credential store unreadable, keeping the previous one", {
        err: describeError(err),
      });
      return;
    }
    // Any reload counts (a handshake or a join may have read the change first).
    if (store.generation === this.seenGeneration) return;
    this.seenGeneration = store.generation;
    this.legacy?.recheckNames();
    this.sessions.cutRevoked((identity) => store.isRevoked(identity));
    this.retireRevoked(store);
  }

  /**
   * Nodes whose every credential is revoked leave the cluster: `left` (not
   * `down`, whatever they were), and what fires or pends for them ends
   * without a message, as for a removed node.
   */
  private retireRevoked(store: CredentialStore): void {
    const active = new Set<string>();
    const revoked = new Set<string>();
    for (const c of store.list()) {
      if (c.nodeId === undefined) continue;
      (c.status === "revoked" ? revoked : active).add(c.nodeId);
    }
    for (const id of revoked) {
      if (active.has(id)) continue;
      const node = this.registry.get(id);
      if (node === undefined || node.legacy) continue;
      if (node.state !== "left" && !this.sessions.has(id))
        this.registry.setState(id, "left", "credential revoked", this.clock.now());
      if (this.alerts.forget(id) > 0)
        this.log.info("alerts of a revoked node ended without a message", { node: node.name });
    }
  }

  private logEvent(e: ClusterEvent): void {
    const log = this.eventsLog;
    switch (e.kind) {
      case "node.state":
        log.info("node state", {
          node: e.name,
          nodeId: e.nodeId,
          from: e.from,
          to: e.to,
          reason: e.reason,
        });
        return;
      case "node.throttling":
        (e.on ? log.warn : log.info).call(
          log,
          e.on ? "node throttling flag on" : "node throttling flag off",
          {
            node: e.name,
            nodeId: e.nodeId,
            flag: e.flag,
          },
        );
        return;
      case "node.joined":
        log.info("new node", { node: e.name, nodeId: e.nodeId });
        return;
      case "check.down":
      case "check.up":
        (e.kind === "check.down" ? log.warn : log.info).call(
          log,
          e.kind === "check.down" ? "check down" : "check up",
          { node: e.name, nodeId: e.nodeId, check: e.check, reason: e.reason },
        );
        return;
      case "container.state":
        log.info("container state", {
          node: e.name,
          nodeId: e.nodeId,
          container: e.container,
          from: e.from,
          to: e.to,
          exitCode: e.exitCode,
        });
        return;
      case "node.details":
        log.info(e.first === true ? "node details" : "node details changed", {
          node: e.name,
          nodeId: e.nodeId,
          changes: e.changes,
        });
        return;
      case "node.removed":
        log.info("node removed", {
          node: e.name,
          nodeId: e.nodeId,
          keepHistory: e.keepHistory,
          by: e.requestedBy,
        });
        return;
      case "node.vitals":
      case "task.output":
        return;
      // The store logs these itself, with the file and the error.
      case "primary.store_failed":
      case "primary.store_ok":
        return;
      case "alert.firing":
        (e.severity === "info" ? log.info : log.warn).call(log, "alert firing", {
          rule: e.rule,
          node: e.name,
          value: e.value,
          title: e.title,
        });
        return;
      case "alert.resolved":
        log.info("alert resolved", { rule: e.rule, node: e.name, title: e.title });
        return;
      case "alert.delivery_failed":
        log.error("alert not delivered", {
          channel: e.channel,
          rule: e.rule,
          attempts: e.attempts,
          error: e.error,
        });
        return;
      case "task.started":
        log.info("task started", {
          run: e.runId,
          task: e.task,
          on: e.selector,
          nodes: e.nodes,
          by: e.requestedBy,
        });
        return;
      case "task.node":
        (e.status === "failed" ? log.warn : log.info).call(log, "task result", {
          run: e.runId,
          task: e.task,
          node: e.name,
          status: e.status,
          exitCode: e.exitCode,
          ...(e.error === undefined ? {} : { error: e.error }),
        });
        return;
      case "job.started":
        log.info("job started", {
          job: e.jobId,
          task: e.task,
          on: e.selector,
          items: e.items,
          by: e.requestedBy,
        });
        return;
      case "job.progress":
        log.debug("job progress", { job: e.jobId, ok: e.ok, failed: e.failed, total: e.total });
        return;
      case "job.node_skipped":
        log.info("node skipped for a job", { job: e.jobId, node: e.name, reason: e.reason });
        return;
      case "job.finished":
        (e.status === "ok" ? log.info : log.warn).call(log, "job finished", {
          job: e.jobId,
          task: e.task,
          status: e.status,
          total: e.total,
          ok: e.ok,
          failed: e.failed,
          cancelled: e.cancelled,
          durationMs: e.durationMs,
        });
        return;
      case "task.finished":
        log.info("task finished", {
          run: e.runId,
          task: e.task,
          status: e.status,
          ok: e.ok,
          failed: e.failed,
          skipped: e.skipped,
          cancelled: e.cancelled,
        });
        return;
      default:
        assertNever(e);
    }
  }
}
