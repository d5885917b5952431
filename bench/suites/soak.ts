/**
 * soak: does the installed agent hold on to memory as it runs? The loaded
 * agent (issue 18's load: 10 custom metrics, 5 checks, 20 containers where
 * podman runs) runs with every interval shortened, vitals each second and
 * metrics, checks and container stats every 2 s, so that 20 minutes hold
 * 1 200 samples (3 h 20 min of them at the default 10 s). A preloaded probe
 * forces a full collection every 10 s and records the heap still in use; the
 * slope of that line after the warm-up, per 1 000 vitals samples, is the
 * figure: an agent that runs for months must not grow with the samples it
 * sends. (The acknowledged samples the outbox once kept, ~8 KiB each with 20
 * containers, were ~8 000 KiB per 1 000.) The warm-up is 11 minutes: what
 * the agent keeps for a bounded time fills first (each container's restart
 * readings cover 10 minutes, ~45 KiB for 20). `--quick`: 30 s warm-up and a
 * 150 s window, a smoke check too short to tell a slope below ~300 KiB per
 * 1 000 from noise.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AGENT_NODE_FLAGS } from "@picluster/common";
import { BUNDLE_SCRIPT, loadedIni, loadLabel, startLoad, stop } from "../cluster/footprint.js";
import { startLocalPrimary } from "../cluster/local-primary.js";
import { sleep } from "../cluster/stats.js";
import { budget, type SuiteContext, type SuiteReport } from "../harness.js";

/** Vitals each second: the slope is per sample, whatever the wall time. */
const VITALS_INTERVAL = "1s";
const LOAD_INTERVAL = "2s";
const PROBE_MS = 10_000;
/**
 * Past what the agent keeps for a bounded time: each container's restart
 * readings span RESTART_WINDOW_MS (10 min, agent/src/containers.ts), and
 * fill for that long.
 */
const WARMUP_MS = 11 * 60_000;
/** Heap growth allowed per 1 000 vitals samples (~1 day at the default interval is 8 640). */
const GROWTH_BUDGET_KIB = 16;

/**
 * Full collections per probe, 0.4 s apart: they span the load's 2 s cycle,
 * and the least heap among them is kept, so a reply being parsed or a child
 * being run at one of them (which drifted in and out of phase with the
 * probe and read as ±40 KiB bumps) is not counted as kept.
 */
const GCS_PER_PROBE = 5;
const GC_SPACING_MS = 400;

// Runs inside the agent (node -r): full collections, then the least left.
const PROBE = `const fs = require("node:fs");
setInterval(() => {
  let heap = Infinity;
  let rss = 0;
  let done = 0;
  const one = () => {
    globalThis.gc();
    const m = process.memoryUsage();
    if (m.heapUsed < heap) heap = m.heapUsed;
    rss = m.rss;
    if (++done < ${GCS_PER_PROBE}) return void setTimeout(one, ${GC_SPACING_MS}).unref();
    fs.appendFileSync(process.env.SOAK_PROBE_OUT, JSON.stringify({ ms: Math.round(process.uptime() * 1000), heap, rss }) + "\\n");
  };
  one();
}, ${PROBE_MS}).unref();
`;

interface Point {
  ms: number;
  heap: number;
  rss: number;
}

/** Least-squares slope of y over x. */
function slope(points: ReadonlyArray<{ x: number; y: number }>): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

