/**
 * http: what hostile clients cost the machine. A real `picluster up` (a
 * primary and its own local agent, as `npm start` runs it) in a child
 * process, a store with 2 000 events of history, and from this process:
 *  - 1 000 event-stream clients asking to resume from `Last-Event-ID: 1`
 *    that never read, spread over 250 loopback addresses;
 *  - 400 unauthenticated POSTs announcing 1 MiB and sending 900 KiB of it,
 *    then stalling; and the same 400 with the token.
 * For each: the primary's RSS, the drop in MemAvailable (the primary plus
 * kernel socket buffers plus this process), this process's own growth, how
 * many streams the primary holds, and whether the local node stays alive.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger, systemClock } from "@picluster/common";
import { Store } from "@picluster/primary";
import { sleep } from "../cluster/stats.js";
import { budget, type SuiteContext, type SuiteReport } from "../harness.js";

/** Issue 12's target: 1 000 stalled stream clients cost the machine less than this. */
const MAX_STALLED_STREAMS_MB = 150;
const TOKEN = "bench-http-token";
const CLI = new URL("../../../packages/cli/bin/picluster.js", import.meta.url).pathname;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() =>
        typeof a === "object" && a !== null ? resolve(a.port) : reject(new Error("no port")),
      );
    });
  });
}

function memAvailableMb(): number {
  const m = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync("/proc/meminfo", "utf8"));
  return Number(m?.[1] ?? Number.NaN) / 1024;
}

/** Kernel memory held by TCP socket buffers, system-wide (`mem` in /proc/net/sockstat is in pages). */
function tcpBuffersMb(): number {
  const m = /^TCP: .* mem (\d+)$/m.exec(readFileSync("/proc/net/sockstat", "utf8"));
  return (Number(m?.[1] ?? Number.NaN) * 4096) / 2 ** 20;
}

function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? Number.NaN) / 1024;
}

async function getJson(base: string, path: string): Promise<unknown> {
  const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(5_000) });
  return (await res.json()) as unknown;
}

async function streamsOpen(base: string): Promise<number> {
  const text = await (
    await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5_000) })
  ).text();
  return Number(/^picluster_http_streams (\S+)$/m.exec(text)?.[1] ?? Number.NaN);
}

interface Figures {
  scenario: string;
  clients: number;
  primaryRssMb: number;
  primaryGrowthMb: number;
  memDropMb: number;
  benchGrowthMb: number;
  tcpBuffersMb: number;
  /** The primary's RSS growth plus the growth of TCP socket buffers. */
  costMb: number;
  streams: number;
  localNode: string;
  healthMs: number;
}

