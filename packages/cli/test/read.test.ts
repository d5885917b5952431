import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { deadline, scratchDir } from "@picluster/common/testing";
import type { CliIo } from "../src/io.js";
import { main } from "../src/main.js";

const BIN = new URL("../../bin/picluster.js", import.meta.url).pathname;

function captureIo(): CliIo & { stdout(): string; stderr(): string } {
  let out = "";
  let err = "";
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("PICLUSTER_")),
  );
  return {
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
    env,
    cwd: tmpdir(),
    isTty: false,
    stdout: () => out,
    stderr: () => err,
  };
}

test("cli read - status, nodes, node show, events, vitals, run, tasks and ping work against a running primary", async (t) => {
  const dir = scratchDir(t, "picluster-read-");
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("PICLUSTER_")),
  );
  // The local node allows one task of its own (the same file configures both in `up`).
  const configFile = join(dir, "picluster.ini");
  writeFileSync(
    configFile,
    "[task.hello]\ncommand = /usr/bin/printf 'hello %%s' {who}\narg.who = string [a-z]{1,16}\n",
  );
  const up = spawn(
    process.execPath,
    [BIN, "up", "--json", "--node-name", "here", "--config", configFile],
    {
      env: {
        ...env,
        PICLUSTER_NODE_DATA_DIR: dir,
        PICLUSTER_PRIMARY_PORT: "0",
        PICLUSTER_HTTP_PORT: "0",
        PICLUSTER_PRIMARY_VITALS_INTERVAL: "1s",
        PICLUSTER_LOG_FORMAT: "json",
        PICLUSTER_HTTP_TOKEN: "tok",
      },
      stdio: ["ignore", "pipe", "ignore"],
    },
  );
  t.after(() => {
    up.kill("SIGKILL");
  });
  up.stdout.setEncoding("utf8");
  const { url } = await deadline(
    new Promise<{ url: string }>((resolve) =>
      up.stdout.once("data", (text: string) => resolve(JSON.parse(text) as { url: string })),
    ),
    10_000,
    "ready line",
  );
  const port = new URL(url).port;
  const cli = async (...args: string[]) => {
    const io = captureIo();
    const code = await main(
      [
        ...args,
        "--http-port",
        port,
        "--http-token",
        "tok",
        "--node-data-dir",
        dir,
        "--config",
        configFile,
      ],
      io,
    );
    return { code, out: io.stdout(), err: io.stderr() };
  };
  await deadline(
    (async () => {
      while (!(await cli("nodes", "--json")).out.includes('"vitals":{'))
        await new Promise((r) => setImmediate(r));
    })(),
    10_000,
    "the local node with vitals",
  );

  const status = await cli("status");
  assert.equal(status.code, 0, status.err);
  assert.match(
    status.out,
    /^1 nodes: 1 alive, 0 suspect, 0 down, 0 left · \d+ cores, [\d.]+ GiB\n\nNAME +STATE +CPU +TEMP +MEM +DISK +UPTIME +POWER\nhere +alive \d+s +\d+% /,
  );

  const nodes = JSON.parse((await cli("nodes", "--json")).out) as Array<{
    name: string;
    state: string;
  }>;
  assert.deepEqual(
    nodes.map((n) => [n.name, n.state]),
    [["here", "alive"]],
  );

  const show = await cli("node", "show", "here");
  assert.equal(show.code, 0);
  assert.match(show.out, /^here {2}alive for \d+s \(connected\)\n {2}id [0-9a-f]+ {2}address /);
  const missing = await cli("node", "show", "nobody");
  assert.equal(missing.code, 1);
  assert.equal(missing.err, 'error: E_NO_SUCH_NODE: no node "nobody"\n');

  const events = await cli("events", "--kind", "node.state");
  assert.match(events.out, /here +node\.state +new → alive \(connected\)/);

  // The node's latest figures are in the registry at once; its history once the batch commits.
  let vitals = await cli("vitals", "here", "--since", "5m", "--metric", "cpu");
  await deadline(
    (async () => {
      while (!/\d\n$/.test(vitals.out))
        vitals = await cli("vitals", "here", "--since", "5m", "--metric", "cpu");
    })(),
    5_000,
    "a stored cpu sample",
  );
  assert.equal(vitals.code, 0, vitals.err);
  assert.match(vitals.out, /^cpu +[▁▂▃▄▅▆▇█ ]+ +[\d.]+\n$/);
  const bad = await cli("vitals", "here", "--since", "soon");
  assert.equal(bad.code, 1);
  assert.match(bad.err, /--since: expected a duration/);

  // With the bearer token configured, node add and revoke go through the running primary.
  const added = await cli("node", "add", "pi-api", "--json");
  assert.equal(added.code, 0, added.err);
  const { token } = JSON.parse(added.out) as { token: string };
  const listed = JSON.parse((await cli("node", "list", "--json")).out) as Array<{
    name: string;
    status: string;
  }>;
  assert.ok(
    listed.some((c) => c.name === "pi-api" && c.status === "pending"),
    "the primary wrote the token",
  );
  assert.match(token, /^pcj1\./);
  const again = await cli("node", "add", "here", "--json");
  assert.equal(again.code, 1, "the running primary refuses a name that has a credential");
  assert.match(again.err, /E_NODE_EXISTS/);
  const revoked = await cli("node", "revoke", "pi-api", "--json");
  assert.equal(revoked.code, 0, revoked.err);

  // Tasks and pings through the API: a table, JSON, and exit 1 when a node failed.
  const ran = await cli("run", "hello", "--arg", "who=world", "--json");
  assert.equal(ran.code, 0, ran.err);
  const run = JSON.parse(ran.out) as {
    id: number;
    status: string;
    nodes: Array<{ name: string; output: string }>;
  };
  assert.equal(run.status, "ok");
  assert.deepEqual(
    run.nodes.map((n) => [n.name, n.output]),
    [["here", "hello world"]],
  );
  const refused = await cli("run", "hello", "--arg", "who=$(id)");
  assert.equal(refused.code, 1);
  assert.match(
    refused.out,
    /here +failed +– +[\d.]+s +E_BAD_ARGS: argument "who" of task "hello": does not match/,
  );
  const usage = await cli("run", "hello", "--batch", "zero");
  assert.equal(usage.code, 2);
  assert.match(usage.err, /--batch zero: expected a whole number/);
  const listed2 = await cli("tasks");
  assert.match(
    listed2.out,
    new RegExp(`^ID +TASK +ON +STATUS +STARTED +BY\n${run.id + 1} +hello +all +failed `),
  );
  const shown = await cli("tasks", String(run.id));
  assert.match(shown.out, /── here ──\nhello world\n/);
  const pinged = await cli("ping", "--json");
  assert.equal(pinged.code, 0, pinged.err);
  const pings = JSON.parse(pinged.out) as Array<{ name: string; ok: boolean; rttMs: number }>;
  assert.equal(pings[0]?.ok, true);
  assert.ok((pings[0]?.rttMs ?? -1) >= 0);

  // Requests answered by the node itself: its busiest processes, its log.
  const top = await cli("top", "here", "-n", "3", "--json");
  assert.equal(top.code, 0, top.err);
  const procs = JSON.parse(top.out) as {
    byCpu: Array<{ pid: number }>;
    byMemory: Array<{ pid: number }>;
  };
  assert.equal(procs.byMemory.length, 3);
  const logs = await cli("logs", "here", "--limit", "5", "--json");
  assert.equal(logs.code, 0, logs.err);
  const records = logs.out
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as { role?: string; msg?: string; level?: string; time?: string });
  assert.equal(records.length, 5);
  assert.ok(
    records.every((r) => r.role === "primary"),
    "the process's own JSON log, a record a line",
  );
  // Readable by default: time in this machine's zone, level, message, fields.
  const readable = await cli("logs", "here", "-n", "5");
  assert.equal(readable.code, 0, readable.err);
  const [zone, ...lines] = readable.out.trimEnd().split("\n");
  assert.match(zone ?? "", /^times in UTC/);
  assert.equal(lines.length, 5);
  for (const line of lines)
    assert.match(
      line,
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}(TRACE|DEBUG|INFO |WARN |ERROR|FATAL) {2}\S/,
    );
  assert.ok(!readable.out.includes('"msg"'), "no raw JSON");
  const nobody = await cli("logs", "nobody");
  assert.equal(nobody.code, 1);
  assert.match(nobody.err, /E_NO_SUCH_NODE: no node "nobody"/);

  up.kill("SIGINT");
});

test("cli read - with no primary running, one clear line and exit 1", async () => {
  const { createServer } = await import("node:net");
  // A port that was free a moment ago and has nobody listening now.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const address = probe.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const io = captureIo();
  const code = await main(["status", "--http-port", String(port)], io);
  assert.equal(code, 1);
  assert.equal(
    io.stderr(),
    `error: E_NO_PRIMARY: cannot reach the primary at http://127.0.0.1:${port} (ECONNREFUSED); is \`picluster primary\` or \`picluster up\` running?\n`,
  );
});
