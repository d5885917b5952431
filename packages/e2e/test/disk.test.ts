/**
 * Bad days for the primary's disk: its data directory on a small tmpfs that
 * the test fills to ENOSPC, or mounts read-only. The primary is the real
 * `picluster up` in a child process (so that an exit is seen as one), the
 * agents are real and in this process (so that their outboxes can be read).
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { test } from "node:test";
import {
  JOIN_IDENTITY_PREFIX,
  type MessageMap,
  parseJoinToken,
  systemClock,
} from "@picluster/common";
import { deadline, fillDisk, mountTmpfs, remount, waitFor } from "@picluster/common/testing";
import { type ClusterEvent, CredentialStore } from "@picluster/primary";
import Database from "better-sqlite3";
import { launch, NO_BROWSER, until } from "./support/browser.js";
import {
  httpPort,
  ScriptedPeer,
  startAgent,
  startPrimary,
  type TestAgent,
} from "./support/cluster.js";
import { startReceiver } from "./support/http-receiver.js";

const BIN = new URL("../../../cli/bin/picluster.js", import.meta.url).pathname;
const AGENTS = 3;

function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("PICLUSTER_")),
  );
}

interface Up {
  child: ChildProcess;
  /** Every line it wrote to stderr (its console log, JSON), parsed when it was JSON. */
  stderr: Array<Record<string, unknown>>;
  exited: Promise<number | null>;
  ready: Promise<{ url: string; agentPort: number }>;
}

/** `picluster up` on `dataDir`, logging JSON to its console and to `dataDir/log`. */
function spawnUp(t: { after(fn: () => void): void }, dataDir: string): Up {
  const child = spawn(
    process.execPath,
    [
      BIN,
      "up",
      "--json",
      "--node-data-dir",
      dataDir,
      "--http-port",
      "0",
      "--primary-port",
      "0",
      "--primary-bind-host",
      "127.0.0.1",
      "--primary-vitals-interval",
      "1s",
      // One scripted peer sends hundreds of bad frames: each is a log line.
      "--primary-strike-limit",
      "1000",
      "--log-format",
      "json",
      "--log-rotate-size",
      "16k",
      "--log-liveness-interval",
      "1s",
    ],
    { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] },
  );
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  const stderr: Array<Record<string, unknown>> = [];
  if (child.stderr !== null)
    createInterface({ input: child.stderr }).on("line", (line) => {
      try {
        stderr.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        stderr.push({ text: line });
      }
    });
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  const ready = new Promise<{ url: string; agentPort: number }>((resolve, reject) => {
    if (child.stdout === null) return reject(new Error("no stdout"));
    createInterface({ input: child.stdout }).on("line", (line) => {
      const r = JSON.parse(line) as { ready?: boolean; url: string; agentPort: number };
      if (r.ready === true) resolve(r);
    });
    void exited.then((code) => reject(new Error(`picluster up exited early (${code})`)));
  });
  return { child, stderr, exited, ready: deadline(ready, 15_000, "picluster up ready") };
}

interface StoreStatus {
  ok: boolean;
  cause?: string;
}

async function storeStatus(url: string): Promise<StoreStatus | undefined> {
  const res = await fetch(new URL("/api/cluster", url));
  const body = (await res.json()) as { primary?: { store?: StoreStatus } };
  return body.primary?.store;
}

/** Every line of the primary's log files (current and rotated), parsed. */
function logFileRecords(dataDir: string): Array<Record<string, unknown>> {
  const dir = join(dataDir, "log");
  const out: Array<Record<string, unknown>> = [];
  for (const f of readdirSync(dir).filter((f) => f.startsWith("primary.log"))) {
    for (const line of readFileSync(join(dir, f), "utf8").split("\n")) {
      if (line.startsWith("{")) {
        try {
          out.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // A line torn by the full disk; the one after it starts on a line of its own.
        }
      }
    }
  }
  return out;
}

