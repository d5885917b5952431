/**
 * What the cluster suite and its child processes say to each other: the
 * simulator (`sim/agents.js`), the server host (`sim/server.js`, a real
 * Primary or the no-op reader) and the credential file they share.
 */

/** One simulated node's credential, as issued by the primary's CredentialStore. */
export interface SimCredential {
  name: string;
  nodeId: string;
  identity: string;
  /** base64url, as the store keeps it. */
  key: string;
}

export interface CredentialsFile {
  agents: SimCredential[];
}

/** Latency figures in ms. */
export interface Spread {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export interface ConnectArgs {
  host: string;
  port: number;
  credsFile: string;
  /** Agents `first … first+count-1` of the credential file. */
  first: number;
  count: number;
  /** Handshakes in flight at once. */
  concurrency: number;
  attemptTimeoutMs: number;
  attempts: number;
  /** Give up on agents not connected by then; the result says how many made it. */
  deadlineMs: number;
  /** Vitals phases are spread evenly over this many agents (the whole simulated cluster). */
  spreadOver: number;
  /**
   * Other primaries: an agent whose link drops goes to the next one in
   * [host:port, ...failover] after a jittered wait, as the agent's
   * `[agent] primary_host` list does. Without it a dropped agent stays down.
   */
  failover?: Array<{ host: string; port: number }>;
}

export interface FailoverStatus {
  /** Agents whose link dropped and that are not welcomed anywhere yet. */
  away: number;
  /** Welcomes after a drop, and when the last came (epoch ms, precise). */
  reconnected: number;
  lastWelcomeAt: number | null;
}

export interface ConnectResult {
  connected: number;
  failed: number;
  elapsedMs: number;
  /** Failure reasons and how often each was seen (including attempts that were retried). */
  errors: Record<string, number>;
  /** Welcomes per second over the whole connection phase. */
  perSecond: number;
}

export interface SimWindow {
  wallMs: number;
  cpuPct: number;
  rssBytes: number;
  sent: { heartbeat: number; vitals: number };
  /** Connections of this simulator that closed during the window. */
  closed: number;
  /** How late the send scheduler ran behind its slots (a saturated simulator shows here). */
  schedulerLateMs: { p99: number; max: number };
}

export interface SilenceResult {
  /**
   * Epoch ms (sub-ms precision) of the agent's last frame write: its last
   * heartbeat, or a vitals sample if one went after it. Undefined if it sent none.
   */
  lastFrameAt: number | undefined;
}

export interface SimStatus {
  ready: number;
  closed: number;
}

export type SimCommands = {
  connect: { args: ConnectArgs; result: ConnectResult };
  "window-start": { args: Record<string, never>; result: Record<string, never> };
  "window-end": { args: Record<string, never>; result: SimWindow };
  /** Send time (epoch ms, as stamped into `ts`) of every vitals frame, per agent index, per seq - 1. */
  "sent-ts": { args: Record<string, never>; result: { sentTs: Array<number[] | null> } };
  silence: { args: { index: number }; result: SilenceResult };
  /** socket.destroy() on one agent; `at` is epoch ms with sub-ms precision. */
  crash: { args: { index: number }; result: { at: number } };
  status: { args: Record<string, never>; result: SimStatus };
  /**
   * Every connected agent sends details that allow `task` (one integer
   * argument `n`) with `slots` at once, and from then answers each
   * `task.run` at once with exit 0 (a no-op task). `answered` counts them.
   */
  "offer-task": { args: { task: string; slots: number }; result: { sent: number } };
  "task-count": { args: Record<string, never>; result: { answered: number } };
  failover: { args: Record<string, never>; result: FailoverStatus };
  close: { args: Record<string, never>; result: Record<string, never> };
};

export type ServerMode = "primary" | "noop";

export interface ServerStartArgs {
  mode: ServerMode;
  credsFile: string;
  /** The primary's data directory (holds picluster.db with the credentials, and the log). */
  dataDir: string;
  maxHandshakesPerAddress: number;
  /** More `section.key` settings (the scale-out suite's `cluster.*`). */
  flags?: Record<string, string>;
}

export interface ServerStatus {
  /** Nodes per registry state (primary) or identified connections as `alive` (no-op reader). */
  states: Record<string, number>;
  connections: number;
}

export interface ServerWindow {
  wallMs: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  /** Of one core: (user + system) / wall. */
  cpuPct: number;
  rssBytes: { median: number; max: number; samples: number };
  received: { total: number; vitals: number };
  /**
   * Primary: every `node.vitals` event as [agent index, seq, event.at] triples
   * (joined with the simulator's send times by the suite). No-op reader: empty.
   */
  vitalsEvents: number[];
  /** No-op reader: receive time − `ts` of every vitals frame, ms. Primary: empty. */
  lagsMs: number[];
  /** `node.state` transitions during the window, by target state. */
  transitions: Record<string, number>;
  /** The primary's periodic work during the window (liveness sweep, store commits, …), timed in place. */
  phases: Record<string, { calls: number; totalMs: number; maxMs: number }>;
  eventLoopDelayMs: { p50: number; p99: number; max: number };
}

export type ServerCommands = {
  start: { args: ServerStartArgs; result: { port: number } };
  status: { args: Record<string, never>; result: ServerStatus };
  "window-start": { args: Record<string, never>; result: Record<string, never> };
  "window-end": { args: Record<string, never>; result: ServerWindow };
  /** Primary: ping every node (through the other primaries for theirs); how long, how many answered. */
  "ping-all": { args: { timeoutMs: number }; result: { ms: number; ok: number; total: number } };
  close: { args: Record<string, never>; result: Record<string, never> };
};

/** Epoch milliseconds with sub-millisecond precision; comparable across processes on one machine. */
export function preciseNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Agent names carry their index, so events can be joined with the simulator's records. */
export function simName(index: number): string {
  return `sim-${String(index).padStart(5, "0")}`;
}

export function simIndex(name: string): number {
  return Number.parseInt(name.slice(4), 10);
}
