/**
 * A newcomer's first minutes (issue 13), with a real primary, real agents
 * and the `picluster` command as a real subprocess.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { deadline, waitFor } from "@picluster/common/testing";
import {
  httpPort,
  scratchDir,
  startAgent,
  startPrimary,
  type TestContext,
} from "./support/cluster.js";

const BIN = new URL("../../../cli/bin/picluster.js", import.meta.url).pathname;
const TOKEN = "first-impressions-token";

interface Ran {
  status: number | null;
  out: string;
  err: string;
}

/** The CLI in its own process against the primary's HTTP port, to its end. */
function cli(
  t: TestContext,
  port: number,
  args: string[],
  opts: { env?: Record<string, string>; token?: string | null } = {},
): Promise<Ran> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("PICLUSTER_")),
  );
  const token = opts.token === undefined ? TOKEN : opts.token;
  const child = spawn(
    process.execPath,
    [BIN, ...args, "--http-port", String(port), ...(token === null ? [] : ["--http-token", token])],
    { env: { ...clean, ...opts.env }, cwd: scratchDir(t, "picluster-first-cwd-") },
  );
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  return deadline(
    new Promise((resolve) => child.on("close", (status) => resolve({ status, out, err }))),
    15_000,
    `picluster ${args.join(" ")}`,
  );
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
  let shown: Ran = { status: null, out: "", err: "" };
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