test("disk - a full data disk: the primary keeps running, serves and says so, acknowledges nothing it did not store, and resumes by itself with every sample stored once", async (t) => {
  const mount = mountTmpfs(t, "6m");
  if ("skip" in mount) return t.skip(mount.skip);
  const dataDir = mount.dir;
  const up = spawnUp(t, dataDir);
  const { url, agentPort } = await up.ready;

  const dbFile = join(dataDir, "picluster.db");
  const credentials = new CredentialStore(dbFile, systemClock).load();
  t.after(() => credentials.close());
  const tokens = Array.from({ length: AGENTS + 1 }, (_, i) => credentials.addToken(`disk-${i}`));
  const agents: TestAgent[] = Array.from({ length: AGENTS }, (_, i) =>
    startAgent(t, { port: agentPort, addNode: () => tokens[i] as string }, `disk-${i}`, {
      "agent.reconnect_max": "1s",
    }),
  );
  await waitFor(
    () => agents.every((a) => a.agent.link.state === "ready" && a.agent.outbox.ackedUpTo >= 2),
    "agents connected, samples acknowledged",
    20_000,
  );
  // A node that sends bad frames on demand: each one is a warning in the primary's log.
  const token = parseJoinToken(tokens[AGENTS] as string);
  const peer = await ScriptedPeer.connect(t, agentPort, {
    identity: `${JOIN_IDENTITY_PREFIX}${token.id}`,
    key: token.secret,
  });
  peer.send({
    v: 1,
    type: "hello",
    ts: Date.now(),
    payload: {
      nodeId: "disk-noisy",
      name: "disk-3",
      version: "0.1.0-test",
      protocols: [1],
      labels: {},
    },
  });
  await peer.next("welcome", 5_000);
  let errorsSeen = 0;
  const logLines = async (count: number) => {
    for (let i = 0; i < count; i++)
      peer.writeRaw('{"v":1,"type":"no.such.type","ts":0,"payload":{}}\n');
    errorsSeen += count;
    await waitFor(
      () => peer.received.filter((e) => e.type === "error").length >= errorsSeen,
      `the primary answered ${errorsSeen} bad frames (and logged each)`,
      30_000,
    ).catch((err: unknown) => {
      throw new Error(
        `${String(err)}; got ${peer.received.filter((e) => e.type === "error").length}, peer closed ${peer.closed}, primary exit ${up.child.exitCode}; last: ${JSON.stringify(up.stderr.filter((r) => r.text !== undefined).slice(-25))}`,
      );
    });
  };

  const reader = new Database(dbFile, { readonly: true, fileMustExist: true });
  t.after(() => reader.close());
  const storedMax = (nodeId: string) =>
    (
      reader.prepare("SELECT max(seq) AS s FROM vitals_raw WHERE node_id = ?").get(nodeId) as {
        s: number | null;
      }
    ).s ?? 0;

  const filler = join(dataDir, "filler");
  const filled = fillDisk(filler);
  t.diagnostic(`filled the data disk with ${filled} bytes`);

  // Every acknowledgement while the disk is full is of a stored sample.
  const ackedNotStored: string[] = [];
  const checkAcks = () => {
    for (const a of agents) {
      const stored = storedMax(a.agent.id);
      if (a.agent.outbox.ackedUpTo > stored)
        ackedNotStored.push(`${a.agent.id}: acked ${a.agent.outbox.ackedUpTo}, stored ${stored}`);
    }
  };
  await waitFor(
    async () => {
      checkAcks();
      return (await storeStatus(url))?.ok === false;
    },
    "the API says the primary cannot store",
    15_000,
    100,
  );
  assert.equal((await storeStatus(url))?.cause, "disk_full");

  // Well past where the log file needs a new page and rotates (16 KiB): 600 warnings, ~150 KiB.
  await logLines(300);
  await logLines(300);
  const unacked = agents.map((a) => a.agent.outbox.size);
  await waitFor(
    () => {
      checkAcks();
      return agents.every((a, i) => a.agent.outbox.size >= (unacked[i] ?? 0) + 4);
    },
    "agents keep sampling (four more each) while nothing is acknowledged",
    20_000,
    100,
  );
  assert.equal(up.child.exitCode, null, "the primary is still running");
  assert.deepEqual(ackedNotStored, [], "nothing acknowledged that is not stored");
  const nodes = (await (await fetch(new URL("/api/nodes", url))).json()) as {
    nodes: Array<{ name: string; state: string }>;
  };
  for (let i = 0; i < AGENTS; i++)
    assert.equal(
      nodes.nodes.find((n) => n.name === `disk-${i}`)?.state,
      "alive",
      `disk-${i} is alive in the live state`,
    );
  const metrics = await (await fetch(new URL("/metrics", url))).text();
  assert.match(metrics, /^picluster_primary_store_ok 0$/m);
  const home = await fetch(url);
  assert.equal(home.status, 200, "the dashboard is served");
  assert.ok(
    up.stderr.some((r) => r.msg === "the log file cannot be written; logging to the console only"),
    "the console says the log file is not being written",
  );

  rmSync(filler);
  await waitFor(
    async () => (await storeStatus(url))?.ok === true,
    "the API says the primary stores again",
    20_000,
    100,
  );
  await waitFor(
    () => agents.every((a) => a.agent.link.state === "ready" && a.agent.outbox.size === 0),
    "every agent's outbox replayed and acknowledged",
    30_000,
    100,
  );
  // The log file is retried every 10 s; the line about what it missed comes with the next one.
  await waitFor(
    () =>
      logFileRecords(dataDir).some(
        (r) => r.msg === "log lines were not written to this file" && Number(r.dropped) > 0,
      ),
    "the log file says how many lines it missed",
    30_000,
    200,
  );
  await logLines(10);
  assert.equal(up.child.exitCode, null, "the primary is still running");

  for (const a of agents) await a.stop();
  peer.socket.destroy();
  up.child.kill("SIGTERM");
  assert.equal(await deadline(up.exited, 5_000, "picluster up stops"), 0);

  const db = new Database(dbFile, { readonly: true });
  t.after(() => db.close());
  let total = 0;
  for (const a of agents) {
    const rows = db
      .prepare("SELECT seq FROM vitals_raw WHERE node_id = ? ORDER BY seq")
      .all(a.agent.id) as Array<{ seq: number }>;
    const seqs = rows.map((r) => r.seq);
    const acked = a.agent.outbox.ackedUpTo;
    const pending = a.agent.outbox.pending().map((e) => e.seq);
    assert.equal(a.agent.outbox.dropped, 0, `${a.agent.id}: the agent dropped nothing`);
    // The agent sent 1..acked (acknowledged) and `pending` (sent, not acknowledged when it stopped).
    const expected = Array.from({ length: acked }, (_, i) => i + 1);
    assert.deepEqual(
      seqs.slice(0, acked),
      expected,
      `${a.agent.id}: every acknowledged sample stored once`,
    );
    assert.ok(
      seqs.slice(acked).every((s) => pending.includes(s)),
      `${a.agent.id}: nothing stored the agent did not send`,
    );
    total += seqs.length;
  }
  // The local agent of `picluster up` lives through it too: its samples have no gap.
  const local = db
    .prepare(
      "SELECT count(*) AS n, min(seq) AS lo, max(seq) AS hi FROM vitals_raw WHERE node_id NOT IN (?, ?, ?, 'disk-noisy')",
    )
    .get(...agents.map((a) => a.agent.id)) as { n: number; lo: number; hi: number };
  assert.equal(local.n, local.hi - local.lo + 1, "the local agent's samples have no gap");
  assert.equal(local.lo, 1);
  const events = db
    .prepare("SELECT kind FROM events WHERE kind LIKE 'primary.%' ORDER BY id")
    .all() as Array<{
    kind: string;
  }>;
  assert.deepEqual(
    events.map((e) => e.kind),
    ["primary.store_failed", "primary.store_ok"],
    "the outage is in the stored events",
  );
  t.diagnostic(
    `${total} samples from ${AGENTS} agents stored once each; ${local.n} from the local agent`,
  );
});