export async function runHttp(ctx: SuiteContext): Promise<SuiteReport> {
  const dataDir = mkdtempSync(join(tmpdir(), "picluster-bench-http-"));
  const figures: Figures[] = [];
  const sockets: Socket[] = [];
  let child: ReturnType<typeof spawn> | undefined;
  try {
    // History to resume from: 2 000 events of ~600 bytes each.
    const store = new Store({
      file: join(dataDir, "picluster.db"),
      clock: systemClock,
      log: silentLogger(),
      retention: { rawMs: 86_400_000, minuteMs: 86_400_000, hourMs: 86_400_000 },
    }).open();
    for (let i = 0; i < 2_000; i++)
      store.addEvent(
        {
          kind: "alert.delivery_failed",
          at: Date.now(),
          channel: "bench",
          rule: "history",
          title: `event ${i}`,
          attempts: 1,
          error: "e".repeat(500),
        },
        undefined,
      );
    store.close();

    const httpPort = await freePort();
    const agentPort = await freePort();
    const base = `http://127.0.0.1:${httpPort}`;
    child = spawn(
      process.execPath,
      [
        CLI,
        "up",
        "--node-data-dir",
        dataDir,
        "--http-port",
        String(httpPort),
        "--primary-port",
        String(agentPort),
        "--http-token",
        TOKEN,
        "--json",
      ],
      { stdio: ["ignore", "ignore", "inherit"] },
    );
    const pid = child.pid ?? 0;
    const started = Date.now();
    for (;;) {
      try {
        const nodes = (await getJson(base, "/api/nodes")) as { nodes: Array<{ state: string }> };
        if (nodes.nodes.some((n) => n.state === "alive")) break;
      } catch {
        // Not listening yet.
      }
      if (Date.now() - started > 30_000) throw new Error("picluster up did not start within 30 s");
      await sleep(200);
    }
    ctx.progress("http: picluster up is running with its local node alive");
    const holdMs = ctx.quick ? 5_000 : 10_000;

    const measure = async (
      scenario: string,
      clients: number,
      attack: () => void,
    ): Promise<void> => {
      await sleep(2_000);
      const before = {
        rss: rssMb(pid),
        mem: memAvailableMb(),
        tcp: tcpBuffersMb(),
        bench: process.memoryUsage.rss() / 2 ** 20,
      };
      attack();
      await sleep(holdMs);
      const t0 = performance.now();
      const nodes = (await getJson(base, "/api/nodes")) as { nodes: Array<{ state: string }> };
      const healthMs = performance.now() - t0;
      const after = {
        rss: rssMb(pid),
        mem: memAvailableMb(),
        tcp: tcpBuffersMb(),
        bench: process.memoryUsage.rss() / 2 ** 20,
      };
      const f: Figures = {
        scenario,
        clients,
        primaryRssMb: after.rss,
        primaryGrowthMb: after.rss - before.rss,
        memDropMb: before.mem - after.mem,
        benchGrowthMb: after.bench - before.bench,
        tcpBuffersMb: after.tcp - before.tcp,
        costMb: after.rss - before.rss + (after.tcp - before.tcp),
        streams: await streamsOpen(base),
        localNode: nodes.nodes.map((n) => n.state).join(",") || "none",
        healthMs,
      };
      figures.push(f);
      ctx.progress(`http: ${scenario}: ${JSON.stringify(f)}`);
      for (const s of sockets.splice(0)) s.destroy();
    };

    const open = (text: string, i: number, body?: Buffer) => {
      const s = connect({
        host: "127.0.0.1",
        port: httpPort,
        localAddress: `127.0.0.${1 + (i % 250)}`,
      });
      s.on("error", () => {});
      s.on("connect", () => {
        s.write(text);
        if (body !== undefined) s.write(body);
        s.pause(); // Never read what comes back.
      });
      sockets.push(s);
    };

    await measure("1 000 stalled stream clients resuming from Last-Event-ID: 1", 1_000, () => {
      for (let i = 0; i < 1_000; i++)
        open("GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: 1\r\n\r\n", i);
    });
    const body = Buffer.alloc(900 * 1024, 0x20);
    body[0] = 0x7b; // "{"
    await measure("400 unfinished 1 MiB POSTs without the token", 400, () => {
      for (let i = 0; i < 400; i++)
        open(
          "POST /api/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n",
          i,
          body,
        );
    });
    await measure("400 unfinished 1 MiB POSTs with the token", 400, () => {
      for (let i = 0; i < 400; i++)
        open(
          `POST /api/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n`,
          i,
          body,
        );
    });
  } finally {
    for (const s of sockets) s.destroy();
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise((resolve) => child?.once("exit", resolve));
      child.kill("SIGTERM");
      await Promise.race([exited, sleep(10_000)]);
      if (child.exitCode === null) child.kill("SIGKILL");
    }
    rmSync(dataDir, { recursive: true, force: true });
  }

  const streams = figures[0];
  const fmt = (n: number) => n.toFixed(1);
  return {
    suite: "http",
    description: "what stalled stream clients and unfinished large POSTs cost the machine",
    parameters: { streamClients: 1_000, posts: 400, addresses: 250, historyEvents: 2_000 },
    measurements: [],
    ratios: [],
    budgets:
      streams === undefined
        ? []
        : [
            budget(
              "stalled-streams-mb",
              "1 000 stalled stream clients: primary RSS growth + TCP buffer growth",
              "<",
              MAX_STALLED_STREAMS_MB,
              streams.costMb,
              "MB",
            ),
          ],
    notes: [
      "cost = the primary's RSS growth + the growth of kernel TCP buffers (/proc/net/sockstat): what the attack costs the machine; MemAvailable's drop is shown too, but other processes on a shared machine move it",
      "the primary runs as `picluster up` (with its local agent) in a child process; clients come from 127.0.0.1-127.0.0.250",
    ],
    tables: [
      {
        title: "hostile clients, held 10 s",
        columns: [
          "scenario",
          "primary RSS MB",
          "growth MB",
          "MemAvailable drop MB",
          "bench growth MB",
          "TCP buffers MB",
          "cost MB",
          "streams held",
          "local node",
          "API answer ms",
        ],
        rows: figures.map((f) => [
          f.scenario,
          fmt(f.primaryRssMb),
          fmt(f.primaryGrowthMb),
          fmt(f.memDropMb),
          fmt(f.benchGrowthMb),
          fmt(f.tcpBuffersMb),
          fmt(f.costMb),
          String(f.streams),
          f.localNode,
          fmt(f.healthMs),
        ]),
        numeric: [1, 2, 3, 4, 5, 6, 7, 9],
      },
    ],
    data: { figures },
  };
}
