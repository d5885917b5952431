import assert from "node:assert/strict";
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from "node:child_process";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { deadline, scratchDir } from "@picluster/common/testing";

const BIN = new URL("../../bin/picluster.js", import.meta.url).pathname;

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("PICLUSTER_")),
  );
  return { ...env, ...extra };
}

/** A running picluster process whose stderr JSON log lines are parsed as they come. */
class Proc {
  readonly records: Array<Record<string, unknown>> = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private buffer = "";
  private readonly waiters = new Set<() => void>();

  constructor(readonly child: ChildProcessWithoutNullStreams) {
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (text: string) => {
      this.buffer += text;
      const lines = this.buffer.split("\n");
      this.buffer = lines.pop() ?? "";
      for (const line of lines) {
        if (line.startsWith("{")) this.records.push(JSON.parse(line) as Record<string, unknown>);
      }
      for (const w of this.waiters) w();
    });
    this.exited = new Promise((resolve) =>
      child.once("exit", (code, signal) => resolve({ code, signal })),
    );
  }

  /** The first log record matching, waiting up to `within` ms. */
  log(
    where: (r: Record<string, unknown>) => boolean,
    within: number,
    what: string,
  ): Promise<Record<string, unknown>> {
    const found = () => this.records.find(where);
    return deadline(
      new Promise((resolve) => {
        const check = () => {
          const r = found();
          if (r !== undefined) {
            this.waiters.delete(check);
            resolve(r);
          }
        };
        this.waiters.add(check);
        check();
      }),
      within,
      what,
    );
  }
}

function start(
  t: { after(fn: () => void): void },
  args: string[],
  env: Record<string, string>,
): Proc {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: cleanEnv(env),
    stdio: ["pipe", "pipe", "pipe"],
  });
  t.after(() => {
    child.kill("SIGKILL");
  });
  return new Proc(child);
}