const SAMPLE: MessageMap["vitals"] = {
  cpu: { total: 5, perCore: [5] },
  load: [0, 0, 0],
  temps: [],
  rebootRequired: false,
  memory: { totalBytes: 1, usedBytes: 0, availableBytes: 1 },
  swap: { totalBytes: 0, usedBytes: 0 },
  disks: [],
  diskIo: { readBps: 0, writeBps: 0 },
  net: [],
  uptimeS: 1,
  procs: 1,
};

test("disk - a sample the full disk refused: nothing on its connection is acknowledged after it, the node stays alive, the primary closes the connection once it stores again and the replay is stored once; the alert goes out and resolves", async (t) => {
  const mount = mountTmpfs(t, "6m");
  if ("skip" in mount) return t.skip(mount.skip);
  const rx = await startReceiver(t);
  const p = await startPrimary(
    t,
    // Silence is not what this is about: the peer sends no heartbeats.
    { "primary.suspect_after": "60s", "primary.dead_after": "120s" },
    join(mount.dir, "data"),
    undefined,
    `[channel.hook]\ntype = webhook\nurl = ${rx.url}/hook\n\n[alert.primary_store]\nfor = 0\n`,
  );
  const nodeId = "d15cf011d15cf011d15cf011d15cf011";
  const events: ClusterEvent[] = [];
  p.primary.events.on((e) => {
    if (e.kind === "node.state" || e.kind.startsWith("primary.")) events.push(e);
  });
  const peer = await ScriptedPeer.join(t, p, "pi-disk", nodeId);
  const credential = await peer.next("credential", 2_000);
  if (credential.type !== "credential") throw new Error("not a credential");
  const vitals = (seq: number, cpu: number) =>
    peer.send({
      v: 1,
      type: "vitals",
      ts: Date.now(),
      seq,
      payload: { ...SAMPLE, cpu: { total: cpu, perCore: [cpu] } },
    });
  const liveCpu = (cpu: number) =>
    waitFor(
      () => p.primary.registry.get(nodeId)?.vitals?.cpu.total === cpu,
      `the live state shows cpu ${cpu}`,
      5_000,
    );
  vitals(1, 1);
  await peer.next("ack", 2_000, (e) => e.type === "ack" && e.payload.seq === 1);

  const filler = join(mount.dir, "filler");
  fillDisk(filler);
  vitals(2, 2);
  const refused = await peer.next("error", 5_000);
  assert.equal(refused.type === "error" && refused.payload.code, "E_STORE_FULL");
  vitals(3, 3);
  vitals(4, 4);
  await liveCpu(4);
  assert.equal(p.primary.store.health.ok, false);
  await waitFor(
    () => rx.requests.some((r) => r.body.includes('"primary_store"')),
    "the primary_store alert is delivered",
    5_000,
  );
  const firing = JSON.parse(
    rx.requests.find((r) => r.body.includes('"primary_store"'))?.body ?? "{}",
  ) as { status: string; severity: string; title: string };
  assert.deepEqual(
    [firing.status, firing.severity, firing.title],
    ["firing", "critical", "The primary's disk is full: nothing new is being stored"],
  );

  rmSync(filler);
  await peer.closedWithin(15_000);
  assert.deepEqual(
    peer.received.filter((e) => e.type === "ack"),
    [],
    "no acknowledgement after the refused sample, not even of samples stored meanwhile",
  );
  assert.equal(peer.received.filter((e) => e.type === "error").length, 0, "told once");
  assert.equal(p.primary.registry.get(nodeId)?.state, "alive", "the node is not taken for down");
  await waitFor(
    () => rx.requests.filter((r) => r.body.includes('"primary_store"')).length === 2,
    "the alert resolves",
    5_000,
  );

  // The agent's next connection: welcome says what is stored, the rest is sent again.
  const again = await ScriptedPeer.connect(t, p.port, {
    identity: credential.payload.identity,
    key: Buffer.from(credential.payload.key, "base64url"),
  });
  again.send({
    v: 1,
    type: "hello",
    ts: Date.now(),
    payload: { nodeId, name: "pi-disk", version: "0.1.0-test", protocols: [1], labels: {} },
  });
  const welcome = await again.next("welcome", 5_000);
  assert.equal(welcome.type === "welcome" && welcome.payload.lastSeq, 1, "only seq 1 is stored");
  for (const seq of [2, 3, 4, 5])
    again.send({ v: 1, type: "vitals", ts: Date.now(), seq, payload: SAMPLE });
  await again.next("ack", 5_000, (e) => e.type === "ack" && e.payload.seq === 5);
  const db = new Database(join(mount.dir, "data", "picluster.db"), { readonly: true });
  t.after(() => db.close());
  assert.deepEqual(
    (
      db.prepare("SELECT seq FROM vitals_raw WHERE node_id = ? ORDER BY seq").all(nodeId) as Array<{
        seq: number;
      }>
    ).map((r) => r.seq),
    [1, 2, 3, 4, 5],
  );
  assert.deepEqual(
    events.map((e) => (e.kind === "node.state" ? `${e.kind} ${e.to}` : e.kind)),
    ["node.state alive", "primary.store_failed", "primary.store_ok"],
    "never down; the outage in the events",
  );
});

