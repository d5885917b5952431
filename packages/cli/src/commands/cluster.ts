/**
 * `picluster cluster status`: the primaries of the scale-out mode (docs/scale-out.md),
 * which one leads, and how each reaches NATS, from any primary's /api/cluster.
 */
import type { ClusterStatus } from "@picluster/common";
import type { Command } from "commander";
import { getJson } from "../api-client.js";
import { configRunner } from "../config-options.js";
import { ago, table } from "../format.js";
import { type CliIo, EXIT_FAILED, EXIT_OK } from "../io.js";
import { safeJson, safeLine } from "../safe.js";

export function registerClusterCommands(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
): void {
  const run = configRunner(io, setExit);
  const cluster = program
    .command("cluster")
    .description("the primaries of the scale-out mode ([cluster] nats)");
  cluster
    .command("status")
    .description("the primaries, which one leads, and NATS health; exit 1 without NATS or a leader")
    .option("--json", "print as JSON")
    .addHelpText(
      "after",
      "\nExamples:\n  picluster cluster status\n  picluster cluster status --json | jq .leader\n",
    )
    .action((opts: { json?: boolean }, cmd: Command) =>
      run(cmd, async (config) => {
        const status = await getJson<ClusterStatus>(config, "/api/cluster");
        const scaleOut = status.scaleOut;
        if (scaleOut === undefined) {
          if (opts.json) io.out(`${safeJson({ mode: "embedded" })}\n`);
          else
            io.out(
              "embedded mode: one primary on its own SQLite store (set [cluster] nats for several; docs/scale-out.md)\n",
            );
          return EXIT_OK;
        }
        const healthy = scaleOut.nats.connected && scaleOut.leader !== null;
        if (opts.json) {
          io.out(`${safeJson({ mode: "scale-out", ...scaleOut })}\n`);
          return healthy ? EXIT_OK : EXIT_FAILED;
        }
        const nats = scaleOut.nats;
        io.out(
          `${scaleOut.primaries.length} primar${scaleOut.primaries.length === 1 ? "y" : "ies"}, leader ${safeLine(scaleOut.leader ?? "none")}; ` +
            (nats.connected
              ? `${safeLine(scaleOut.self)} is on NATS ${safeLine(nats.server ?? "?")}` +
                (nats.rttMs === null ? "" : ` (${nats.rttMs} ms)`)
              : `${safeLine(scaleOut.self)} cannot reach NATS`) +
            (nats.reconnects > 0 ? `, ${nats.reconnects} reconnects` : "") +
            "\n\n",
        );
        io.out(
          table(
            ["NAME", "ROLE", "AGENTS", "AGENT ADDRESS", "DASHBOARD", "VERSION", "UP SINCE"],
            scaleOut.primaries.map((p) => [
              safeLine(p.name) + (p.name === scaleOut.self ? " (this)" : ""),
              p.leader ? "leader" : "follower",
              String(p.sessions),
              safeLine(p.agentAddress),
              safeLine(p.httpUrl),
              safeLine(p.version),
              ago(p.startedAt, status.now),
            ]),
          ),
        );
        if (!healthy)
          io.err(
            nats.connected
              ? "no leader yet: alerts wait until one holds the lease\n"
              : "this primary cannot reach NATS: it serves its own agents, and the others do not see them\n",
          );
        return healthy ? EXIT_OK : EXIT_FAILED;
      }),
    );
}
