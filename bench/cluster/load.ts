/**
 * One load run: N simulated agents (one child) against one server (another
 * child: the real Primary, or the no-op reader), connected in a bounded
 * number of concurrent handshakes, then a warm-up and a steady measurement
 * window. Both children are ended whatever happens.
 */
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { IssuedCredentials } from "./credentials.js";
import type {
  ConnectResult,
  ServerCommands,
  ServerMode,
  ServerStatus,
  ServerWindow,
  SimCommands,
  SimWindow,
  Spread,
} from "./ipc.js";
import { Child } from "./rpc.js";
import { sleep, spread } from "./stats.js";

export const SIM_SCRIPT = new URL("../sim/agents.js", import.meta.url).pathname;
export const SERVER_SCRIPT = new URL("../sim/server.js", import.meta.url).pathname;

export interface LoadOptions {
  mode: ServerMode;
  agents: number;
  warmupMs: number;
  windowMs: number;
  concurrency: number;
  connectDeadlineMs: number;
  attemptTimeoutMs: number;
  attempts: number;
  /** Node flags for the server child, e.g. ["--cpu-prof", "--cpu-prof-dir=/tmp/prof"] to profile it. */
  serverExecArgv?: readonly string[];
}

export interface LoadResult {
  mode: ServerMode;
  agents: number;
  connect: ConnectResult;
  /** The server's view right after connecting and at the end of the window. */
  statusAfterConnect: ServerStatus;
  statusAfterWindow: ServerStatus;
  server: Omit<ServerWindow, "vitalsEvents" | "lagsMs">;
  simulator: SimWindow;
  /** Send (simulator's `ts`) to registry update (event `at`) for the primary; to JSON.parse for the no-op reader. */
  lagMs: Spread;
  /** Vitals events the send times could not be matched to (should be 0). */
  unmatched: number;
  receivedPerSec: number;
  vitalsPerSec: number;
  sentPerSec: number;
}

const CALL_MS = 30_000;

export async function runLoad(
  opts: LoadOptions,
  creds: IssuedCredentials,
  progress: (message: string) => void,
): Promise<LoadResult> {
  const label = `${opts.mode} × ${opts.agents}`;
  const dataDir = mkdtempSync(join(tmpdir(), "picluster-bench-primary-"));
  copyFileSync(creds.storeFile, join(dataDir, "picluster.db"));
  const server = new Child<ServerCommands>(
    `server (${opts.mode})`,
    SERVER_SCRIPT,
    [],
    () => {},
    opts.serverExecArgv,
  );
  try {
    const { port } = await server.call(
      "start",
      {
        mode: opts.mode,
        credsFile: creds.simFile,
        dataDir,
        maxHandshakesPerAddress: Math.max(64, opts.agents),
      },
      CALL_MS,
    );
    const sim = new Child<SimCommands>("simulator", SIM_SCRIPT, [], (event, data) => {
      if (event !== "progress") return;
      const p = data as { connected: number; failed: number; inFlight: number; of: number };
      progress(
        `${label}: ${p.connected}/${p.of} connected, ${p.inFlight} in handshake, ${p.failed} failed`,
      );
    });
    try {
      progress(`${label}: connecting`);
      const connect = await sim.call(
        "connect",
        {
          host: "127.0.0.1",
          port,
          credsFile: creds.simFile,
          first: 0,
          count: opts.agents,
          concurrency: opts.concurrency,
          attemptTimeoutMs: opts.attemptTimeoutMs,
          attempts: opts.attempts,
          deadlineMs: opts.connectDeadlineMs,
          spreadOver: opts.agents,
        },
        opts.connectDeadlineMs + opts.attemptTimeoutMs + CALL_MS,
      );
      progress(
        `${label}: ${connect.connected} connected in ${(connect.elapsedMs / 1000).toFixed(1)} s (${connect.failed} failed); warm-up ${opts.warmupMs / 1000} s`,
      );
      const statusAfterConnect = await server.call("status", {}, CALL_MS);
      await sleep(opts.warmupMs);
      progress(`${label}: measuring for ${opts.windowMs / 1000} s`);
      await Promise.all([
        server.call("window-start", {}, CALL_MS),
        sim.call("window-start", {}, CALL_MS),
      ]);
      await sleep(opts.windowMs);
      const [serverWindow, simulator] = await Promise.all([
        server.call("window-end", {}, CALL_MS),
        sim.call("window-end", {}, CALL_MS),
      ]);
      const statusAfterWindow = await server.call("status", {}, CALL_MS);

      let lags: number[];
      let unmatched = 0;
      if (opts.mode === "primary") {
        const { sentTs } = await sim.call("sent-ts", {}, CALL_MS);
        lags = [];
        const ev = serverWindow.vitalsEvents;
        for (let i = 0; i + 2 < ev.length; i += 3) {
          const sent = sentTs[ev[i] as number]?.[(ev[i + 1] as number) - 1];
          if (sent === undefined) unmatched++;
          else lags.push((ev[i + 2] as number) - sent);
        }
      } else {
        lags = serverWindow.lagsMs;
      }
      const { vitalsEvents: _e, lagsMs: _l, ...serverFigures } = serverWindow;
      const seconds = serverWindow.wallMs / 1000;
      return {
        mode: opts.mode,
        agents: opts.agents,
        connect,
        statusAfterConnect,
        statusAfterWindow,
        server: serverFigures,
        simulator,
        lagMs: spread(lags),
        unmatched,
        receivedPerSec: serverWindow.received.total / seconds,
        vitalsPerSec: serverWindow.received.vitals / seconds,
        sentPerSec: (simulator.sent.heartbeat + simulator.sent.vitals) / (simulator.wallMs / 1000),
      };
    } finally {
      progress(`${label}: closing`);
      await sim.close("close", {});
    }
  } finally {
    await server.close("close", {});
    rmSync(dataDir, { recursive: true, force: true });
  }
}
