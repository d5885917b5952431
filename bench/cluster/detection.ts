/**
 * How fast the primary notices a node is gone, with its default thresholds
 * (suspect_after 2.5 s, dead_after 4.5 s, 1 s heartbeats). The primary runs
 * in this process; the nodes are simulated agents in a child process.
 *
 * - crash, socket destroyed: the simulator calls socket.destroy() on one
 *   connected agent; from just before that call to the registry's `down`.
 * - crash, process killed: a dedicated simulator child holding one agent gets
 *   SIGKILL, so the kernel closes its socket; from kill() to `down`.
 * - silence: an agent stops sending but keeps its socket open; from its last
 *   frame write to `suspect` and to `down`. These trials run side by side,
 *   each silenced at a random moment within one heartbeat interval.
 */
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import type { IssuedCredentials } from "./credentials.js";
import { preciseNow, type SimCommands, type Spread, simName } from "./ipc.js";
import { SIM_SCRIPT } from "./load.js";
import { startLocalPrimary } from "./local-primary.js";
import { Child } from "./rpc.js";
import { sleep, spread } from "./stats.js";

export interface DetectionOptions {
  trials: number;
  /** First credential index the detection agents may use (3 × trials of them). */
  firstIndex: number;
}

export interface DetectionResult {
  trials: number;
  crashDestroyMs: Spread;
  crashKillMs: Spread;
  silentSuspectMs: Spread;
  silentDownMs: Spread;
  /** Trials whose event never came within the deadline, by case. */
  missed: Record<string, number>;
  thresholds: { suspectAfterMs: number; deadAfterMs: number; heartbeatMs: number };
}

const CALL_MS = 20_000;
const CRASH_WAIT_MS = 3_000;
const SILENCE_WAIT_MS = 12_000;
/** Let heartbeats flow before a trial, so the node is established. */
const SETTLE_MS = 1_500;

export async function runDetection(
  opts: DetectionOptions,
  creds: IssuedCredentials,
  progress: (message: string) => void,
): Promise<DetectionResult> {
  const { trials, firstIndex } = opts;
  if (firstIndex + 3 * trials > creds.count) throw new Error("not enough credentials issued");
  const local = await startLocalPrimary((dir) =>
    copyFileSync(creds.storeFile, join(dir, "picluster.db")),
  );
  const missed: Record<string, number> = {};
  const miss = (what: string, err: unknown) => {
    missed[what] = (missed[what] ?? 0) + 1;
    progress(`detection: ${what}: ${err instanceof Error ? err.message : String(err)}`);
  };
  try {
    const crash: number[] = [];
    const suspect: number[] = [];
    const down: number[] = [];
    const killed: number[] = [];

    // Crash (destroy) and silence agents live in one simulator child.
    const sim = new Child<SimCommands>("simulator (detection)", SIM_SCRIPT, []);
    try {
      const connect = await sim.call(
        "connect",
        {
          host: "127.0.0.1",
          port: local.port,
          credsFile: creds.simFile,
          first: firstIndex,
          count: 2 * trials,
          concurrency: 16,
          attemptTimeoutMs: 10_000,
          attempts: 3,
          deadlineMs: 30_000,
          spreadOver: 2 * trials,
        },
        60_000,
      );
      if (connect.failed > 0)
        throw new Error(`detection agents: ${connect.failed} did not connect`);
      await sleep(SETTLE_MS);

      for (let t = 0; t < trials; t++) {
        const index = firstIndex + t;
        progress(`detection: crash (socket destroyed) ${t + 1}/${trials}`);
        const since = preciseNow();
        const downAt = local.waitState(simName(index), "down", since, CRASH_WAIT_MS);
        const { at } = await sim.call("crash", { index }, CALL_MS).catch(async (err: unknown) => {
          await Promise.allSettled([downAt]); // let the wait end before giving up on the run
          throw err;
        });
        try {
          crash.push((await downAt) - at);
        } catch (err) {
          miss("crash-destroy", err);
        }
        // Decorrelate from the liveness sweep and the heartbeat phases.
        await sleep(50 + Math.random() * 150);
      }

      progress(`detection: ${trials} silent agents side by side (about 6 s)`);
      await Promise.all(
        Array.from({ length: trials }, async (_, t) => {
          const index = firstIndex + trials + t;
          const name = simName(index);
          await sleep(Math.random() * 1_000);
          const since = preciseNow();
          const suspectAt = local.waitState(name, "suspect", since, SILENCE_WAIT_MS);
          const downAt = local.waitState(name, "down", since, SILENCE_WAIT_MS);
          let lastFrameAt: number | undefined;
          let failure: unknown;
          try {
            ({ lastFrameAt } = await sim.call("silence", { index }, CALL_MS));
          } catch (err) {
            failure = err;
          }
          if (lastFrameAt === undefined) {
            // Let the waits end, so nothing is left to reject unheard.
            await Promise.allSettled([suspectAt, downAt]);
            miss("silence", failure ?? new Error(`${name} had sent nothing`));
            return;
          }
          try {
            suspect.push((await suspectAt) - lastFrameAt);
          } catch (err) {
            miss("silent-suspect", err);
          }
          try {
            down.push((await downAt) - lastFrameAt);
          } catch (err) {
            miss("silent-down", err);
          }
        }),
      );
    } finally {
      await sim.close("close", {});
    }

    // Crash by SIGKILL: a fresh child per trial, holding one agent.
    for (let t = 0; t < trials; t++) {
      const index = firstIndex + 2 * trials + t;
      progress(`detection: crash (process killed) ${t + 1}/${trials}`);
      const child = new Child<SimCommands>(`simulator (kill ${t + 1})`, SIM_SCRIPT, []);
      try {
        const c = await child.call(
          "connect",
          {
            host: "127.0.0.1",
            port: local.port,
            credsFile: creds.simFile,
            first: index,
            count: 1,
            concurrency: 1,
            attemptTimeoutMs: 10_000,
            attempts: 3,
            deadlineMs: 20_000,
            spreadOver: 1,
          },
          40_000,
        );
        if (c.connected !== 1) throw new Error(`agent ${index} did not connect`);
        await sleep(300 + Math.random() * 700);
        const since = preciseNow();
        const downAt = local.waitState(simName(index), "down", since, CRASH_WAIT_MS);
        const at = preciseNow();
        child.process.kill("SIGKILL");
        try {
          killed.push((await downAt) - at);
        } catch (err) {
          miss("crash-kill", err);
        }
      } finally {
        await child.kill();
      }
    }

    const { primary: p } = local.config;
    return {
      trials,
      crashDestroyMs: spread(crash),
      crashKillMs: spread(killed),
      silentSuspectMs: spread(suspect),
      silentDownMs: spread(down),
      missed,
      thresholds: {
        suspectAfterMs: p.suspect_after,
        deadAfterMs: p.dead_after,
        heartbeatMs: p.heartbeat_interval,
      },
    };
  } finally {
    await local.close();
  }
}