test("disk - the dashboard says the primary's disk is full, stays live meanwhile (a node going down shows at once), and drops the banner when it stores again", {
  skip: NO_BROWSER,
}, async (t) => {
  const mount = mountTmpfs(t, "6m");
  if ("skip" in mount) return t.skip(mount.skip);
  const p = await startPrimary(
    t,
    { "primary.suspect_after": "60s", "primary.dead_after": "120s" },
    join(mount.dir, "data"),
  );
  const steady = await ScriptedPeer.join(t, p, "pi-steady", "5eadfa575eadfa57");
  const doomed = await ScriptedPeer.join(t, p, "pi-doomed", "d00med00d00med00");
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(err.message));
  await page.goto(`http://127.0.0.1:${httpPort(p)}/`);
  await until(page, 'document.querySelectorAll("[data-node]").length === 2');
  await until(
    page,
    `document.querySelector('[data-testid="stream-status"]')?.textContent === "live"`,
  );
  assert.equal(await page.$('[data-testid="store-banner"]'), null, "no banner while it stores");

  const filler = join(mount.dir, "filler");
  fillDisk(filler);
  // Something to store, so that a commit fails: the steady node's sample.
  steady.send({ v: 1, type: "vitals", ts: Date.now(), seq: 1, payload: SAMPLE });
  await until(page, `document.querySelector('[data-testid="store-banner"]') !== null`);
  assert.match(
    (await page.textContent('[data-testid="store-banner"]')) ?? "",
    /^The primary's disk is full: nothing new is being stored/,
  );
  doomed.socket.destroy();
  await until(page, `document.querySelector('[data-node="pi-doomed"]')?.dataset.state === "down"`);

  rmSync(filler);
  await until(page, `document.querySelector('[data-testid="store-banner"]') === null`, 15_000);
  assert.deepEqual(errors, [], "no script errors");
  assert.ok(
    p.primary.store.events({ kind: "node.state", limit: 10 }).some((e) => e.data.to === "down"),
    "the down told live is stored once the disk has room",
  );
});

