/**
 * What a person sees in their first minutes (issue 13): `up` on a real
 * terminal, output piped into `head`, a port already taken. The CLI runs
 * as a real subprocess; a pseudo-terminal comes from util-linux `script`.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { deadline, scratchDir, waitFor } from "@picluster/common/testing";

const BIN = new URL("../../bin/picluster.js", import.meta.url).pathname;

interface After {
  after(fn: () => void | Promise<void>): void;
}

function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("PICLUSTER_")),
  );
  return { ...env, ...extra };
}

function scratch(t: After): string {
  const dir = scratchDir(t, "picluster-first-run-");
  return dir;
}

/** The CLI to its end; `closeStdout` closes our end of its stdout before it writes a byte. */
function cli(
  t: After,
  args: string[],
  opts: { env?: Record<string, string>; closeStdout?: boolean } = {},
): Promise<{ code: number | null; signal: string | null; out: string; err: string }> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: cleanEnv(opts.env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let out = "";
  let err = "";
  if (opts.closeStdout) child.stdout.destroy();
  else child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  return deadline(
    new Promise((resolve) =>
      child.on("close", (code, signal) => resolve({ code, signal, out, err })),
    ),
    15_000,
    `picluster ${args.join(" ")}`,
  );
}

/** A listener on a free loopback port, closed when the test ends. */
async function holdPort(t: After): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

test("cli up - on a terminal: the banner and warnings only; INFO lines and the alive record go to the log file", async (t) => {
  if (spawnSync("script", ["--version"]).status !== 0) {
    t.skip("util-linux `script` is not installed: no pseudo-terminal to test with");
    return;
  }
  const dir = scratch(t);
  const command = [
    "exec",
    JSON.stringify(process.execPath),
    JSON.stringify(BIN),
    "up",
    "--node-data-dir",
    JSON.stringify(dir),
    "--http-port 0 --primary-port 0 --node-name here --log-liveness-interval 1s",
  ].join(" ");
  // `script` gives the command a terminal on stdin, stdout and stderr alike, and copies it to us.
  const child = spawn("script", ["-qfec", command, "/dev/null"], {
    env: cleanEnv(),
    stdio: ["pipe", "pipe", "pipe"],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let screen = "";
  child.stdout.on("data", (d: Buffer) => (screen += d.toString()));
  const logFile = join(dir, "log", "primary.log");
  const records = () =>
    existsSync(logFile)
      ? readFileSync(logFile, "utf8")
          .split("\n")
          .filter((l) => l !== "")
          .map((l) => JSON.parse(l) as { level: string; msg: string; role: string })
      : [];
  await waitFor(() => screen.includes("picluster is up"), "the banner", 15_000);
  // Three alive records: two whole intervals after the banner, so any
  // console line written for them has reached the terminal as well.
  await waitFor(
    () => records().filter((r) => r.msg === "alive").length >= 3,
    "three alive records in the log file",
    15_000,
  );
  const lines = screen.split(/\r?\n/).filter((l) => l.trim() !== "");
  assert.match(lines[0] ?? "", /^picluster is up: http:\/\/127\.0\.0\.1:\d+\/#token=/);
  assert.ok(
    lines.some((l) => l.includes(`log: ${logFile}`)),
    `the banner says where the log is:\n${screen}`,
  );
  assert.ok(
    !/INFO|alive/.test(screen),
    `no INFO line and no alive record on the terminal:\n${screen}`,
  );
  const file = records();
  assert.ok(
    file.some((r) => r.level === "info" && r.msg === "HTTP API listening"),
    "INFO lines are in the file",
  );
  assert.ok(file.filter((r) => r.msg === "alive").length >= 3);
  child.kill("SIGTERM");
});

test("cli output - a reader that closes the pipe early (`| head -c 1`) ends the command quietly", async (t) => {
  const dir = scratch(t);
  const up = spawn(
    process.execPath,
    [BIN, "up", "--json", "--node-name", "here", "--node-data-dir", dir],
    {
      env: cleanEnv({ PICLUSTER_PRIMARY_PORT: "0", PICLUSTER_HTTP_PORT: "0" }),
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
    15_000,
    "the ready line",
  );
  const port = new URL(url).port;
  for (const args of [["nodes", "--json"], ["status"], ["--help"]]) {
    const r = await cli(t, [...args, "--http-port", port, "--node-data-dir", dir], {
      closeStdout: true,
    });
    assert.equal(r.err, "", `${args.join(" ")}: nothing on stderr`);
    assert.equal(r.code, 0, `${args.join(" ")}: exit 0`);
  }
});

test("cli roles - a port in use names its key, its flag and what holds it", async (t) => {
  const http = await holdPort(t);
  const dir = scratch(t);
  const r = await cli(t, [
    "primary",
    "--node-data-dir",
    dir,
    "--primary-port",
    "0",
    "--http-port",
    String(http),
  ]);
  assert.equal(r.code, 1);
  assert.match(
    r.err,
    new RegExp(
      `^error: cannot start the primary: port ${http} on 127\\.0\\.0\\.1 is already in use by pid ${process.pid} \\([^)]*node[^)]*\\); it is \\[http\\] port: choose another with --http-port PORT \\(or in the config file\\)$`,
      "m",
    ),
  );

  const agents = await holdPort(t);
  const up = await cli(t, [
    "up",
    "--node-data-dir",
    scratch(t),
    "--primary-bind-host",
    "127.0.0.1",
    "--primary-port",
    String(agents),
    "--http-port",
    "0",
  ]);
  assert.equal(up.code, 1);
  assert.match(
    up.err,
    new RegExp(
      `^error: cannot start the primary: port ${agents} on 127\\.0\\.0\\.1 is already in use by pid ${process.pid} .*; it is \\[primary\\] port: choose another with --primary-port PORT`,
      "m",
    ),
  );
});
