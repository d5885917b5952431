/**
 * cluster: the live cluster against the design's budgets.
 *
 * 1. Load: 100, 1 000 and 10 000 simulated agents (one child process,
 *    bench/dist/sim/agents.js) against a real Primary in another child
 *    (bench/dist/sim/server.js), then the same load against a no-op NDJSON
 *    reader as the ceiling: connection time, the server's CPU and RSS, and
 *    the lag from a vitals frame's send to the registry's update.
 * 2. Detection: a crashed node to `down`, a silent node to `suspect` and
 *    `down`, with the default thresholds.
 * 3. Agent footprint: one real `picluster agent` at default intervals, its
 *    RSS and CPU from /proc, beside a bare `node` process.
 *
 * Everything runs on 127.0.0.1 with ports picked at run time; every child
 * process is ended before the suite returns.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AGENT_NODE_FLAGS } from "@picluster/common";
import { type IssuedCredentials, issueCredentials } from "../cluster/credentials.js";
import { type DetectionResult, runDetection } from "../cluster/detection.js";
import { type FootprintResult, type ProcessFootprint, runFootprint } from "../cluster/footprint.js";
import type { ServerMode, Spread } from "../cluster/ipc.js";
import { type LoadOptions, type LoadResult, runLoad } from "../cluster/load.js";
import { MIB } from "../cluster/stats.js";
import {
  type Budget,
  budget,
  type ReportTable,
  type SuiteContext,
  type SuiteReport,
} from "../harness.js";

const SIZES = [100, 1_000, 10_000] as const;

interface Settings {
  warmupMs: number;
  windowMs: number;
  connectDeadlineMs: number;
  trials: number;
  footprint: { warmupMs: number; windowMs: number; sampleMs: number };
}

const FULL: Settings = {
  warmupMs: 12_000,
  windowMs: 30_000,
  connectDeadlineMs: 240_000,
  trials: 20,
  footprint: { warmupMs: 20_000, windowMs: 300_000, sampleMs: 5_000 },
};

const QUICK: Settings = {
  warmupMs: 3_000,
  windowMs: 6_000,
  connectDeadlineMs: 90_000,
  trials: 5,
  footprint: { warmupMs: 10_000, windowMs: 60_000, sampleMs: 2_000 },
};

/** Handshakes in flight at once while connecting; well under the 5 s handshake deadline. */
const CONCURRENCY = 128;

// Design budgets.
const MAX_LAG_P99_MS = 1_000;
const MAX_CPU_VS_NOOP = 2;
const MAX_CRASH_DOWN_MS = 200;
const MAX_SILENT_SUSPECT_MS = 3_000;
const MAX_SILENT_DOWN_MS = 5_000;
/** The design says "RSS ≤ 45 MB" (a bare node ~40 MB): 45 × 10⁶ bytes, shown in MiB. */
const MAX_AGENT_RSS_MIB = 45e6 / 2 ** 20;
const MAX_AGENT_CPU_PCT = 0.1;

/** Which code was measured: other work lands in packages/ all the time. */
function codeVersion(): string {
  const git = (...args: string[]) =>
    execFileSync("git", args, {
      cwd: new URL("../../..", import.meta.url).pathname,
      encoding: "utf8",
      timeout: 5_000,
    }).trim();
  try {
    const head = git("rev-parse", "--short", "HEAD");
    const dirty = git("status", "--porcelain", "--", "packages").split("\n").filter(Boolean);
    return dirty.length === 0 ? head : `${head} + ${dirty.length} uncommitted files in packages/`;
  } catch (err) {
    return `unknown (git: ${errorText(err).split("\n")[0] ?? ""})`;
  }
}

type LoadOutcome = LoadResult | { mode: ServerMode; agents: number; error: string };

const isResult = (o: LoadOutcome | undefined): o is LoadResult =>
  o !== undefined && !("error" in o);

const f0 = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "n/a");
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "n/a");
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "n/a");
const f3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : "n/a");
const mib = (bytes: number) => f1(bytes / MIB);
const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

