/**
 * The HTTP server against hostile and careless clients: wrong Host names
 * (DNS rebinding), bodies sent without the token or trickled in slowly,
 * oversized or malformed bodies, event-stream clients that pile up or stop
 * reading, and what a task run shows to whoever can reach the API.
 * Raw sockets where the test needs to misbehave below what fetch allows.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { request as httpRequest } from "node:http";
import { connect, type Socket } from "node:net";
import { test } from "node:test";
import { deadline, waitFor } from "@picluster/common/testing";
import { httpPort, startAgent, startPrimary, type TestPrimary } from "./support/cluster.js";

const TOKEN = "limits-test-token";

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request with headers fetch would not let us set (Host), read whole. */
function call(
  port: number,
  path: string,
  opts: { host?: string; localAddress?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: "127.0.0.1",
        port,
        path,
        ...(opts.localAddress === undefined ? {} : { localAddress: opts.localAddress }),
        headers: { ...(opts.host === undefined ? {} : { host: opts.host }), ...opts.headers },
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          body += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** An event stream held open: its status and headers, and everything read so far. */
interface OpenStream {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text(): string;
  close(): void;
}

function openStream(
  t: { after(fn: () => void): void },
  port: number,
  path = "/api/stream",
  opts: { localAddress?: string; headers?: Record<string, string> } = {},
): Promise<OpenStream> {
  return new Promise((resolve, reject) => {
    let text = "";
    const req = httpRequest(
      {
        host: "127.0.0.1",
        port,
        path,
        ...(opts.localAddress === undefined ? {} : { localAddress: opts.localAddress }),
        ...(opts.headers === undefined ? {} : { headers: opts.headers }),
      },
      (res) => {
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          text += c;
        });
        res.on("error", () => {});
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text: () => text,
          close: () => req.destroy(),
        });
      },
    );
    req.on("error", reject);
    t.after(() => req.destroy());
    req.end();
  });
}

/** A raw socket: what it wrote back, and whether the server closed it. */
function rawSocket(
  t: { after(fn: () => void): void },
  port: number,
): { socket: Socket; received: () => string; closed: Promise<void> } {
  const socket = connect({ host: "127.0.0.1", port });
  t.after(() => socket.destroy());
  let received = "";
  socket.setEncoding("utf8");
  socket.on("data", (c: string) => {
    received += c;
  });
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  return { socket, received: () => received, closed };
}

