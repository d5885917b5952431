import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { waitFor } from "@picluster/common/testing";
import { joinCommand, joinSettings, sha256 } from "@picluster/primary";
import { scratchDir, startPrimary } from "./support/cluster.js";

const BUNDLE = new URL("../../../cli/dist/agent-bundle.cjs", import.meta.url).pathname;

function runSh(
  args: string[],
  /** Written to the script's standard input, which then ends. */
  input = "",
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn("sh", args, { stdio: ["pipe", "pipe", "pipe"] });
    child.stdin.end(input);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return typeof address === "object" && address !== null ? address.port : 0;
}

test("join - one pasted command: the primary serves a checked script and agent; installed into a scratch directory (service step dry-run), the agent joins", async (t) => {
  const httpPort = await freePort();
  const p = await startPrimary(
    t,
    { "http.port": String(httpPort), "primary.advertise_host": "127.0.0.1" },
    undefined,
    BUNDLE,
  );
  const token = p.addNode("pi-joined");
  const settings = joinSettings(p.config, p.port, sha256(readFileSync(BUNDLE)));
  const line = joinCommand(settings, token, "pi-joined");
  const base = `http://127.0.0.1:${httpPort}`;
  assert.match(
    line,
    new RegExp(
      `^curl -fsSL ${base}/join\\.sh -o /tmp/picluster-join\\.sh && echo "[0-9a-f]{64}  /tmp/picluster-join\\.sh" \\| sha256sum -c --quiet && printf '%s\\\\n' 'pcj1\\.\\S+' \\| sudo sh /tmp/picluster-join\\.sh --token-file - --name pi-joined$`,
    ),
  );

  // What the pasted line does, step by step, into a scratch directory.
  const dir = scratchDir(t);
  const script = await (await fetch(`${base}/join.sh`)).text();
  assert.equal(
    line.match(/"([0-9a-f]{64}) /)?.[1],
    sha256(script),
    "the pasted line pins the script the primary serves",
  );
  const scriptFile = join(dir, "join.sh");
  writeFileSync(scriptFile, script);
  const prefix = join(dir, "opt");
  const config = join(dir, "etc", "picluster.ini");
  // Asynchronously: the primary answering the script's download runs in this process.
  // The token on standard input, as the pasted line hands it over: on no command line.
  const run = await runSh(
    [
      scriptFile,
      "--token-file",
      "-",
      "--name",
      "pi-joined",
      "--prefix",
      prefix,
      "--config",
      config,
      "--data-dir",
      join(dir, "data"),
      "--dry-run",
    ],
    `${token}\n`,
  );
  assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
  assert.equal(sha256(readFileSync(join(prefix, "picluster-agent.cjs"))), settings.bundleSha256);
  const ini = readFileSync(config, "utf8");
  assert.match(ini, /^primary_host = 127\.0\.0\.1$/m);
  assert.match(ini, new RegExp(`^primary_port = ${p.port}$`, "m"));
  // The config holds no secret: the token is in a file of its own, private to its owner.
  const tokenFile = join(dir, "etc", "join-token");
  assert.match(ini, new RegExp(`^join_token_file = ${tokenFile}$`, "m"));
  assert.doesNotMatch(ini, /pcj1\./);
  assert.equal(readFileSync(tokenFile, "utf8"), `${token}\n`);
  assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
  assert.match(
    run.stdout,
    new RegExp(
      `^ExecStart=\\S+node --lite-mode ${prefix}/picluster-agent\\.cjs agent --config ${config}$`,
      "m",
    ),
  );
  assert.match(run.stdout, /^systemctl enable --now picluster-agent\.service/m);

  // A tampered download is refused.
  writeFileSync(
    join(dir, "bad.sh"),
    script.replace(/^BUNDLE_SHA256=.*$/m, `BUNDLE_SHA256=${"0".repeat(64)}`),
  );
  const bad = await runSh([
    join(dir, "bad.sh"),
    "--token",
    token,
    "--prefix",
    join(dir, "bad"),
    "--config",
    join(dir, "bad.ini"),
    "--dry-run",
  ]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /the agent download does not match its checksum; not installed/);

  // The installed agent, run as the service would run it, joins the primary.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("PICLUSTER_")),
  );
  const agent = spawn(
    process.execPath,
    [join(prefix, "picluster-agent.cjs"), "agent", "--config", config],
    {
      env: { ...env, PICLUSTER_LOG_FORMAT: "json" },
      stdio: "ignore",
    },
  );
  t.after(() => {
    agent.kill("SIGKILL");
  });
  await waitFor(
    () => p.primary.registry.list().some((n) => n.name === "pi-joined" && n.state === "alive"),
    "the installed agent joined",
    10_000,
  );
  agent.kill("SIGTERM");
  await waitFor(
    () => p.primary.registry.list().some((n) => n.name === "pi-joined" && n.state === "left"),
    "it said bye",
    3_000,
  );
});