function loadTables(outcomes: LoadOutcome[]): ReportTable[] {
  const traffic: string[][] = [];
  const cost: string[][] = [];
  for (const o of outcomes) {
    if (!isResult(o)) {
      traffic.push([o.mode, f0(o.agents), `failed: ${o.error.split("\n")[0] ?? ""}`]);
      continue;
    }
    const alive = o.statusAfterConnect.states.alive ?? 0;
    const transitions = Object.entries(o.server.transitions)
      .map(([to, n]) => `${n}→${to}`)
      .join(" ");
    traffic.push([
      o.mode,
      f0(o.agents),
      `${f0(alive)}/${f0(o.agents)}`,
      f1(o.connect.elapsedMs / 1000),
      f0(o.connect.perSecond),
      f0(o.sentPerSec),
      f0(o.receivedPerSec),
      f0(o.vitalsPerSec),
      f1(o.lagMs.p50),
      f1(o.lagMs.p99),
      f1(o.lagMs.max),
      transitions === "" ? "-" : transitions,
    ]);
    cost.push([
      o.mode,
      f0(o.agents),
      f1(o.server.cpuPct),
      mib(o.server.rssBytes.median),
      mib(o.server.rssBytes.max),
      f1(o.server.eventLoopDelayMs.p99),
      f1(o.simulator.cpuPct),
      f1(o.simulator.schedulerLateMs.p99),
    ]);
  }
  const ratios: string[][] = [];
  for (const n of SIZES) {
    const p = outcomes.find((o) => o.mode === "primary" && o.agents === n);
    const z = outcomes.find((o) => o.mode === "noop" && o.agents === n);
    if (!isResult(p) || !isResult(z)) continue;
    ratios.push([
      f0(n),
      f1(p.server.cpuPct),
      f1(z.server.cpuPct),
      `${f2(p.server.cpuPct / z.server.cpuPct)}×`,
      f1(p.lagMs.p99),
      f1(z.lagMs.p99),
    ]);
  }
  const phases: string[][] = [];
  for (const o of outcomes) {
    if (!isResult(o) || o.mode !== "primary") continue;
    for (const [label, p] of Object.entries(o.server.phases)) {
      phases.push([
        f0(o.agents),
        label,
        f0(p.calls),
        f2((p.totalMs / o.server.wallMs) * 100),
        f2(p.totalMs / p.calls),
        f1(p.maxMs),
      ]);
    }
  }
  return [
    {
      title:
        "Load: connecting, then the steady window (lag = vitals send → registry update; no-op: → JSON.parse)",
      columns: [
        "server",
        "agents",
        "alive",
        "connect s",
        "conn/s",
        "sent msg/s",
        "recv msg/s",
        "vitals/s",
        "lag p50 ms",
        "p99 ms",
        "max ms",
        "state changes",
      ],
      rows: traffic,
      numeric: [1, 3, 4, 5, 6, 7, 8, 9, 10],
    },
    {
      title:
        "Load: cost during the window (CPU % of one core; server and simulator each in its own process)",
      columns: [
        "server",
        "agents",
        "server CPU %",
        "RSS median MiB",
        "RSS max MiB",
        "loop delay p99 ms",
        "simulator CPU %",
        "sim late p99 ms",
      ],
      rows: cost,
      numeric: [1, 2, 3, 4, 5, 6, 7],
    },
    {
      title: "Primary vs no-op NDJSON reader on the same load",
      columns: [
        "agents",
        "primary CPU %",
        "no-op CPU %",
        "ratio",
        "primary lag p99 ms",
        "no-op lag p99 ms",
      ],
      rows: ratios,
      numeric: [0, 1, 2, 3, 4, 5],
    },
    {
      title:
        "Primary: its periodic work during the window (timed in place; blocks the event loop while it runs)",
      columns: ["agents", "work", "calls", "% of one core", "mean ms", "max ms"],
      rows: phases,
      numeric: [0, 2, 3, 4, 5],
    },
  ];
}

function spreadRow(label: string, s: Spread, missed: number): string[] {
  return [label, f0(s.count), f1(s.p50), f1(s.p99), f1(s.max), f0(missed)];
}

function detectionTable(d: DetectionResult): ReportTable {
  return {
    title: `Detection (suspect_after ${d.thresholds.suspectAfterMs} ms, dead_after ${d.thresholds.deadAfterMs} ms, heartbeats every ${d.thresholds.heartbeatMs} ms)`,
    columns: ["case", "trials", "p50 ms", "p99 ms", "max ms", "missed"],
    rows: [
      spreadRow("crash: socket.destroy() → down", d.crashDestroyMs, d.missed["crash-destroy"] ?? 0),
      spreadRow("crash: SIGKILL of its process → down", d.crashKillMs, d.missed["crash-kill"] ?? 0),
      spreadRow(
        "silent: last frame sent → suspect",
        d.silentSuspectMs,
        (d.missed["silent-suspect"] ?? 0) + (d.missed.silence ?? 0),
      ),
      spreadRow(
        "silent: last frame sent → down",
        d.silentDownMs,
        (d.missed["silent-down"] ?? 0) + (d.missed.silence ?? 0),
      ),
    ],
    numeric: [1, 2, 3, 4, 5],
  };
}