function metric(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

async function streamsOpen(p: TestPrimary): Promise<number | undefined> {
  return metric((await call(httpPort(p), "/metrics")).body, "picluster_http_streams");
}

test("http limits - a Host that is not this server's gets 421; addresses, loopback names, this machine and allowed_hosts pass", async (t) => {
  const p = await startPrimary(t, { "http.allowed_hosts": "pi.example.org, .lab.example" });
  const port = httpPort(p);
  const refused = await call(port, "/api/nodes", { host: "evil.example" });
  assert.equal(refused.status, 421);
  const error = (JSON.parse(refused.body) as { error: { code: string; message: string } }).error;
  assert.equal(error.code, "E_BAD_HOST");
  assert.match(error.message, /"evil\.example"/);
  assert.match(error.message, /\[http\] allowed_hosts/);
  for (const host of ["evil.example:8123", "lab.example.evil.com", "notpi.example.org"])
    assert.equal((await call(port, "/api/nodes", { host })).status, 421, host);
  for (const host of [
    `127.0.0.1:${port}`,
    `localhost:${port}`,
    "dash.localhost",
    `[::1]:${port}`,
    "192.168.1.10:8123",
    "PI.example.org",
    "node3.lab.example",
    "lab.example",
  ])
    assert.equal((await call(port, "/api/nodes", { host })).status, 200, host);
  // The dashboard itself too: a rebinding page cannot load it under its own name.
  assert.equal((await call(port, "/", { host: "evil.example" })).status, 421);
});

test("http limits - every answer carries nosniff, no framing, no referrer and a self-only CSP, streams and errors included", async (t) => {
  const p = await startPrimary(t);
  const port = httpPort(p);
  const answers = [
    await call(port, "/"),
    await call(port, "/api/nodes"),
    await call(port, "/api/nothing"),
    await openStream(t, port),
  ];
  for (const a of answers) {
    assert.equal(a.headers["x-content-type-options"], "nosniff");
    assert.equal(a.headers["x-frame-options"], "DENY");
    assert.equal(a.headers["referrer-policy"], "no-referrer");
    const csp = String(a.headers["content-security-policy"]);
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  }
});

test("http limits - a call without the token is refused before its body is read, and its connection closed", async (t) => {
  const p = await startPrimary(t, { "http.token": TOKEN });
  const raw = rawSocket(t, httpPort(p));
  // Announce a 1 MiB body and send a few bytes of it: the answer must not wait for the rest.
  raw.socket.write(
    'POST /api/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{"task":',
  );
  await deadline(raw.closed, 5_000, "the server to answer and close the connection");
  assert.match(raw.received(), /^HTTP\/1\.1 401 /);
  assert.match(raw.received(), /connection: close/i);
  assert.match(raw.received(), /E_UNAUTHORIZED/);
});

test("http limits - a body trickled slower than request_timeout is cut with 408", async (t) => {
  const p = await startPrimary(t, { "http.token": TOKEN, "http.request_timeout": "1s" });
  const raw = rawSocket(t, httpPort(p));
  raw.socket.write(
    `POST /api/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{`,
  );
  // One byte every 200 ms: the connection is busy, the request never complete.
  const trickle = setInterval(() => raw.socket.write(" "), 200);
  t.after(() => clearInterval(trickle));
  await deadline(raw.closed, 6_000, "the trickled request to be cut");
  clearInterval(trickle);
  assert.match(raw.received(), /^HTTP\/1\.1 408 /);
});

test("http limits - a body over the limit gets 413, bad JSON 400 and a wrong type 415, each with its own code", async (t) => {
  const p = await startPrimary(t, { "http.token": TOKEN });
  const base = `http://127.0.0.1:${httpPort(p)}`;
  const post = async (body: string, type = "application/json") => {
    const res = await fetch(`${base}/api/tasks`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": type },
      body,
    });
    return {
      status: res.status,
      code: ((await res.json()) as { error: { code: string } }).error.code,
    };
  };
  // A task request is a few hundred bytes; 20 KiB is past the route's 16 KiB.
  const big = JSON.stringify({ task: "hello", on: "all", args: { a: "x".repeat(20 * 1024) } });
  assert.deepEqual(await post(big), { status: 413, code: "E_BODY_TOO_LARGE" });
  assert.deepEqual(await post('{"task": '), { status: 400, code: "E_BAD_JSON" });
  assert.deepEqual(await post("task=hello", "application/x-www-form-urlencoded"), {
    status: 415,
    code: "E_UNSUPPORTED_MEDIA_TYPE",
  });
});

test("http limits - event streams are capped per address and in total; a closed one gives its slot back", async (t) => {
  const p = await startPrimary(t, {
    "http.max_streams_per_address": "2",
    "http.max_streams": "3",
  });
  const port = httpPort(p);
  const a1 = await openStream(t, port);
  const a2 = await openStream(t, port);
  assert.deepEqual([a1.status, a2.status], [200, 200]);
  const a3 = await call(port, "/api/stream");
  assert.equal(a3.status, 429);
  assert.equal(
    (JSON.parse(a3.body) as { error: { code: string } }).error.code,
    "E_TOO_MANY_STREAMS",
  );
  assert.match(a3.body, /max_streams_per_address/);
  // Another address may still open one, until the total is reached.
  const b1 = await openStream(t, port, "/api/stream", { localAddress: "127.0.0.2" });
  assert.equal(b1.status, 200);
  const c1 = await call(port, "/api/stream", { localAddress: "127.0.0.3" });
  assert.equal(c1.status, 503);
  assert.match(c1.body, /\[http\] max_streams/);
  assert.equal(await streamsOpen(p), 3);
  a1.close();
  await waitFor(
    async () => (await streamsOpen(p)) === 2,
    "a closed stream's slot given back",
    5_000,
  );
  assert.equal((await openStream(t, port)).status, 200);
});

