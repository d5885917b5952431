/**
 * Benchmark runner: `node bench/dist/main.js <suite> [--json] [--quick]`
 * (from the repository root: `npm run bench -- <suite> [--json] [--quick]`).
 *
 * Prints a table of figures, or one JSON object with --json. Progress goes
 * to stderr. Budgets get a printed PASS/OVER verdict; they never change the
 * exit code (0 on a completed run, 2 on bad usage, 1 if a suite fails).
 */
import { cpus, platform, release } from "node:os";
import {
  type Budget,
  type Measurement,
  type Suite,
  type SuiteReport,
  stderrProgress,
} from "./harness.js";
import { runCluster } from "./suites/cluster.js";
import { runCodec } from "./suites/codec.js";
import { runDashboard } from "./suites/dashboard.js";
import { runFanout } from "./suites/fanout.js";
import { runFootprintSuite } from "./suites/footprint.js";
import { runHttp } from "./suites/http.js";
import { runJobs } from "./suites/jobs.js";
import { runJobsAgents } from "./suites/jobs-agents.js";
import { runScaleout } from "./suites/scaleout.js";
import { runSoak } from "./suites/soak.js";
import { runStore } from "./suites/store.js";

const SUITES: ReadonlyMap<string, { description: string; run: Suite }> = new Map([
  [
    "codec",
    { description: "NDJSON decode+validate of vitals frames vs JSON.parse", run: runCodec },
  ],
  [
    "cluster",
    {
      description:
        "primary under 100-10k simulated agents, failure detection, real agent footprint",
      run: runCluster,
    },
  ],
  [
    "dashboard",
    {
      description: "cluster page with 1 000 nodes in headless Chromium: time to render, heap",
      run: runDashboard,
    },
  ],
  [
    "footprint",
    {
      description: "one real agent (CLI and installed bundle) beside a bare node: RSS and CPU",
      run: runFootprintSuite,
    },
  ],
  [
    "soak",
    {
      description:
        "the loaded installed agent with intervals shortened for 20 min: heap growth per 1 000 samples",
      run: runSoak,
    },
  ],
  [
    "fanout",
    {
      description: "ping to 1 000 simulated agents at once, until every answer is in",
      run: runFanout,
    },
  ],
  [
    "http",
    {
      description:
        "1 000 stalled event-stream clients and 400 unfinished 1 MiB POSTs against picluster up: memory, liveness",
      run: runHttp,
    },
  ],
  [
    "jobs",
    {
      description:
        "100 000 no-op items over 1 000 simulated agents with 4 slots: items/s, latency, CPU per item; 10 % killed mid-job",
      run: runJobs,
    },
  ],
  [
    "jobs-agents",
    {
      description:
        "a 20 ms task over 50 real agents (CLI processes, own mount namespaces; needs root): items/s vs ideal",
      run: runJobsAgents,
    },
  ],
  [
    "scaleout",
    {
      description:
        "3 000 simulated agents over three primaries on three nats-servers vs one embedded primary: CPU per sample, lag, fan-out",
      run: runScaleout,
    },
  ],
  [
    "store",
    {
      description: "SQLite ingest with ack-after-commit, and a 24 h chart over 10 000 nodes",
      run: runStore,
    },
  ],
]);

const EXIT_USAGE = 2;

function usage(): string {
  const names = [...SUITES].map(([name, s]) => `  ${name.padEnd(12)}${s.description}`);
  return `usage: node bench/dist/main.js <suite> [--json] [--quick]\n\n  --json   one JSON object on stdout instead of tables\n  --quick  shorter runs and fewer samples (a smoke check; suites that have no quick mode ignore it)\n\nsuites:\n${names.join("\n")}\n`;
}

const int = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const dec1 = new Intl.NumberFormat("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 });

function formatBudgetValue(value: number, unit: string): string {
  if (unit === "×") return `${value.toFixed(2)}×`;
  if (!Number.isFinite(value)) return `n/a ${unit}`;
  // Small figures (CPU %, MB, short latencies) need their decimals; rates do not.
  const abs = Math.abs(value);
  const text =
    abs >= 1000 ? int.format(value) : abs >= 10 ? dec1.format(value) : value.toPrecision(3);
  return `${text} ${unit}`;
}

const COMPARISON_SIGN = { "<=": "≤", ">=": "≥", "<": "<", ">": ">" } as const;

function table(rows: string[][], rightAligned: ReadonlySet<number>): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows.map((row) =>
    row
      .map((cell, i) =>
        rightAligned.has(i) ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0),
      )
      .join("  ")
      .trimEnd(),
  );
}

