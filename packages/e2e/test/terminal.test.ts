/**
 * What nodes send never reaches the admin's terminal raw: the `picluster`
 * command in its own process against a real primary, with a real agent
 * whose process names, log and task output carry escape sequences, a
 * scripted node whose name does, and a tutorial node.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
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
const TOKEN = "terminal-token";

/** Retitles the window, then turns the text red: what a terminal must never be sent by a node. */
const OSC = "\u001b]0;pwned\u0007";
const RED = "\u001b[31m";
/** Characters that must never reach the terminal raw (newlines and tabs may). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is looked for
const RAW = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b\u202e]/u;

/** The CLI in a child process; stdout as the bytes a terminal would get. */
function cli(
  t: TestContext,
  port: number,
  ...args: string[]
): Promise<{ status: number | null; out: string; err: string }> {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("PICLUSTER_")),
  );
  const child = spawn(
    process.execPath,
    [BIN, ...args, "--http-port", String(port), "--http-token", TOKEN],
    { env, cwd: scratchDir(t, "picluster-terminal-cwd-") },
  );
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on("data", (d: Buffer) => out.push(d));
  child.stderr.on("data", (d: Buffer) => err.push(d));
  return deadline(
    new Promise((resolve) =>
      child.on("close", (status) =>
        resolve({
          status,
          out: Buffer.concat(out).toString("utf8"),
          err: Buffer.concat(err).toString("utf8"),
        }),
      ),
    ),
    15_000,
    `picluster ${args.join(" ")}`,
  );
}

/** A node on the plaintext agent link ([primary] tls = off) that says hello with any name it likes. */
async function plainNode(t: TestContext, port: number, nodeId: string, name: string) {
  const socket = connect({ host: "127.0.0.1", port });
  t.after(() => {
    socket.destroy();
  });
  socket.on("error", () => {});
  let received = "";
  const welcomed = new Promise<void>((resolve) =>
    socket.on("data", (d: Buffer) => {
      received += d.toString();
      if (received.includes('"type":"welcome"')) resolve();
    }),
  );
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  socket.write(
    `${JSON.stringify({
      v: 1,
      type: "hello",
      ts: Date.now(),
      payload: {
        nodeId,
        name,
        version: `0.1.0${OSC}`,
        protocols: [1],
        labels: { role: `web${RED}` },
      },
    })}\n`,
  );
  await deadline(welcomed, 3_000, "welcome");
  return socket;
}

/** A process in the agent's /proc whose name and command line carry escape sequences. */
function fakeProcess(root: string, pid: number): void {
  const dir = join(root, "proc", String(pid));
  mkdirSync(dir, { recursive: true });
  const comm = `x${OSC}`;
  const rest = Array.from({ length: 40 }, (_, i) => (i === 11 ? "5" : "0"));
  writeFileSync(join(dir, "stat"), `${pid} (${comm}) S ${rest.join(" ")}\n`);
  writeFileSync(join(dir, "status"), `Name:\t${comm}\nUid:\t0\t0\t0\t0\nVmRSS:\t  900000 kB\n`);
  writeFileSync(join(dir, "cmdline"), `/usr/bin/evil\0${RED}--flag${OSC}\0`);
}

function assertSafe(what: string, text: string): void {
  const raw = RAW.exec(text);
  assert.equal(
    raw,
    null,
    `${what}: a raw U+${raw?.[0]?.codePointAt(0)?.toString(16)} reached the terminal:\n${JSON.stringify(text)}`,
  );
}