test("cli roles - init, node add, a primary and a joined agent; SIGTERM makes the agent say bye and exit 0 within 2 s", async (t) => {
  const dir = scratchDir(t, "picluster-roles-");
  const env = {
    PICLUSTER_NODE_DATA_DIR: join(dir, "primary"),
    PICLUSTER_LOG_FORMAT: "json",
    PICLUSTER_PRIMARY_PORT: "0",
    PICLUSTER_HTTP_PORT: "0",
    PICLUSTER_PRIMARY_BIND_HOST: "127.0.0.1",
  };
  const init = spawnSync(
    process.execPath,
    [BIN, "init", "--json", "--config", join(dir, "primary.ini")],
    { env: cleanEnv(env), encoding: "utf8" },
  );
  assert.equal(init.status, 0, init.stderr);
  const initResult = JSON.parse(init.stdout) as { credentials: string; wroteConfig: boolean };
  assert.equal(initResult.wroteConfig, true);
  assert.equal(statSync(initResult.credentials).mode & 0o777, 0o600);

  const added = spawnSync(process.execPath, [BIN, "node", "add", "pi-cli", "--json"], {
    env: cleanEnv(env),
    encoding: "utf8",
  });
  assert.equal(added.status, 0, added.stderr);
  const { token, command } = JSON.parse(added.stdout) as { token: string; command: string };
  assert.match(token, /^pcj1\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}$/);
  assert.match(
    command,
    /^printf '%s\\n' pcj1\.\S+ \| picluster agent --agent-primary-host \S+ --agent-primary-port 0 --agent-join-token-file -$/,
  );
  const again = spawnSync(process.execPath, [BIN, "node", "add", "bad name"], {
    env: cleanEnv(env),
    encoding: "utf8",
  });
  assert.equal(again.status, 1);
  assert.match(again.stderr, /^error: E_BAD_NAME: node name "bad name"/);

  const primary = start(t, ["primary"], env);
  const listening = await primary.log(
    (r) => r.msg === "listening for agents",
    10_000,
    "primary listening",
  );
  const port = String(listening.port);

  const agentEnv = {
    PICLUSTER_NODE_DATA_DIR: join(dir, "agent"),
    PICLUSTER_LOG_FORMAT: "json",
    PICLUSTER_AGENT_PRIMARY_HOST: "127.0.0.1",
    PICLUSTER_AGENT_PRIMARY_PORT: port,
    PICLUSTER_NODE_NAME: "pi-cli",
  };
  // The token on standard input, as `node add` prints it: never in the agent's arguments.
  const agent = start(t, ["agent", "--agent-join-token-file", "-"], agentEnv);
  agent.child.stdin.end(`${token}\n`);
  await agent.log((r) => r.msg === "connected to the primary", 10_000, "agent connected");
  await primary.log(
    (r) => r.msg === "node state" && r.to === "alive" && r.node === "pi-cli",
    5_000,
    "primary sees the node alive",
  );
  assert.equal(
    statSync(join(dir, "agent", "credential.json")).mode & 0o777,
    0o600,
    "the credential is private",
  );

  const t0 = Date.now();
  agent.child.kill("SIGTERM");
  const { code } = await deadline(agent.exited, 2_000, "agent exits after SIGTERM");
  assert.equal(code, 0);
  t.diagnostic(`agent exited ${Date.now() - t0} ms after SIGTERM`);
  await primary.log(
    (r) => r.msg === "node state" && r.to === "left" && r.node === "pi-cli",
    2_000,
    "primary sees the node left",
  );

  // Restarted without the token: the saved credential is enough. Then killed hard: down.
  const noToken = agentEnv;
  const again2 = start(t, ["agent"], noToken);
  await primary.log(
    (r) => r.msg === "node state" && r.to === "alive" && r.reason === "reconnected",
    10_000,
    "node back with its own credential",
  );
  again2.child.kill("SIGKILL");
  await primary.log(
    (r) => r.msg === "node state" && r.to === "down" && r.node === "pi-cli",
    2_000,
    "killed node is down",
  );

  // Revoked: the running primary refuses it from then on.
  const revoked = spawnSync(process.execPath, [BIN, "node", "revoke", "pi-cli", "--json"], {
    env: cleanEnv(env),
    encoding: "utf8",
  });
  assert.equal(revoked.status, 0, revoked.stderr);
  assert.equal((JSON.parse(revoked.stdout) as { revoked: string[] }).revoked.length, 1);
  const third = start(t, ["agent"], { ...noToken, PICLUSTER_AGENT_RECONNECT_MAX: "1s" });
  await third.log(
    (r) =>
      r.msg === "cannot reach the primary" &&
      String(r.err).includes("refused this node's credential"),
    10_000,
    "agent told it is refused",
  );
  third.child.kill("SIGTERM");
  await deadline(third.exited, 2_000, "refused agent exits on SIGTERM");

  primary.child.kill("SIGINT");
  assert.equal((await deadline(primary.exited, 2_000, "primary exits on SIGINT")).code, 0);
});

test("cli roles - an agent with no credential and no token explains what to do and exits 2", (t) => {
  const dir = scratchDir(t, "picluster-roles-");
  const r = spawnSync(process.execPath, [BIN, "agent"], {
    env: cleanEnv({ PICLUSTER_NODE_DATA_DIR: dir, PICLUSTER_LOG_FORMAT: "json" }),
    encoding: "utf8",
    timeout: 10_000,
  });
  assert.equal(r.status, 2);
  assert.match(
    r.stderr,
    /error: E_NO_CREDENTIAL: no credential at .*credential\.json and no join token: on the primary run `picluster node add NAME`/,
  );
  assert.doesNotMatch(r.stderr, /^\s+at /m);
});

