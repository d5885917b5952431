import assert from "node:assert/strict";
import { createServer } from "node:http";
import { join } from "node:path";
import { test } from "node:test";
import { silentLogger } from "@picluster/common";
import { ManualClock, scratchDir } from "@picluster/common/testing";
import { Containers } from "../src/containers.js";

/**
 * A Docker-compatible API on a unix socket, in this process: `running`
 * containers, each with a CPU counter that grows by 1e8 ns (0.1 s) per
 * stats request and 1 s of system time. Counts stats requests per container
 * and connections.
 */
async function fakeApi(t: { after(fn: () => void): void }, running: number) {
  const ids = Array.from({ length: running }, (_, i) => `c${String(i).padStart(2, "0")}`);
  const statsCalls = new Map<string, number>();
  let connections = 0;
  const server = createServer((req, res) => {
    const url = req.url ?? "";
    const stats = /^\/containers\/(c\d+)\/stats/.exec(url);
    const inspect = /^\/containers\/(c\d+)\/json/.exec(url);
    let body: unknown;
    if (url.startsWith("/containers/json"))
      body = ids.map((id) => ({ Id: id, Names: [`/${id}`], Image: "img", State: "running" }));
    else if (stats !== null) {
      const id = stats[1] as string;
      const n = (statsCalls.get(id) ?? 0) + 1;
      statsCalls.set(id, n);
      body = {
        cpu_stats: {
          cpu_usage: { total_usage: n * 1e8 },
          system_cpu_usage: n * 1e9,
          online_cpus: 1,
        },
        memory_stats: { usage: 1_000_000 + n, limit: 8e9, stats: { inactive_file: 0 } },
      };
    } else if (inspect !== null) body = { RestartCount: 0, State: { Status: "running" } };
    else {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
  });
  server.on("connection", () => connections++);
  const socket = join(scratchDir(t, "picluster-fake-docker-"), "docker.sock");
  await new Promise<void>((r) => server.listen(socket, r));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { socket, statsCalls, connections: () => connections };
}

/** The agent's container reader on a fake API, reading stats every `statsEveryMs`. */
function reader(socket: string, statsEveryMs: number, clock: ManualClock): Containers {
  return new Containers({ socket, max: 50, statsEveryMs, clock, log: silentLogger() });
}

test("containers (agent) - each running container's stats are read every stats_interval, spread over the samples; between readings a sample carries the latest figures; one connection per sample", async (t) => {
  const api = await fakeApi(t, 6);
  const clock = new ManualClock();
  const containers = reader(api.socket, 30_000, clock);
  const perSample: number[] = [];
  const total = () => [...api.statsCalls.values()].reduce((a, b) => a + b, 0);
  let last = 0;
  let list = await containers.sample();
  perSample.push(total() - last);
  last = total();
  assert.equal(list.length, 6);
  // Samples every 10 s for 2 minutes.
  for (let i = 0; i < 12; i++) {
    clock.advance(10_000);
    list = await containers.sample();
    perSample.push(total() - last);
    last = total();
    // Every container has its figures in every sample once it has two readings.
    if (i >= 3)
      for (const c of list) {
        assert.equal(c.cpuPct, 10, `${c.name} at sample ${i + 1}`);
        assert.ok((c.memBytes ?? 0) > 1_000_000);
      }
  }
  // All six at first, then two a sample (6 containers x 10 s / 30 s), never all at once again.
  assert.deepEqual(perSample, [6, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
  // Each read at first, then once every 30 s: 1 + 4 in 2 minutes.
  assert.deepEqual([...api.statsCalls.values()], [5, 5, 5, 5, 5, 5]);
  // A list, stats and inspections, one connection per sample.
  assert.equal(api.connections(), 13);
});

test("containers (agent) - at or below the vitals interval every sample reads every running container", async (t) => {
  const api = await fakeApi(t, 3);
  const clock = new ManualClock();
  const containers = reader(api.socket, 1_000, clock);
  for (let i = 0; i < 4; i++) {
    await containers.sample();
    clock.advance(1_000);
  }
  assert.deepEqual([...api.statsCalls.values()], [4, 4, 4]);
});
