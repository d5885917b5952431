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
            (scaleOut.jobLog === undefined
              ? ""
              : `; job log at ${scaleOut.jobLog.seq}, snapshot ${scaleOut.jobLog.snapshotSeq || "none yet"}`) +
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
  cluster
    .command("import")
    .description(
      "copy this machine's embedded store (credentials, nodes, vitals history) into the cluster named by [cluster] nats",
    )
    .option("--json", "print the summary as JSON")
    .addHelpText(
      "after",
      "\nRun it where the embedded primary's store is, with [cluster] nats set (in its config or\n" +
        "--set cluster.nats=…); a primary of the cluster must have started once. What the cluster\n" +
        "already has is left as it is, so running it twice adds nothing.\n\n" +
        "Examples:\n  picluster cluster import\n  picluster cluster import --set cluster.nats=nats://10.0.0.2:4222 --json\n",
    )
    .action((opts: { json?: boolean }, cmd: Command) =>
      run(cmd, async (config) => {
        const { importIntoCluster, storeFile } = await import("@picluster/primary");
        const { processPathContext, resolveDataDir, silentLogger, systemClock } = await import(
          "@picluster/common"
        );
        const dataDir = resolveDataDir(config.node.data_dir, {
          ...processPathContext(),
          cwd: io.cwd,
        });
        let said = 0;
        const summary = await importIntoCluster({
          config,
          storeFile: storeFile(config, dataDir),
          clock: systemClock,
          log: silentLogger(),
          onProgress: (p) => {
            // A line a second at most, and the last of each phase.
            const now = Date.now();
            if (p.done < p.total && now - said < 1_000) return;
            said = now;
            io.err(`${p.phase}: ${p.done}/${p.total}\n`);
          },
        });
        if (opts.json) {
          io.out(`${safeJson(summary)}\n`);
          return EXIT_OK;
        }
        const { credentials, nodes, rows } = summary;
        io.out(
          `imported ${safeLine(summary.store)} in ${(summary.durationMs / 1_000).toFixed(1)} s:\n` +
            `  credentials and join tokens: ${credentials.added} added, ${credentials.present} already in the cluster\n` +
            `  nodes: ${nodes.added} added, ${nodes.present} already in the cluster\n` +
            `  vitals: ${rows.raw} samples, ${rows.minute} minute and ${rows.hour} hour rollups, ${rows.custom} rows of custom and container series (${summary.messages} messages; every primary stores them)\n`,
        );
        return EXIT_OK;
      }),
    );
}