test("http limits - one address holds at most max_connections_per_address connections: one more is answered 429 and closed, another address is served, a closed one gives its slot back", async (t) => {
  const p = await startPrimary(t, { "http.max_connections_per_address": "4" });
  const port = httpPort(p);
  const held = [1, 2, 3, 4].map(() => rawSocket(t, port));
  await Promise.all(held.map((h) => once(h.socket, "connect")));
  const refused = await call(port, "/api/nodes");
  assert.equal(refused.status, 429);
  assert.equal(refused.headers.connection, "close");
  assert.equal(refused.headers["retry-after"], "10");
  const error = (JSON.parse(refused.body) as { error: { code: string; message: string } }).error;
  assert.equal(error.code, "E_TOO_MANY_CONNECTIONS");
  assert.match(error.message, /127\.0\.0\.1 has 4 connections open.*max_connections_per_address/);
  // One that sends nothing is closed all the same.
  const silent = rawSocket(t, port);
  await deadline(silent.closed, 5_000, "an idle connection over the limit closed");
  assert.equal(silent.received(), "");
  // Another address is served.
  assert.equal((await call(port, "/api/nodes", { localAddress: "127.0.0.2" })).status, 200);
  // The held ones were not disturbed, and one closed gives its slot back.
  assert.ok(held.every((h) => !h.socket.destroyed && h.received() === ""));
  held[0]?.socket.destroy();
  await waitFor(
    async () => (await call(port, "/api/nodes")).status === 200,
    "a closed connection's slot given back",
    5_000,
  );
});

