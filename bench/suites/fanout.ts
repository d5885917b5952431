/**
 * fanout: `ping` to 1 000 simulated agents at once through the primary's
 * TaskService (the path `picluster ping` and GET /api/ping take): the time
 * from the call until every answer is in. The primary runs in this process;
 * the agents are the cluster suite's simulator in a child process, which
 * answers `ping` like an agent does.
 */
import { startSimCluster } from "../cluster/sim-cluster.js";
import { sleep } from "../cluster/stats.js";
import { budget, type SuiteContext, type SuiteReport } from "../harness.js";

/** Design budget: a request to 1 000 nodes fully answered in under 250 ms (serf: 0.5 s for 50). */
const MAX_FANOUT_MS = 250;

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

export async function runFanout(ctx: SuiteContext): Promise<SuiteReport> {
  const agents = 1_000;
  const rounds = ctx.quick ? 10 : 50;
  const { local, close } = await startSimCluster("fanout", agents, ctx.progress);
  const times: number[] = [];
  const perNodeRtt: number[] = [];
  let unanswered = 0;
  try {
    // Let the joins settle (details, first samples) before measuring.
    await sleep(3_000);
    for (let r = 0; r < rounds; r++) {
      const started = performance.now();
      const results = await local.primary.tasks.ping("all", 5_000);
      times.push(performance.now() - started);
      for (const x of results) {
        if (x.ok) perNodeRtt.push(x.rttMs);
        else unanswered++;
      }
      if ((r + 1) % 10 === 0) ctx.progress(`fanout: ${r + 1}/${rounds} rounds`);
      // Rounds apart, so each starts from a quiet link.
      await sleep(200);
    }
  } finally {
    await close();
  }
  times.sort((a, b) => a - b);
  perNodeRtt.sort((a, b) => a - b);
  const p50 = quantile(times, 0.5);
  const p99 = quantile(times, 0.99);
  return {
    suite: "fanout",
    description: "ping to 1 000 simulated agents at once: time until every answer is in",
    parameters: { agents, rounds },
    measurements: [],
    ratios: [],
    budgets: [
      budget("fanout-p50", "all 1 000 answers in, median round", "<", MAX_FANOUT_MS, p50, "ms"),
    ],
    notes: [
      `unanswered pings: ${unanswered} of ${agents * rounds}`,
      "one round = TaskService.ping('all'): a request on each of 1 000 TLS sessions, then every response",
    ],
    tables: [
      {
        title: "fan-out rounds",
        columns: [
          "agents",
          "rounds",
          "p50 ms",
          "p99 ms",
          "max ms",
          "node RTT p50 ms",
          "node RTT p99 ms",
        ],
        rows: [
          [
            String(agents),
            String(rounds),
            p50.toFixed(1),
            p99.toFixed(1),
            (times.at(-1) ?? Number.NaN).toFixed(1),
            quantile(perNodeRtt, 0.5).toFixed(1),
            quantile(perNodeRtt, 0.99).toFixed(1),
          ],
        ],
        numeric: [0, 1, 2, 3, 4, 5, 6],
      },
    ],
    data: { times, unanswered },
  };
}
