/**
 * A newcomer's first minutes (issue 13), with a real primary, real agents
 * and the `picluster` command as a real subprocess.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { waitFor } from "@picluster/common/testing";
import {
  CLI_BIN as BIN,
  type CliRun,
  httpPort,
  runCli,
  scratchDir,
  startAgent,
  startPrimary,
  type TestContext,
} from "./support/cluster.js";

const TOKEN = "first-impressions-token";

/** The CLI in its own process against the primary's HTTP port, to its end. */
function cli(
  t: TestContext,
  port: number,
  args: string[],
  opts: { env?: Record<string, string>; token?: string | null } = {},
): Promise<CliRun> {
  return runCli(t, args, {
    port,
    token: opts.token === undefined ? TOKEN : opts.token,
    ...(opts.env === undefined ? {} : { env: opts.env }),
  });
}

test("first vitals - a new node's figures arrive as it connects, not an interval later, and `vitals` shows them before any rollup", async (t) => {
  // An hour between samples: only the one sent on connecting can arrive in this test.
  const p = await startPrimary(t, { "primary.vitals_interval": "1h", "http.token": TOKEN });
  startAgent(t, p, "fresh");
  await waitFor(
    () => p.primary.registry.list().some((n) => n.name === "fresh" && n.vitals !== undefined),
    "the new node's vitals in the registry",
    5_000,
  );
  const nodes = await cli(t, httpPort(p), ["nodes"]);
  assert.equal(nodes.status, 0, nodes.err);
  assert.match(nodes.out, /^fresh +alive \d+s +\d+% +[\d.]+°C +\d+% +\d+% /m);

  // `vitals` over the last hour asks for 1-minute rollups, which a node a
  // few seconds old does not have: it shows the raw sample instead of "–".
  let shown: CliRun = { status: null, out: "", err: "" };
  await waitFor(
    async () => {
      shown = await cli(t, httpPort(p), ["vitals", "fresh", "--metric", "cpu"]);
      return /\d\n$/.test(shown.out);
    },
    "the stored sample shown by `picluster vitals`",
    10_000,
    100,
  );
  assert.equal(shown.status, 0, shown.err);
  assert.match(shown.out, /^cpu +[▁▂▃▄▅▆▇█]+ +[\d.]+\n$/);
});