export async function runSoak({ progress, quick }: SuiteContext): Promise<SuiteReport> {
  const opts = quick
    ? { warmupMs: 30_000, windowMs: 150_000 }
    : { warmupMs: WARMUP_MS, windowMs: 1_200_000 };
  if (!existsSync(BUNDLE_SCRIPT)) {
    throw new Error(`no ${BUNDLE_SCRIPT}: run \`npm run build\` first (npm run bench does)`);
  }
  const notes: string[] = [];
  const cleanups: Array<() => void | Promise<void>> = [];
  const dir = mkdtempSync(join(tmpdir(), "picluster-bench-soak-"));
  const out = join(dir, "probe.ndjson");
  writeFileSync(join(dir, "probe.cjs"), PROBE);
  writeFileSync(out, "");
  let vitals = 0;
  let label = "";
  try {
    const load = await startLoad((m) => progress(`soak: ${m}`), cleanups, notes);
    label = loadLabel(load).replace("agent-bundle.cjs", "the installed agent");
    writeFileSync(join(dir, "agent.ini"), loadedIni(load, LOAD_INTERVAL));
    const local = await startLocalPrimary(() => {}, {
      "primary.vitals_interval": VITALS_INTERVAL,
    });
    cleanups.push(() => local.close());
    const token = local.primary.credentials?.addToken("bench-soak");
    if (token === undefined) throw new Error("the bench primary runs without TLS");
    const stopCounting = local.primary.events.on((e) => {
      if (e.kind === "node.vitals" && e.name === "bench-soak") vitals++;
    });
    cleanups.push(stopCounting);
    const stderrFd = openSync(join(dir, "agent.stderr"), "w");
    cleanups.push(() => closeSync(stderrFd));
    const child = spawn(
      process.execPath,
      [
        ...AGENT_NODE_FLAGS,
        "--expose-gc",
        "-r",
        join(dir, "probe.cjs"),
        BUNDLE_SCRIPT,
        "agent",
        "--config",
        join(dir, "agent.ini"),
      ],
      {
        cwd: dir,
        env: {
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          HOME: dir,
          SOAK_PROBE_OUT: out,
          PICLUSTER_NODE_DATA_DIR: dir,
          PICLUSTER_NODE_NAME: "bench-soak",
          PICLUSTER_AGENT_PRIMARY_HOST: "127.0.0.1",
          PICLUSTER_AGENT_PRIMARY_PORT: String(local.port),
          PICLUSTER_AGENT_JOIN_TOKEN: token,
        },
        stdio: ["ignore", "ignore", stderrFd],
      },
    );
    const killOnExit = () => child.kill("SIGKILL");
    process.once("exit", killOnExit);
    cleanups.push(async () => {
      process.off("exit", killOnExit);
      await stop(child);
    });
    const total = opts.warmupMs + opts.windowMs;
    const started = Date.now();
    while (Date.now() - started < total) {
      if (child.exitCode !== null || child.signalCode !== null) {
        const said = readFileSync(join(dir, "agent.stderr"), "utf8").trim().split("\n").slice(-3);
        throw new Error(
          `the agent exited (${child.exitCode ?? child.signalCode}): ${said.join(" / ")}`,
        );
      }
      const last = readFileSync(out, "utf8").trim().split("\n").filter(Boolean).slice(-1)[0];
      const heap =
        last === undefined ? "-" : `${((JSON.parse(last) as Point).heap / 1024).toFixed(0)} KiB`;
      progress(
        `soak: ${((Date.now() - started) / 1000).toFixed(0)}/${total / 1000} s, ${vitals} vitals, heap after GC ${heap}`,
      );
      await sleep(Math.min(PROBE_MS, total - (Date.now() - started)));
    }
  } finally {
    for (const fn of cleanups.reverse()) await fn();
  }
  const points = readFileSync(out, "utf8")
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Point);
  const window = points.filter((p) => p.ms >= opts.warmupMs);
  const first = window[0];
  const last = window[window.length - 1];
  // Vitals each second: a sample a second of the window.
  const perSampleBytes = slope(window.map((p) => ({ x: p.ms / 1000, y: p.heap })));
  const kibPer1000 = (perSampleBytes * 1000) / 1024;
  const rssPer1000 = (slope(window.map((p) => ({ x: p.ms / 1000, y: p.rss }))) * 1000) / 1024;
  const kib = (b: number | undefined) => (b === undefined ? "-" : (b / 1024).toFixed(0));
  return {
    suite: "soak",
    description:
      "the loaded installed agent with every interval shortened: heap after a full GC over time",
    parameters: {
      ...opts,
      vitalsInterval: VITALS_INTERVAL,
      loadInterval: LOAD_INTERVAL,
      probeMs: PROBE_MS,
    },
    measurements: [],
    ratios: [],
    budgets: [
      budget(
        "agent-heap-growth",
        `${label}: heap growth after a full GC per 1 000 vitals samples`,
        "<=",
        GROWTH_BUDGET_KIB,
        kibPer1000,
        "KiB",
      ),
    ],
    notes,
    tables: [
      {
        title: `Heap after a full GC over the window (${window.length} probes, ${vitals} vitals received)`,
        columns: ["", "heap KiB", "RSS KiB", "at s"],
        rows: [
          [
            "first probe of the window",
            kib(first?.heap),
            kib(first?.rss),
            ((first?.ms ?? 0) / 1000).toFixed(0),
          ],
          ["last probe", kib(last?.heap), kib(last?.rss), ((last?.ms ?? 0) / 1000).toFixed(0)],
          ["slope per 1 000 vitals samples", kibPer1000.toFixed(1), rssPer1000.toFixed(1), ""],
        ],
        numeric: [1, 2, 3],
      },
    ],
    data: { points },
  };
}
