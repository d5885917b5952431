/**
 * footprint: only the cluster suite's third part, what one real agent
 * costs its node (the CLI agent and the installed bundle beside a bare
 * `node`), for measuring a change to the agent's memory or CPU without
 * the load and detection parts. `--quick`: 10 s warm-up, 60 s window.
 */
import { AGENT_NODE_FLAGS } from "@picluster/common";
import { runFootprint } from "../cluster/footprint.js";
import type { SuiteContext, SuiteReport } from "../harness.js";
import { footprintBudgets, footprintTable } from "./cluster.js";

export async function runFootprintSuite({ progress, quick }: SuiteContext): Promise<SuiteReport> {
  const opts = quick
    ? { warmupMs: 10_000, windowMs: 60_000, sampleMs: 2_000 }
    : { warmupMs: 20_000, windowMs: 300_000, sampleMs: 5_000 };
  const f = await runFootprint(opts, progress);
  const bare = f.bareNode.rssMedianBytes;
  const bareFlags = f.bareNodeAgentFlags.rssMedianBytes;
  return {
    suite: "footprint",
    description: "one real agent (CLI and installed bundle) beside a bare node process",
    parameters: opts,
    measurements: [],
    ratios: f.agents.flatMap((a) => [
      {
        id: `${a.name}-rss-vs-bare-node`,
        label: `${a.label} RSS / a bare node's`,
        value: a.footprint.rssMedianBytes / bare,
      },
      {
        id: `${a.name}-rss-vs-bare-node-agent-flags`,
        label: `${a.label} RSS / a bare node's with the agent's flags (${AGENT_NODE_FLAGS.join(" ")}; issue 18's budget for the installed agent: 1.15×)`,
        value: a.footprint.rssMedianBytes / bareFlags,
      },
      {
        id: `${a.name}-rss-vs-floor`,
        label: `${a.label} RSS / the floor's (a node with the agent's flags, one TLS-PSK socket, a heartbeat a second)`,
        value: a.footprint.rssMedianBytes / f.tlsHeartbeatFloor.rssMedianBytes,
      },
      {
        id: `${a.name}-cpu-vs-floor`,
        label: `${a.label} CPU / the floor's`,
        value: a.footprint.cpuPct / f.tlsHeartbeatFloor.cpuPct,
      },
    ]),
    budgets: footprintBudgets(f),
    notes: f.notes,
    tables: [footprintTable(f)],
    data: { footprint: f },
  };
}