test("token - a command without the API token says how to pass one and where `up` keeps its own", async (t) => {
  const p = await startPrimary(t, { "http.token": TOKEN });
  const port = httpPort(p);
  const dir = scratchDir(t, "picluster-first-data-");
  const file = `${dir}/http-token`;

  const run = await cli(t, port, ["run", "updates.check", "--node-data-dir", dir], { token: null });
  assert.equal(run.status, 2);
  assert.ok(run.err.includes("--http-token TOKEN"), run.err);
  assert.ok(run.err.includes(`picluster up\` as this user keeps its token in ${file}`), run.err);

  // The primary refuses: the hint comes with its answer.
  const shown = await cli(t, port, ["tasks", "1", "--node-data-dir", dir], { token: null });
  assert.equal(shown.status, 1);
  assert.match(
    shown.err,
    /^error: E_UNAUTHORIZED: a valid bearer token is needed for this call, and this command has none: pass --http-token TOKEN/,
  );
  assert.ok(shown.err.includes(file), shown.err);
  const wrong = await cli(t, port, ["tasks", "1", "--node-data-dir", dir], { token: "nope" });
  assert.match(wrong.err, /the token this command sent is not the primary's; pass --http-token/);
});

/** A loopback port that was free a moment ago, for a primary that must come back on the same one. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

test("events - oldest first under the zone they are in; task runs and changed details say what", async (t) => {
  const p = await startPrimary(t, { "http.token": TOKEN });
  const port = httpPort(p);
  const agent = startAgent(t, p, "pi-a");
  await waitFor(
    () => p.primary.registry.list().some((n) => n.name === "pi-a" && n.details !== undefined),
    "pi-a's details",
    5_000,
  );
  const ran = await cli(t, port, ["run", "time", "--on", "pi-a"]);
  assert.equal(ran.status, 0, ran.out + ran.err);

  // A kernel upgrade: the next details the agent sends say so, once.
  writeFileSync(join(agent.dataDir, "root", "proc", "sys", "kernel", "osrelease"), "6.6.62-v8+\n");
  agent.agent.link.refreshDetails();
  let listed: CliRun = { status: null, out: "", err: "" };
  await waitFor(
    async () => {
      listed = await cli(t, port, ["events"]);
      return listed.out.includes("kernel ");
    },
    "the kernel change in `picluster events`",
    10_000,
    100,
  );
  assert.equal(listed.status, 0, listed.err);
  const [zone, ...lines] = listed.out.trimEnd().split("\n");
  assert.match(zone ?? "", /^times in UTC.*, oldest first$/);
  const times = lines.map((l) => l.slice(0, 19));
  assert.deepEqual(times, [...times].sort(), "oldest first, as the help says");
  const help = await cli(t, port, ["events", "--help"]);
  assert.match(help.out, /oldest first/);
  assert.doesNotMatch(help.out, /newest first/);

  assert.match(
    listed.out,
    /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}pi-a +node\.details +Raspberry Pi 4 .*, kernel /m,
  );
  assert.match(
    listed.out,
    /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}\s+task\.started +run \d+: time on pi-a, 1 node, by \S.*$/m,
  );
  assert.match(listed.out, /task\.finished +run \d+: time ok: 1 ok, 0 failed, 0 skipped$/m);
  assert.match(listed.out, /pi-a +node\.details +kernel [^ ]+ → 6\.6\.62-v8\+$/m);
  // Nothing else the agent re-sent (a boot time off by a second) made an event.
  const stored = p.primary.store.events({ kind: "node.details", limit: 100 });
  assert.equal(stored.length, 2, JSON.stringify(stored.map((e) => e.data)));
});

test("events - --follow outlives a primary restart: it says so, reconnects and goes on", async (t) => {
  const http = await freePort();
  const dataDir = scratchDir(t, "picluster-first-primary-");
  const first = await startPrimary(t, { "http.token": TOKEN, "http.port": String(http) }, dataDir);
  startAgent(t, first, "pi-a");
  await waitFor(
    () => first.primary.registry.list().some((n) => n.state === "alive"),
    "pi-a alive",
    5_000,
  );
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("PICLUSTER_")),
  );
  const follow = spawn(
    process.execPath,
    [BIN, "events", "--follow", "--http-port", String(http), "--http-token", TOKEN],
    { env: clean },
  );
  t.after(() => {
    if (follow.exitCode === null && follow.signalCode === null) follow.kill("SIGKILL");
  });
  let out = "";
  let err = "";
  follow.stdout.on("data", (d: Buffer) => (out += d.toString()));
  follow.stderr.on("data", (d: Buffer) => (err += d.toString()));
  await waitFor(() => /pi-a +node\.state/.test(out), "the listed events", 10_000);

  await first.close();
  await waitFor(
    () => /event stream lost \(.*\); reconnecting in [\d.]+ s/.test(err),
    "a note that the stream was lost",
    10_000,
  );
  assert.equal(follow.exitCode, null, `still running: ${err}`);

  const second = await startPrimary(t, { "http.token": TOKEN, "http.port": String(http) }, dataDir);
  startAgent(t, second, "pi-b");
  await waitFor(() => /pi-b +node\.joined +joined/.test(out), "pi-b's join, followed", 20_000);
  assert.match(err, /event stream: reconnected/);
  assert.doesNotMatch(err, /^error:/m);
});

test("listings - a tutorial node beside an agent of the same name: told apart by the suffix and the id, counted once in the totals; --on selects as `run` does", async (t) => {
  const p = await startPrimary(t, {
    "http.token": TOKEN,
    "legacy.port": "0",
    "legacy.host": "127.0.0.1",
  });
  const port = httpPort(p);
  const legacyPort = Number(
    p.records.find((r) => r.msg === "listening for tutorial nodes")?.port ?? 0,
  );
  // The tutorial's script on this machine came first; then the agent, under the same host name
  // (which cuts the tutorial node's connection: the name is the agent's now).
  const tutorial = connect({ host: "127.0.0.1", port: legacyPort });
  t.after(() => {
    tutorial.destroy();
  });
  tutorial.write(
    `${JSON.stringify({ type: "node_baseinfo", payload: { hostname: "vm", ram: 24 * 1024 ** 3, cpu_cores: 2 } })}\r`,
  );
  await waitFor(
    () => p.primary.registry.get("legacy-vm")?.details !== undefined,
    "the tutorial node",
    5_000,
  );
  startAgent(t, p, "vm");
  await waitFor(
    () =>
      p.primary.registry.list().filter((n) => n.name === "vm" && n.details !== undefined).length ===
      2,
    "both nodes called vm, with details",
    5_000,
  );
  await waitFor(
    () => p.primary.registry.get("legacy-vm")?.state === "left",
    "the tutorial node cut off: its name is the agent's now",
    5_000,
  );
  const agent = p.primary.registry.list().find((n) => n.name === "vm" && !n.legacy);
  assert.ok(agent !== undefined);

  const status = await cli(t, port, ["status"]);
  assert.equal(status.status, 0, status.err);
  const cores = agent.details?.cpu.cores ?? 0;
  const gib = ((agent.details?.memory.totalBytes ?? 0) / 1024 ** 3).toFixed(1);
  assert.match(
    status.out,
    new RegExp(
      `^2 nodes: 1 alive, 0 suspect, 0 down, 1 left · ${cores} cores, ${gib} GiB \\(1 tutorial node on an agent's machine not counted again\\)$`,
      "m",
    ),
  );
  assert.match(status.out, new RegExp(`^vm \\[id ${agent.id}\\] +alive`, "m"));
  // Its connection was cut when the agent's credential took the name; its record stays.
  assert.match(status.out, /^vm \(tutorial\) \[id legacy-vm\] +left/m);
  const show = await cli(t, port, ["node", "show", "vm"]);
  assert.match(show.out, /vm \(tutorial\) is another node: `picluster node show legacy-vm`/);

  // --on: the selector `run` takes.
  const tutorials = await cli(t, port, ["nodes", "--on", "legacy=true", "--json"]);
  assert.deepEqual(
    (JSON.parse(tutorials.out) as Array<{ id: string }>).map((n) => n.id),
    ["legacy-vm"],
  );
  const down = await cli(t, port, ["status", "--on", "down"]);
  assert.match(down.out, /^0 nodes: 0 alive, 0 suspect, 0 down, 0 left · 0 cores, 0 B\n/);
  const byId = await cli(t, port, ["nodes", "--on", `${agent.id},nobody`]);
  assert.equal(byId.status, 1, "a name that matches nothing");
  assert.equal(byId.err, 'warning: no node is called "nobody"\n');
  assert.match(byId.out, /^vm +alive/m);
  assert.doesNotMatch(byId.out, /tutorial/);
  // Read by the same parser as the primary's, before anything is sent: a usage error.
  const bad = await cli(t, port, ["nodes", "--on", ","]);
  assert.equal(bad.status, 2);
  assert.match(
    bad.err,
    /^error: option '--on <selector>' argument ',' is invalid\. empty selector/,
  );

  // -n is --limit wherever a count of rows is taken.
  const events = await cli(t, port, ["events", "-n", "2"]);
  assert.equal(events.out.trimEnd().split("\n").length, 1 + 2, events.out);
  for (let i = 0; i < 2; i++)
    assert.equal((await cli(t, port, ["run", "time", "--on", agent.id])).status, 0);
  const runs = await cli(t, port, ["tasks", "-n", "1"]);
  assert.match(runs.out, /^ID +TASK +ON +STATUS +STARTED +BY\n2 +time /);
  assert.equal(runs.out.trimEnd().split("\n").length, 1 + 1, runs.out);
});