function renderText(report: SuiteReport, env: Record<string, unknown>): string {
  const lines: string[] = [];
  lines.push(`${report.suite}: ${report.description}`);
  lines.push(
    `  ${env.date}  node ${env.node}  ${env.platform}  ${env.cpus}× ${env.cpuModel}`.trimEnd(),
  );
  for (const [key, value] of Object.entries(report.parameters)) {
    lines.push(`  ${key}: ${typeof value === "number" ? int.format(value) : value}`);
  }
  lines.push("");

  const first: Measurement | undefined = report.measurements[0];
  if (first) {
    const header = ["case", "median ms", "min ms", "max ms", "per second", "MB/s"];
    header.push(`cost vs ${first.id}`);
    const rows = [header];
    for (const m of report.measurements) {
      const row = [
        `${m.id} ${m.label}`,
        dec1.format(m.medianMs),
        dec1.format(m.minMs),
        dec1.format(m.maxMs),
        `${int.format(m.perSecond)} ${m.unit}/s`,
        m.mbPerSec === undefined ? "-" : dec1.format(m.mbPerSec),
      ];
      row.push(`${(m.medianMs / first.medianMs).toFixed(2)}×`);
      rows.push(row);
    }
    lines.push(...table(rows, new Set([1, 2, 3, 4, 5, 6])).map((l) => `  ${l}`));
  }
  for (const [i, t] of (report.tables ?? []).entries()) {
    if (first || i > 0) lines.push("");
    lines.push(`  ${t.title}`);
    lines.push(...table([t.columns, ...t.rows], new Set(t.numeric)).map((l) => `    ${l}`));
  }

  if (report.ratios.length > 0) {
    lines.push("");
    const ratioRows = report.ratios.map((r) => [r.label, `${r.value.toFixed(2)}×`]);
    lines.push(...table(ratioRows, new Set([1])).map((l) => `  ${l}`));
  }
  if (report.budgets.length > 0) {
    lines.push("");
    const budgetRows = report.budgets.map((b: Budget) => [
      `budget: ${b.label}`,
      `${COMPARISON_SIGN[b.comparison]} ${formatBudgetValue(b.limit, b.unit)}`,
      `actual ${formatBudgetValue(b.actual, b.unit)}`,
      b.verdict,
    ]);
    lines.push(...table(budgetRows, new Set([2])).map((l) => `  ${l}`));
  }
  for (const note of report.notes) lines.push(`  note: ${note}`);
  return `${lines.join("\n")}\n`;
}

async function main(argv: readonly string[]): Promise<number> {
  // Stopped with Ctrl-C or SIGTERM: exit, so that the exit hooks end what a
  // suite started (agents, podman and its containers) instead of leaving it running.
  for (const signal of ["SIGINT", "SIGTERM"] as const)
    process.once(signal, () => process.exit(signal === "SIGINT" ? 130 : 143));
  const flags = argv.filter((a) => a.startsWith("-"));
  const names = argv.filter((a) => !a.startsWith("-"));
  const json = flags.includes("--json");
  const quick = flags.includes("--quick");
  const unknownFlags = flags.filter((f) => f !== "--json" && f !== "--quick");
  if (flags.includes("--help") || flags.includes("-h")) {
    process.stdout.write(usage());
    return 0;
  }
  if (unknownFlags.length > 0 || names.length !== 1) {
    if (unknownFlags.length > 0)
      process.stderr.write(`unknown option: ${unknownFlags.join(" ")}\n`);
    process.stderr.write(usage());
    return EXIT_USAGE;
  }
  const name = names[0] ?? "";
  const suite = SUITES.get(name);
  if (suite === undefined) {
    process.stderr.write(`unknown suite "${name}"\n${usage()}`);
    return EXIT_USAGE;
  }

  const cpuList = cpus();
  const env = {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    platform: `${platform()} ${release()} ${process.arch}`,
    cpus: cpuList.length,
    cpuModel: cpuList[0]?.model.trim() ?? "unknown",
    argv: process.argv.slice(2),
  };
  const { progress, done } = stderrProgress();
  let report: SuiteReport;
  try {
    report = await suite.run({ progress, quick });
  } finally {
    done();
  }
  if (json) process.stdout.write(`${JSON.stringify({ ...env, ...report }, null, 2)}\n`);
  else process.stdout.write(renderText(report, env));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = 1;
  },
);
