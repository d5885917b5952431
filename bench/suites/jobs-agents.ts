/**
 * jobs-agents: a job over 50 real agents (the `picluster agent` CLI, each a
 * process of its own) running a real 20 ms task (`/bin/sleep 0.02`), one
 * item at a time each (`[tasks] max_running = 1`): items per second
 * against the ideal (slots / task time). Agents on one machine read the
 * same /etc/machine-id and would be one node, so each runs in its own mount
 * namespace (`unshare`, needs root) with a machine-id of its own bound over
 * it. The primary runs in this process.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI_SCRIPT } from "../cluster/footprint.js";
import { startLocalPrimary } from "../cluster/local-primary.js";
import { sleep } from "../cluster/stats.js";
import { budget, type SuiteContext, type SuiteReport } from "../harness.js";

const TASK_MS = 20;
const SLOTS_PER_AGENT = 1;
/** The mark: at least this share of the ideal rate. */
const MIN_SHARE = 0.8;

const INI = [
  "[tasks]",
  `max_running = ${SLOTS_PER_AGENT}`,
  "[task.work]",
  "description = 20 ms of waiting (bench)",
  `command = /bin/sleep 0.0${TASK_MS}`,
  "",
].join("\n");

export async function runJobsAgents(ctx: SuiteContext): Promise<SuiteReport> {
  if (process.getuid?.() !== 0) throw new Error("jobs-agents needs root (unshare --mount)");
  const agents = ctx.quick ? 20 : 50;
  const items = ctx.quick ? 1_000 : 5_000;
  const dir = mkdtempSync(join(tmpdir(), "picluster-bench-jobs-agents-"));
  const local = await startLocalPrimary();
  const children: ChildProcess[] = [];
  const killAll = () => {
    for (const c of children) c.kill("SIGKILL");
  };
  process.once("exit", killAll);
  try {
    ctx.progress(`jobs-agents: starting ${agents} real agents`);
    for (let i = 0; i < agents; i++) {
      const name = `real-${i}`;
      const home = join(dir, name);
      const machineId = join(dir, `${name}.machine-id`);
      writeFileSync(machineId, `${randomBytes(16).toString("hex")}\n`);
      const ini = join(dir, `${name}.ini`);
      writeFileSync(ini, INI);
      const token = local.primary.credentials?.addToken(name);
      if (token === undefined) throw new Error("the bench primary runs without TLS");
      // Its own /etc/machine-id, in a mount namespace of its own; nothing else changes.
      const child = spawn(
        "unshare",
        [
          "--mount",
          "--propagation",
          "private",
          "sh",
          "-c",
          'mount --bind "$0" /etc/machine-id && exec "$@"',
          machineId,
          process.execPath,
          CLI_SCRIPT,
          "agent",
          "--config",
          ini,
        ],
        {
          cwd: dir,
          env: {
            PATH: process.env.PATH ?? "/usr/bin:/bin",
            HOME: dir,
            PICLUSTER_NODE_DATA_DIR: home,
            PICLUSTER_NODE_NAME: name,
            PICLUSTER_AGENT_PRIMARY_HOST: "127.0.0.1",
            PICLUSTER_AGENT_PRIMARY_PORT: String(local.port),
            PICLUSTER_AGENT_JOIN_TOKEN: token,
            PICLUSTER_LOG_LIVENESS_INTERVAL: "1h",
          },
          stdio: "ignore",
        },
      );
      children.push(child);
    }
    for (let waited = 0; ; waited += 250) {
      const ready = local.primary.registry
        .list()
        .filter(
          (n) => n.state === "alive" && n.details?.tasks?.some((t) => t.name === "work"),
        ).length;
      if (ready >= agents) break;
      if (waited > 60_000) throw new Error(`only ${ready} of ${agents} agents joined`);
      if (waited % 5_000 === 0) ctx.progress(`jobs-agents: ${ready}/${agents} agents ready`);
      await sleep(250);
    }
    const jobs = local.primary.jobs;
    const t0 = performance.now();
    const job = await jobs.submit({
      task: "work",
      on: "all",
      items: { kind: "range", from: 1, to: items },
      requestedBy: "bench",
    });
    await jobs.settled(job.id);
    const wallMs = performance.now() - t0;
    const done = await jobs.get(job.id);
    const perSecond = (items / wallMs) * 1000;
    const ideal = (agents * SLOTS_PER_AGENT * 1000) / TASK_MS;
    const share = perSecond / ideal;
    const spread = (done?.nodes ?? []).map((n) => n.ok + n.failed).sort((a, b) => a - b);
    return {
      suite: "jobs-agents",
      description: `${items} items of a ${TASK_MS} ms task over ${agents} real agents (CLI processes, ${SLOTS_PER_AGENT} slot each)`,
      parameters: { agents, items, taskMs: TASK_MS, slotsPerAgent: SLOTS_PER_AGENT },
      measurements: [],
      ratios: [],
      budgets: [
        budget(
          "jobs-agents-share",
          "items/s vs ideal (slots / task time)",
          ">=",
          MIN_SHARE,
          share,
          "×",
        ),
      ],
      notes: [
        `${done?.counts.ok} ok, ${done?.counts.failed} failed of ${items}`,
        `items per agent: min ${spread[0]}, median ${spread[spread.length >> 1]}, max ${spread.at(-1)}`,
        "each item is a real process on the node (/bin/sleep 0.020), started by the agent without a shell",
      ],
      tables: [
        {
          title: "real agents",
          columns: ["agents", "items", "wall s", "items/s", "ideal items/s", "share"],
          rows: [
            [
              String(agents),
              String(items),
              (wallMs / 1000).toFixed(2),
              perSecond.toFixed(0),
              ideal.toFixed(0),
              share.toFixed(2),
            ],
          ],
          numeric: [0, 1, 2, 3, 4, 5],
        },
      ],
    };
  } finally {
    killAll();
    process.removeListener("exit", killAll);
    await local.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