test("cli roles - a join token file that cannot be read, is empty or comes with a token too stops the agent with exit 2, naming the file", (t) => {
  const dir = scratchDir(t, "picluster-roles-");
  const agent = (args: string[], extra: Record<string, string> = {}, input = "") =>
    spawnSync(process.execPath, [BIN, "agent", ...args], {
      env: cleanEnv({ PICLUSTER_NODE_DATA_DIR: dir, PICLUSTER_LOG_FORMAT: "json", ...extra }),
      encoding: "utf8",
      input,
      timeout: 10_000,
    });
  const missing = join(dir, "no-such-token");
  const r1 = agent(["--agent-join-token-file", missing]);
  assert.equal(r1.status, 2);
  assert.match(
    r1.stderr,
    new RegExp(`error: E_JOIN_TOKEN_FILE: cannot read the join token from ${missing}: ENOENT`),
  );
  const empty = join(dir, "empty-token");
  writeFileSync(empty, "\n");
  const r2 = agent(["--agent-join-token-file", empty]);
  assert.equal(r2.status, 2);
  assert.match(
    r2.stderr,
    new RegExp(`error: E_JOIN_TOKEN_FILE: no join token in ${empty}: it is empty`),
  );
  const r3 = agent(["--agent-join-token-file", "-"], {}, "not a token\n");
  assert.equal(r3.status, 2);
  assert.match(
    r3.stderr,
    /error: E_JOIN_TOKEN_FILE: standard input \(--agent-join-token-file -\): join token: expected the pcj1/,
  );
  const r4 = agent(["--agent-join-token-file", empty], { PICLUSTER_AGENT_JOIN_TOKEN: "pcj1.x.y" });
  assert.equal(r4.status, 2);
  assert.match(
    r4.stderr,
    /flag --agent-join-token-file: \[agent\] join_token_file: set either it or join_token \(from env PICLUSTER_AGENT_JOIN_TOKEN\), not both/,
  );
});

test("cli up - a primary and this machine's agent with no config at all: ready line, the node alive over the API, Ctrl-C exits 0", async (t) => {
  const dir = scratchDir(t, "picluster-up-");
  const up = start(t, ["up", "--json"], {
    PICLUSTER_NODE_DATA_DIR: dir,
    PICLUSTER_PRIMARY_PORT: "0",
    PICLUSTER_HTTP_PORT: "0",
    PICLUSTER_LOG_FORMAT: "json",
  });
  up.child.stdout.setEncoding("utf8");
  const ready = await deadline(
    new Promise<{ url: string; tokenFile: string; ready: boolean }>((resolve) => {
      let out = "";
      up.child.stdout.on("data", (text: string) => {
        out += text;
        const line = out.split("\n").find((l) => l.startsWith("{"));
        if (line !== undefined)
          resolve(JSON.parse(line) as { url: string; tokenFile: string; ready: boolean });
      });
    }),
    10_000,
    "ready line",
  );
  assert.equal(ready.ready, true);
  assert.match(ready.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const alive = async () => {
    const body = (await (await fetch(`${ready.url}api/cluster`)).json()) as {
      states: { alive: number };
    };
    return body.states.alive;
  };
  await deadline(
    (async () => {
      while ((await alive()) !== 1) await new Promise((r) => setImmediate(r));
    })(),
    5_000,
    "the local node alive",
  );
  const page = await (await fetch(ready.url)).text();
  assert.match(page, /<title>picluster<\/title>/);

  // No [http] token configured: up made one, kept 0600 in the data dir, and
  // says where (captured output never carries the token itself).
  assert.equal(ready.tokenFile, join(dir, "http-token"));
  assert.doesNotMatch(JSON.stringify(ready), /#token=/);
  const token = readFileSync(join(dir, "http-token"), "utf8").trim();
  assert.match(token, /^[A-Za-z0-9_-]{32,}$/);
  assert.equal(statSync(join(dir, "http-token")).mode & 0o777, 0o600);
  const post = (auth: Record<string, string>) =>
    fetch(`${ready.url}api/tasks`, {
      method: "POST",
      headers: { "content-type": "application/json", ...auth },
      body: JSON.stringify({ task: "time", on: "all" }),
    });
  assert.equal((await post({})).status, 401);
  assert.equal((await post({ authorization: `Bearer ${token}` })).status, 202);
  const httpPort = new URL(ready.url).port;
  const run = spawnSync(process.execPath, [BIN, "run", "time", "--json"], {
    env: cleanEnv({ PICLUSTER_NODE_DATA_DIR: dir, PICLUSTER_HTTP_PORT: httpPort }),
    encoding: "utf8",
    timeout: 20_000,
  });
  assert.equal(run.status, 0, run.stderr);
  assert.equal((JSON.parse(run.stdout) as { status: string }).status, "ok");

  up.child.kill("SIGINT");
  assert.equal((await deadline(up.exited, 3_000, "up exits on SIGINT")).code, 0);
});
