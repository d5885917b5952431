/**
 * The primary's outbound heartbeat, against real HTTP receivers on
 * 127.0.0.1: the schedule and the failure handling on a manual clock, then
 * a real primary with real agents reporting its cluster.
 */
import assert from "node:assert/strict";
import { type AddressInfo, createServer } from "node:net";
import { hostname } from "node:os";
import { test } from "node:test";
import { createLogger, type Logger } from "@picluster/common";
import { ManualClock, waitFor } from "@picluster/common/testing";
import { HEARTBEAT_LOG_WINDOW_MS, Heartbeat, type HeartbeatBody } from "@picluster/primary";
import { httpPort, ScriptedPeer, startAgent, startPrimary } from "./support/cluster.js";
import { type Answer, type ReceivedRequest, startReceiver } from "./support/http-receiver.js";

type After = { after(fn: () => Promise<void> | void): void };

const MINUTE = 60_000;
/** The secret parts of a push URL, which must never reach a log. */
const SECRET_PATH = "/ping/5f1c3e2a-secret-uuid";
const SECRET_QUERY = "?status=up&token=s3cr3t";

function capturedLog(): { log: Logger; raw: string[]; lines(): Array<Record<string, unknown>> } {
  const raw: string[] = [];
  return {
    log: createLogger({ write: (line) => raw.push(line) }, { level: "debug" }),
    raw,
    lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const BODY: HeartbeatBody = {
  status: "ok",
  primary: "here",
  version: "9.9.9",
  nodes: { alive: 1, suspect: 0, down: 0, left: 0 },
  alertsFiring: 0,
  at: 0,
};

/** A heartbeat on a manual clock; `calls` has the clock's time of each POST it starts. */
async function manualHeartbeat(
  t: After,
  answer: (req: ReceivedRequest, index: number) => Answer,
  opts: { intervalMs?: number; timeoutMs?: number; method?: "post" | "get" } = {},
) {
  const rx = await startReceiver(t, answer);
  const clock = new ManualClock();
  const captured = capturedLog();
  const calls: number[] = [];
  const hb = new Heartbeat({
    url: `${rx.url}${SECRET_PATH}${SECRET_QUERY}`,
    method: opts.method ?? "post",
    intervalMs: opts.intervalMs ?? MINUTE,
    timeoutMs: opts.timeoutMs ?? 10_000,
    clock,
    log: captured.log,
    version: "9.9.9",
    body: () => ({ ...BODY, at: clock.now() }),
    fetch: (input, init) => {
      calls.push(clock.now());
      return fetch(input, init);
    },
  });
  t.after(() => hb.close());
  return { rx, clock, hb, calls, ...captured };
}

test("heartbeat - a POST at start, then exactly every interval on the clock, with the body as JSON; close stops it and leaves no timer", async (t) => {
  const { rx, clock, hb, calls } = await manualHeartbeat(t, () => ({ status: 200 }));
  const t0 = clock.now();
  hb.start();
  await waitFor(() => hb.lastSuccessAt !== undefined, "the first beat taken", 5_000);
  assert.deepEqual(calls, [t0]);
  clock.advance(MINUTE - 1);
  assert.deepEqual(calls, [t0], "nothing before the interval");
  clock.advance(1);
  assert.deepEqual(calls, [t0, t0 + MINUTE]);
  await waitFor(() => hb.lastSuccessAt === t0 + MINUTE, "the second beat taken", 5_000);
  clock.advance(MINUTE);
  assert.deepEqual(calls, [t0, t0 + MINUTE, t0 + 2 * MINUTE]);
  await waitFor(() => rx.requests.length === 3, "three beats received", 5_000);
  const req = rx.requests[2] as ReceivedRequest;
  assert.equal(req.method, "POST");
  assert.equal(req.path, `${SECRET_PATH}${SECRET_QUERY}`);
  assert.equal(req.headers["content-type"], "application/json");
  assert.deepEqual(JSON.parse(req.body), { ...BODY, at: t0 + 2 * MINUTE });

  await hb.close();
  assert.equal(clock.pending, 0, "no timer left");
  clock.advance(10 * MINUTE);
  assert.equal(calls.length, 3, "no beat after close");
});

test("heartbeat - a receiver that fails (500) or hangs is logged by host only, at most once a window, and never delays the next beat", async (t) => {
  // 0: an error; 1: never answers; 2: fine; 3 on: errors again.
  const { rx, clock, hb, calls, lines, raw } = await manualHeartbeat(
    t,
    (_req, i) =>
      i === 0
        ? { status: 500, body: `Cannot POST ${SECRET_PATH}` }
        : i === 1
          ? "hang"
          : i === 2
            ? { status: 200 }
            : { status: 503 },
    // Longer than the interval: only the next beat cuts a hanging one.
    { timeoutMs: 2 * MINUTE },
  );
  const t0 = clock.now();
  const warned = () => lines().filter((l) => l.msg === "heartbeat not delivered");
  hb.start();
  await waitFor(() => hb.failures === 1, "the 500 counted", 5_000);
  assert.equal(warned().length, 1);
  assert.equal(warned()[0]?.code, "E_HEARTBEAT_HTTP");
  assert.equal(warned()[0]?.error, `HTTP 500 from ${new URL(rx.url).host}`);
  assert.equal(warned()[0]?.host, new URL(rx.url).host);

  clock.advance(MINUTE);
  await waitFor(() => rx.requests.length >= 2, "the hanging beat received", 5_000);
  clock.advance(MINUTE);
  assert.deepEqual(calls, [t0, t0 + MINUTE, t0 + 2 * MINUTE], "the hang held nothing back");
  await waitFor(() => rx.requests[1]?.closedEarly === true, "the hanging beat cut", 5_000);
  await waitFor(() => hb.lastSuccessAt === t0 + 2 * MINUTE, "the third beat taken", 5_000);
  assert.equal(warned().length, 1, "the hang fell in the same window: counted, not logged");
  const again = lines().find((l) => l.msg === "heartbeat delivered again");
  assert.equal(again?.failedBefore, 2);

  // Failing from now on (a 503 each minute): a line when the window since
  // the last one has passed, with how many were not logged in between.
  const windowMinutes = HEARTBEAT_LOG_WINDOW_MS / MINUTE;
  for (let m = 3; m <= 2 * windowMinutes; m++) {
    clock.advance(MINUTE);
    await waitFor(() => hb.failures === m - 2, `the failure at minute ${m} counted`, 5_000);
  }
  assert.deepEqual(
    warned().map((l) => [l.failures, l.notLogged, l.error]),
    [
      [1, 0, `HTTP 500 from ${new URL(rx.url).host}`],
      [windowMinutes - 2, windowMinutes - 2, `HTTP 503 from ${new URL(rx.url).host}`],
      [2 * windowMinutes - 2, windowMinutes - 1, `HTTP 503 from ${new URL(rx.url).host}`],
    ],
  );

  const log = raw.join("\n");
  assert.ok(
    !log.includes("secret-uuid") && !log.includes("s3cr3t"),
    `a secret was logged:\n${log}`,
  );
});

test("heartbeat - a beat unanswered within the timeout is cut and logged, the receiver named by host only", async (t) => {
  const { rx, clock, hb, lines, raw } = await manualHeartbeat(t, () => "hang", {
    timeoutMs: 5_000,
  });
  hb.start();
  await waitFor(() => rx.requests.length === 1, "the beat received", 5_000);
  clock.advance(5_000);
  await waitFor(() => hb.failures === 1, "the timeout counted", 5_000);
  const warn = lines().find((l) => l.msg === "heartbeat not delivered");
  assert.equal(warn?.code, "E_HEARTBEAT_TIMEOUT");
  assert.equal(warn?.error, "no answer within 5s");
  await waitFor(() => rx.requests[0]?.closedEarly === true, "the request cut", 5_000);
  const log = raw.join("\n");
  assert.ok(
    !log.includes("secret-uuid") && !log.includes("s3cr3t"),
    `a secret was logged:\n${log}`,
  );
});

test("heartbeat - a receiver nobody listens on: the error says why, with the host and port only", async (t) => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const { log, lines, raw } = capturedLog();
  const hb = new Heartbeat({
    url: `http://127.0.0.1:${port}${SECRET_PATH}${SECRET_QUERY}`,
    method: "post",
    intervalMs: MINUTE,
    timeoutMs: 5_000,
    clock: new ManualClock(),
    log,
    version: "9.9.9",
    body: () => BODY,
  });
  t.after(() => hb.close());
  hb.start();
  await waitFor(() => hb.failures === 1, "the refusal counted", 5_000);
  const warn = lines().find((l) => l.msg === "heartbeat not delivered");
  assert.equal(warn?.code, "E_HEARTBEAT_SEND");
  assert.match(
    String(warn?.error),
    new RegExp(`^POST to 127\\.0\\.0\\.1:${port} failed: .*ECONNREFUSED`),
  );
  assert.equal(warn?.host, `127.0.0.1:${port}`);
  const text = raw.join("\n");
  assert.ok(
    !text.includes("secret-uuid") && !text.includes("s3cr3t"),
    `a secret was logged:\n${text}`,
  );
});

test("heartbeat - a receiver that takes only GET (Uptime Kuma 1): a POST's 404 says to set method = get, and with it the URL alone goes", async (t) => {
  // What Uptime Kuma before 2.0 does on its push URL.
  const onlyGet = (req: ReceivedRequest): Answer =>
    req.method === "GET" ? { status: 200, body: '{"ok":true}' } : { status: 404 };
  const posting = await manualHeartbeat(t, onlyGet);
  posting.hb.start();
  await waitFor(() => posting.hb.failures === 1, "the 404 counted", 5_000);
  assert.equal(
    posting.lines().find((l) => l.msg === "heartbeat not delivered")?.error,
    `HTTP 404 from ${new URL(posting.rx.url).host} (if the receiver takes only GET, like Uptime Kuma 1's push URL, set [heartbeat] method = get)`,
  );

  const getting = await manualHeartbeat(t, onlyGet, { method: "get" });
  getting.hb.start();
  await waitFor(() => getting.hb.lastSuccessAt !== undefined, "the GET taken", 5_000);
  const req = getting.rx.requests[0] as ReceivedRequest;
  assert.equal(req.method, "GET");
  assert.equal(req.path, `${SECRET_PATH}${SECRET_QUERY}`, "the URL's own query goes as written");
  assert.equal(req.body, "");
});

/** Until the receiver has a beat that `matches`; returns it parsed. */
async function beat(
  rx: { requests: ReceivedRequest[] },
  what: string,
  matches: (body: HeartbeatBody) => boolean,
  within = 5_000,
): Promise<HeartbeatBody> {
  const parsed = () => rx.requests.map((r) => JSON.parse(r.body) as HeartbeatBody);
  await waitFor(() => parsed().some(matches), what, within);
  return parsed().find(matches) as HeartbeatBody;
}

test("heartbeat - a real primary beats each interval with its host name, version, nodes by state and alerts firing; /metrics has the last success", async (t) => {
  const rx = await startReceiver(t);
  const pager = await startReceiver(t);
  const p = await startPrimary(
    t,
    { "heartbeat.url": `${rx.url}${SECRET_PATH}`, "heartbeat.interval": "1s" },
    undefined,
    undefined,
    // node_down told at once, to a channel whose name has a dot in it.
    [
      "[channel.ops.pager]",
      "type = webhook",
      `url = ${pager.url}/alerts`,
      "[alert.node_down]",
      "for = 0s",
      "channels = ops.pager",
      "",
    ].join("\n"),
  );
  startAgent(t, p, "pi-a");
  const leaving = startAgent(t, p, "pi-b");
  const dying = await ScriptedPeer.join(t, p, "pi-c", "node-c");
  await waitFor(
    () => p.primary.registry.list().filter((n) => n.state === "alive").length === 3,
    "three nodes alive",
    10_000,
  );
  await leaving.stop();
  dying.socket.destroy();
  await waitFor(
    () => p.primary.alerts.states().some((s) => s.nodeId === "node-c" && s.state === "firing"),
    "node_down firing for pi-c",
    5_000,
  );

  const told = await beat(
    rx,
    "a beat with one node of each of alive, down and left, and one alert firing",
    (b) => b.nodes.down === 1 && b.nodes.left === 1 && b.alertsFiring === 1,
  );
  assert.deepEqual(
    { ...told, at: 0 },
    {
      status: "ok",
      primary: hostname(),
      version: "0.1.0-test",
      nodes: { alive: 1, suspect: 0, down: 1, left: 1 },
      alertsFiring: 1,
      at: 0,
    },
  );
  const first = rx.requests[0] as ReceivedRequest;
  assert.equal(first.method, "POST");
  assert.equal(first.path, SECRET_PATH);
  assert.equal(first.headers["content-type"], "application/json");
  // One beat an interval, not one per change: consecutive beats are an interval apart.
  await waitFor(() => rx.requests.length >= 3, "three beats", 5_000);
  const times = rx.requests.map((r) => (JSON.parse(r.body) as HeartbeatBody).at);
  for (let i = 1; i < times.length; i++)
    assert.ok((times[i] ?? 0) - (times[i - 1] ?? 0) >= 900, `beats at ${times.join(", ")}`);

  const metrics = await (await fetch(`http://127.0.0.1:${httpPort(p)}/metrics`)).text();
  const last = /^picluster_heartbeat_last_success_timestamp_seconds (\d+)$/m.exec(metrics)?.[1];
  assert.ok(last !== undefined, "the gauge is in /metrics");
  assert.ok(Math.abs(Number(last) - Date.now() / 1000) < 60, `last success ${last}`);

  // The dotted channel name reached its channel.
  await waitFor(() => pager.requests.length > 0, "node_down told to ops.pager", 5_000);
  assert.match(pager.requests[0]?.body ?? "", /pi-c/);
});

test("heartbeat - a real primary whose receiver fails or hangs logs it by host only, keeps its schedule, and the API does not wait", async (t) => {
  const rx = await startReceiver(t, (_req, i) =>
    i === 0 ? { status: 500 } : i === 1 ? "hang" : { status: 200 },
  );
  const p = await startPrimary(t, {
    "heartbeat.url": `${rx.url}${SECRET_PATH}${SECRET_QUERY}`,
    "heartbeat.interval": "1s",
    // Far longer than the interval: only the next beat may cut a hanging one.
    "heartbeat.timeout": "30s",
  });
  await waitFor(() => rx.requests.length >= 2, "the hanging beat received", 5_000);
  // While it hangs, the primary answers as ever.
  const health = await fetch(`http://127.0.0.1:${httpPort(p)}/healthz`, {
    signal: AbortSignal.timeout(2_000),
  });
  assert.equal(health.status, 200);
  // The next beat comes at its interval, not after the hanging one's 30 s.
  await waitFor(() => rx.requests.length >= 3, "the beat after the hanging one", 5_000);
  await waitFor(
    () => p.records.some((r) => r.msg === "heartbeat delivered again"),
    "delivered again",
    5_000,
  );
  const warn = p.records.filter((r) => r.msg === "heartbeat not delivered");
  assert.equal(warn.length, 1, "the hang fell in the same window as the 500");
  assert.equal(warn[0]?.code, "E_HEARTBEAT_HTTP");
  assert.equal(warn[0]?.host, new URL(rx.url).host);
  assert.equal(warn[0]?.level, "warn");
  assert.equal(p.records.find((r) => r.msg === "heartbeat delivered again")?.failedBefore, 2);
  assert.equal(rx.requests[1]?.closedEarly, true, "the hanging beat was cut");
  const text = JSON.stringify(p.records);
  assert.ok(!text.includes("secret-uuid") && !text.includes("s3cr3t"), "no secret in the log");
});