test("http limits - a stream client that stops reading is cut and its slot freed, while a reading one stays live", async (t) => {
  const p = await startPrimary(t, { "http.stream_stall_timeout": "1s" });
  const port = httpPort(p);
  const reader = await openStream(t, port);
  const raw = rawSocket(t, port);
  raw.socket.write("GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  await waitFor(() => raw.received().startsWith("HTTP/1.1 200"), "the stalled stream open", 5_000);
  raw.socket.pause(); // From now on it reads nothing.
  assert.equal(await streamsOpen(p), 2);
  // 64 KiB of events every 100 ms, until the stalled client is cut: far
  // more than its socket buffers hold, in bursts a reading client keeps up with.
  const big = "x".repeat(8 * 1024);
  let sent = 0;
  const flood = setInterval(() => {
    for (let i = 0; i < 8; i++, sent++)
      p.primary.events.emit({
        kind: "alert.delivery_failed",
        at: Date.now(),
        channel: "test",
        rule: "flood",
        title: `flood ${sent}`,
        attempts: 1,
        error: big,
      });
  }, 100);
  t.after(() => clearInterval(flood));
  await waitFor(
    () => p.records.some((r) => String(r.msg).startsWith("stream client")),
    "the stalled client cut",
    30_000,
  );
  // Cut by the stall timer: at this rate its backlog stays under the hard ceiling.
  assert.deepEqual(
    p.records.filter((r) => String(r.msg).startsWith("stream client")).map((r) => r.msg),
    ["stream client did not drain in time, closing it"],
  );
  clearInterval(flood);
  const last = `"flood ${sent - 1}"`;
  await waitFor(async () => (await streamsOpen(p)) === 1, "its slot freed", 5_000);
  await waitFor(
    () => reader.text().includes(last),
    "the reading client to get every event",
    10_000,
  );
  assert.equal(reader.status, 200);
});

test("http limits - a resume replays at most stream_resume_bytes, then tells the client to reload", async (t) => {
  const p = await startPrimary(t, { "http.stream_resume_bytes": "8KiB" });
  const port = httpPort(p);
  const first = p.primary.store.events({ limit: 1 })[0]?.id ?? 0;
  for (let i = 0; i < 50; i++)
    p.primary.events.emit({
      kind: "alert.delivery_failed",
      at: Date.now(),
      channel: "test",
      rule: "resume",
      title: `resume ${i}`,
      attempts: 1,
      error: "y".repeat(1024),
    });
  await waitFor(
    () => p.primary.store.events({ kind: "alert.delivery_failed", limit: 100 }).length === 50,
    "50 stored events",
    5_000,
  );
  const s = await openStream(t, port, "/api/stream", {
    headers: { "last-event-id": String(Math.max(first, 1)) },
  });
  await waitFor(() => s.text().includes("event: resync"), "a resync after the budget", 5_000);
  const replayed = s.text().slice(0, s.text().indexOf("event: resync"));
  assert.ok(Buffer.byteLength(replayed) <= 8 * 1024 + 64, `${Buffer.byteLength(replayed)} bytes`);
  const sent = (replayed.match(/event: alert\.delivery_failed/g) ?? []).length;
  assert.ok(sent > 0 && sent < 50, `${sent} of 50 events replayed`);
});

test("http limits - a run's arguments and output need the token: the public list and stream show neither", async (t) => {
  const p = await startPrimary(t, { "http.token": TOKEN, "primary.vitals_interval": "1s" });
  const port = httpPort(p);
  const ini = [
    "[task.whisper]",
    "command = /bin/sh -c 'sleep 1; echo \"$0-out\"' {word}",
    "arg.word = string [a-z]{1,16}",
    "",
  ].join("\n");
  startAgent(t, p, "pi-a", {}, "pi4", ini);
  await waitFor(
    () => p.primary.registry.list().some((n) => n.details?.tasks !== undefined),
    "the node with its tasks",
    10_000,
  );
  const publicStream = await openStream(t, port);
  const base = `http://127.0.0.1:${port}`;
  const auth = { authorization: `Bearer ${TOKEN}` };
  const started = await fetch(`${base}/api/tasks`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ task: "whisper", on: "all", args: { word: "sesame" } }),
  });
  assert.equal(started.status, 202);
  const { id } = (await started.json()) as { id: number };
  const output = await openStream(t, port, `/api/tasks/${id}/output`, { headers: auth });
  assert.equal(output.status, 200);
  assert.equal((await call(port, `/api/tasks/${id}/output`)).status, 401);
  await waitFor(() => output.text().includes("event: end"), "the run's end on its stream", 10_000);
  assert.match(output.text(), /event: task\.output\ndata: .*sesame-out/);

  assert.equal((await call(port, `/api/tasks/${id}`)).status, 401);
  const full = JSON.parse((await call(port, `/api/tasks/${id}`, { headers: auth })).body) as {
    args: Record<string, string>;
    nodes: Array<{ output: string }>;
  };
  assert.deepEqual(full.args, { word: "sesame" });
  assert.equal(full.nodes[0]?.output, "sesame-out\n");
  const list = JSON.parse((await call(port, "/api/tasks")).body) as {
    runs: Array<{ id: number; args: Record<string, string>; redacted?: boolean; status: string }>;
  };
  assert.equal(list.runs[0]?.id, id);
  assert.deepEqual(list.runs[0]?.args, {});
  assert.equal(list.runs[0]?.redacted, true);
  await waitFor(
    () => publicStream.text().includes("event: task.finished"),
    "the public stream to tell the run ended",
    5_000,
  );
  assert.doesNotMatch(publicStream.text(), /sesame|task\.output/);
});