export function footprintTable(f: FootprintResult): ReportTable {
  const row = (label: string, p: ProcessFootprint) => [
    label,
    mib(p.rssMedianBytes),
    mib(p.rssMaxBytes),
    mib(p.hwmBytes),
    f3(p.cpuPct),
    `${f0(p.ticks)} (${f0(p.userTicks)}/${f0(p.systemTicks)})`,
    f0(p.mainThreadTicks),
    f0(p.childTicks),
    f0(p.samples),
  ];
  const sanity = f.agents.map((a) => `${a.name}: ${a.vitalsReceived} vitals, ${a.stateAtEnd}`);
  return {
    title: `Agent footprint over ${f0(f.windowMs / 1000)} s (CPU % of one core = ticks / ${f.clockTicksPerSecond} / wall s; ${sanity.join("; ")})`,
    columns: [
      "process",
      "RSS median MiB",
      "RSS max MiB",
      "VmHWM MiB",
      "CPU %",
      "ticks (user/sys)",
      "main thread",
      "child ticks",
      "samples",
    ],
    rows: [
      ...f.agents.map((a) => row(a.label, a.footprint)),
      row('node -e "setInterval(()=>{},1000)"', f.bareNode),
      row(`node ${AGENT_NODE_FLAGS.join(" ")} -e "setInterval(()=>{},1000)"`, f.bareNodeAgentFlags),
      row(
        `node ${AGENT_NODE_FLAGS.join(" ")}, one TLS-PSK socket, a heartbeat line a second (the floor)`,
        f.tlsHeartbeatFloor,
      ),
    ],
    numeric: [1, 2, 3, 4, 5, 6, 7, 8],
  };
}

function loadBudgets(outcomes: LoadOutcome[]): Budget[] {
  const out: Budget[] = [];
  const biggest = SIZES[SIZES.length - 1] as number;
  const top = outcomes.find((o) => o.mode === "primary" && o.agents === biggest);
  out.push(
    budget(
      "agents-alive",
      `agents alive at the primary, of ${biggest.toLocaleString("en-US")}`,
      ">=",
      biggest,
      isResult(top) ? (top.statusAfterConnect.states.alive ?? 0) : Number.NaN,
      "agents",
    ),
  );
  for (const n of SIZES) {
    const p = outcomes.find((o) => o.mode === "primary" && o.agents === n);
    const z = outcomes.find((o) => o.mode === "noop" && o.agents === n);
    out.push(
      budget(
        `lag-p99-${n}`,
        `p99 send→registry lag, ${n.toLocaleString("en-US")} agents`,
        "<",
        MAX_LAG_P99_MS,
        isResult(p) ? p.lagMs.p99 : Number.NaN,
        "ms",
      ),
    );
    out.push(
      budget(
        `cpu-vs-noop-${n}`,
        `primary CPU / no-op reader CPU, ${n.toLocaleString("en-US")} agents`,
        "<=",
        MAX_CPU_VS_NOOP,
        isResult(p) && isResult(z) ? p.server.cpuPct / z.server.cpuPct : Number.NaN,
        "×",
      ),
    );
  }
  return out;
}

function detectionBudgets(d: DetectionResult | undefined): Budget[] {
  const v = (pick: (d: DetectionResult) => number) => (d === undefined ? Number.NaN : pick(d));
  return [
    budget(
      "crash-destroy-p99",
      "crash (socket destroyed) → down, p99",
      "<",
      MAX_CRASH_DOWN_MS,
      v((d) => d.crashDestroyMs.p99),
      "ms",
    ),
    budget(
      "crash-kill-p99",
      "crash (process killed) → down, p99",
      "<",
      MAX_CRASH_DOWN_MS,
      v((d) => d.crashKillMs.p99),
      "ms",
    ),
    budget(
      "silent-suspect-p99",
      "silent → suspect, p99",
      "<=",
      MAX_SILENT_SUSPECT_MS,
      v((d) => d.silentSuspectMs.p99),
      "ms",
    ),
    budget(
      "silent-down-p99",
      "silent → down, p99",
      "<=",
      MAX_SILENT_DOWN_MS,
      v((d) => d.silentDownMs.p99),
      "ms",
    ),
  ];
}