/** `picluster up` or `picluster primary` on `dataDir`, to its exit. */
async function runRole(
  role: "up" | "primary",
  dataDir: string,
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const child = spawn(
    process.execPath,
    [BIN, role, "--node-data-dir", dataDir, "--http-port", "0", "--primary-port", "0"],
    { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  let stdout = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdout?.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  const code = await deadline(
    new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c))),
    15_000,
    `picluster ${role} exits`,
  ).finally(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  return { code, stderr, stdout };
}

test("disk - a read-only data directory: `picluster up` and `picluster primary` say so in one sentence and exit non-zero, fresh or already used", async (t) => {
  const mount = mountTmpfs(t, "4m");
  if ("skip" in mount) return t.skip(mount.skip);
  const fresh = join(mount.dir, "fresh");
  mkdirSync(fresh);
  // One that a primary has used: the token, the database and the log exist.
  const used = join(mount.dir, "used");
  const first = spawnUp(t, used);
  const { url } = await first.ready;
  // Up for real (its own node reported) before it is stopped.
  await waitFor(
    async () => {
      const res = await fetch(new URL("/api/nodes", url));
      const body = (await res.json()) as { nodes: Array<{ state: string }> };
      return body.nodes.some((n) => n.state === "alive");
    },
    "the first run's own node is alive",
    15_000,
    100,
  );
  first.child.kill("SIGTERM");
  assert.equal(await deadline(first.exited, 5_000, "first run stops"), 0);
  remount(mount.dir, "ro");

  for (const [role, dir] of [
    ["up", fresh],
    ["up", used],
    ["primary", used],
  ] as const) {
    const run = await runRole(role, dir);
    assert.notEqual(run.code, 0, `${role} on ${dir}: a non-zero exit`);
    assert.equal(run.stdout, "", `${role} on ${dir}: nothing claims to be up`);
    assert.equal(
      run.stderr,
      `error: the data directory ${dir} is read-only: picluster needs to write its database and token there; fix the mount or set [node] data_dir\n`,
      `${role} on ${dir}: one sentence, no stack trace`,
    );
  }
});