test("cli output - names, labels, process names, log lines, task output and alerts from nodes are printed escaped (\\x1b), never raw", async (t) => {
  const evilName = `evil${OSC}${RED}\u009b2J\u202e`;
  const ini = ["[alert.node_down]", "for = 0s", ""].join("\n");
  const p = await startPrimary(
    t,
    {
      "primary.tls": "off",
      "http.token": TOKEN,
      "legacy.port": "0",
      "legacy.host": "127.0.0.1",
    },
    undefined,
    undefined,
    ini,
  );
  const port = httpPort(p);
  const logFile = join(scratchDir(t, "picluster-terminal-log-"), "agent.log");
  writeFileSync(logFile, `first line\n${OSC}${RED}owned\tafter a tab\nlast\n`);
  const agent = startAgent(
    t,
    { port: p.port },
    "real",
    { "agent.tls": "off" },
    "pi4",
    [
      "[task.shout]",
      // printf turns the printable escapes into real ones: the output carries ESC and BEL.
      "command = /usr/bin/printf '\\033]0;pwned\\007\\033[31mred\\tred after a tab\\nline two\\n'",
      "",
    ].join("\n"),
    logFile,
  );
  fakeProcess(join(agent.dataDir, "root"), 4242);
  const evil = await plainNode(t, p.port, "evil-node-id", evilName);
  const legacyPort = Number(
    p.records.find((r) => r.msg === "listening for tutorial nodes")?.port ?? 0,
  );
  const tutorial = connect({ host: "127.0.0.1", port: legacyPort });
  t.after(() => {
    tutorial.destroy();
  });
  tutorial.write(
    `${JSON.stringify({ type: "node_baseinfo", payload: { hostname: "tut", ram: 1024, cpu_cores: 1 } })}\r`,
  );
  await waitFor(
    () =>
      p.primary.registry.list().filter((n) => n.state === "alive").length === 3 &&
      p.primary.registry.list().some((n) => n.name === "real" && n.details !== undefined),
    "three nodes alive, the agent's details in",
    10_000,
  );
  // The scripted node goes away: node_down fires for it, with its name.
  evil.destroy();
  await waitFor(
    () =>
      p.primary.alerts.states().some((s) => s.nodeId === "evil-node-id" && s.state === "firing"),
    "node_down firing for the scripted node",
    5_000,
  );

  const nodes = await cli(t, port, "nodes");
  assert.equal(nodes.status, 0, nodes.err);
  assertSafe("nodes", nodes.out);
  assert.ok(
    nodes.out.includes("evil\\x1b]0;pwned\\x07\\x1b[31m\\x9b2J\\u202e"),
    `the name escaped: ${nodes.out}`,
  );
  assert.match(nodes.out, /^tut \(tutorial\) +alive/m, "a tutorial node says so");
  assert.match(nodes.out, /^real +alive/m);

  const status = await cli(t, port, "status");
  assertSafe("status", status.out);
  assert.match(status.out, /^tut \(tutorial\) /m);

  const show = await cli(t, port, "node", "show", "evil-node-id");
  assert.equal(show.status, 0, show.err);
  assertSafe("node show", show.out);
  assert.match(show.out, /agent 0\.1\.0\\x1b\]0;pwned\\x07/);
  assert.match(show.out, /labels role=web\\x1b\[31m/);

  const alerts = await cli(t, port, "alerts");
  assert.equal(alerts.status, 0, alerts.err);
  assertSafe("alerts", alerts.out);
  assert.match(alerts.out, /node_down +evil\\x1b\]0;pwned\\x07/);

  const events = await cli(t, port, "events");
  assertSafe("events", events.out);
  assert.match(events.out, /evil\\x1b\]0;pwned/);
  assert.match(events.out, /tut \(tutorial\) +node\.state/);

  const top = await cli(t, port, "top", "real", "-n", "3");
  assert.equal(top.status, 0, top.err);
  assertSafe("top", top.out);
  assert.ok(
    top.out.includes("/usr/bin/evil \\x1b[31m--flag\\x1b]0;pwned\\x07"),
    `the command line escaped: ${top.out}`,
  );

  const logs = await cli(t, port, "logs", "real", "--lines", "3");
  assert.equal(logs.status, 0, logs.err);
  assertSafe("logs", logs.out);
  assert.equal(
    logs.out.replace(/^times in .*\n/, ""),
    "first line\n\\x1b]0;pwned\\x07\\x1b[31mowned\tafter a tab\nlast\n",
    "lines that are not JSON records printed as they are: newlines and tabs kept, the rest escaped",
  );

  const run = await cli(t, port, "run", "shout", "--on", "real", "--output");
  assert.equal(run.status, 0, `${run.out}${run.err}`);
  assertSafe("run", run.out);
  assert.ok(
    run.out.includes("── real ──\n\\x1b]0;pwned\\x07\\x1b[31mred\tred after a tab\nline two\n"),
    `the output escaped, its lines and tabs kept: ${run.out}`,
  );
  const id = /^run (\d+):/.exec(run.out)?.[1] ?? "";
  const shown = await cli(t, port, "tasks", id);
  assertSafe("tasks ID", shown.out);
  assert.match(shown.out, /\\x1b\]0;pwned\\x07\\x1b\[31mred\t/);

  // JSON for scripts: the same values once parsed, and nothing raw on the way.
  for (const args of [
    ["nodes", "--json"],
    ["alerts", "--json"],
    ["top", "real", "--json"],
  ]) {
    const json = await cli(t, port, ...args);
    assert.equal(json.status, 0, json.err);
    assertSafe(args.join(" "), json.out);
    JSON.parse(json.out);
  }
  const parsed = JSON.parse((await cli(t, port, "nodes", "--json")).out) as Array<{
    name: string;
  }>;
  assert.ok(
    parsed.some((n) => n.name === evilName),
    "parsed back, the name is what the node sent",
  );
});