export function footprintBudgets(f: FootprintResult | undefined): Budget[] {
  // The CLI agent is the budget's subject; the installed bundle, when built, gets its own lines.
  const agents = f?.agents ?? [];
  const out: Budget[] = [];
  for (const [i, a] of (agents.length > 0 ? agents : [undefined]).entries()) {
    const suffix = i === 0 ? "" : `-${a?.name ?? i}`;
    const who = a === undefined || i === 0 ? "agent (CLI)" : a.label;
    out.push(
      budget(
        `agent-rss${suffix}`,
        `${who} RSS, median of the window`,
        "<=",
        MAX_AGENT_RSS_MIB,
        a === undefined ? Number.NaN : a.footprint.rssMedianBytes / MIB,
        "MiB",
      ),
      budget(
        `agent-cpu${suffix}`,
        `${who} CPU, % of one core`,
        "<=",
        MAX_AGENT_CPU_PCT,
        a === undefined ? Number.NaN : a.footprint.cpuPct,
        "%",
      ),
    );
  }
  return out;
}

export async function runCluster({ progress, quick }: SuiteContext): Promise<SuiteReport> {
  const s = quick ? QUICK : FULL;
  const version = codeVersion();
  const maxAgents = SIZES[SIZES.length - 1] as number;
  const dir = mkdtempSync(join(tmpdir(), "picluster-bench-creds-"));
  const notes: string[] = [];
  const outcomes: LoadOutcome[] = [];
  let detection: DetectionResult | undefined;
  let footprint: FootprintResult | undefined;
  try {
    progress(`issuing ${maxAgents + 3 * s.trials} credentials`);
    const started = performance.now();
    const creds: IssuedCredentials = issueCredentials(dir, maxAgents + 3 * s.trials, progress);
    progress(`credentials issued in ${((performance.now() - started) / 1000).toFixed(1)} s`);

    for (const agents of SIZES) {
      for (const mode of ["primary", "noop"] as const) {
        const opts: LoadOptions = {
          mode,
          agents,
          warmupMs: s.warmupMs,
          windowMs: s.windowMs,
          concurrency: CONCURRENCY,
          connectDeadlineMs: s.connectDeadlineMs,
          attemptTimeoutMs: 15_000,
          attempts: 3,
        };
        try {
          outcomes.push(await runLoad(opts, creds, progress));
        } catch (err) {
          progress(`${mode} × ${agents} failed: ${errorText(err)}`);
          outcomes.push({ mode, agents, error: errorText(err) });
          notes.push(`load ${mode} × ${agents} did not complete: ${errorText(err)}`);
        }
      }
    }

    try {
      detection = await runDetection({ trials: s.trials, firstIndex: maxAgents }, creds, progress);
    } catch (err) {
      notes.push(`detection did not complete: ${errorText(err)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  try {
    footprint = await runFootprint(s.footprint, progress);
    notes.push(...footprint.notes);
  } catch (err) {
    notes.push(`agent footprint did not complete: ${errorText(err)}`);
  }

  for (const o of outcomes) {
    if (!isResult(o)) continue;
    if (o.connect.failed > 0)
      notes.push(
        `${o.mode} × ${o.agents}: ${o.connect.failed} agents did not connect (${Object.entries(
          o.connect.errors,
        )
          .map(([e, n]) => `${n}× ${e}`)
          .join(", ")})`,
      );
    if (o.unmatched > 0)
      notes.push(`${o.mode} × ${o.agents}: ${o.unmatched} vitals events had no send time`);
    if (o.simulator.closed > 0)
      notes.push(
        `${o.mode} × ${o.agents}: ${o.simulator.closed} agent connections closed during the window`,
      );
  }
  notes.push(
    "primary and no-op reader each run alone in a child process (bench/dist/sim/server.js); the simulated agents in another (bench/dist/sim/agents.js); CPU % = process.cpuUsage() delta / wall time, of one core",
    "lag: primary = registry event `at` (primary's clock.now()) − the vitals frame's `ts` (simulator's Date.now() at write), joined on node and seq; no-op = Date.now() after JSON.parse − `ts`; both ms, one machine clock",
    "MiB = 2^20 bytes",
  );

  const tables: ReportTable[] = [...loadTables(outcomes)];
  if (detection) tables.push(detectionTable(detection));
  if (footprint) tables.push(footprintTable(footprint));

  return {
    suite: "cluster",
    description:
      "primary under 100 / 1 000 / 10 000 simulated agents, failure detection, real agent footprint",
    parameters: {
      run: quick ? "quick (--quick)" : "full",
      code: version,
      agents: SIZES.join(", "),
      "warm-up s": s.warmupMs / 1000,
      "window s": s.windowMs / 1000,
      "handshakes in flight": CONCURRENCY,
      "detection trials": s.trials,
      "agent footprint window s": s.footprint.windowMs / 1000,
    },
    measurements: [],
    ratios: [],
    budgets: [
      ...loadBudgets(outcomes),
      ...detectionBudgets(detection),
      ...footprintBudgets(footprint),
    ],
    notes,
    tables,
    data: { settings: s, load: outcomes, detection, footprint },
  };
}
