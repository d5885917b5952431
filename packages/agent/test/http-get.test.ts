import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { test } from "node:test";
import { decodeChunked, HttpGetError, httpGet, KeptConnection } from "../src/http-get.js";

/** A TCP server on loopback whose connections `handle` takes; all ended with the test. */
async function serve(
  t: { after(fn: () => void): void },
  handle: (s: Socket) => void,
): Promise<number> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    handle(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const address = server.address();
  return typeof address === "object" && address !== null ? address.port : 0;
}

/** A TCP server that answers each connection with `reply` (raw bytes), then does what `after` says. */
async function raw(
  t: { after(fn: () => void): void },
  reply: (request: string) => string,
  after: "close" | "hold" = "close",
): Promise<{ port: number; requests: string[] }> {
  const requests: string[] = [];
  const port = await serve(t, (s) => {
    let got = "";
    s.on("data", (d) => {
      got += d.toString("latin1");
      if (!got.includes("\r\n\r\n")) return;
      requests.push(got);
      s.write(reply(got));
      if (after === "close") s.end();
    });
  });
  return { port, requests };
}

const get = (port: number, over: Partial<Parameters<typeof httpGet>[0]> = {}) =>
  httpGet({
    host: "127.0.0.1",
    port,
    path: "/healthz?x=1",
    timeoutMs: 2_000,
    maxBody: 64,
    ...over,
  });

test("http-get - one GET with Connection: close; a Content-Length body is read to its length even on a kept-alive socket", async (t) => {
  const s = await raw(
    t,
    () => "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nokEXTRA",
    "hold",
  );
  const r = await get(s.port);
  assert.equal(r.status, 200);
  assert.equal(r.body, "ok");
  assert.equal(r.headers.get("x-a"), "b");
  assert.equal(r.truncated, false);
  assert.ok(r.latencyMs >= 0);
  assert.match(s.requests[0] ?? "", /^GET \/healthz\?x=1 HTTP\/1\.1\r\nHost: 127\.0\.0\.1\r\n/);
  assert.match(s.requests[0] ?? "", /\r\nConnection: close\r\n/);
});

test("http-get - chunked bodies are decoded, a body with neither is read to close, and a long one is cut at maxBody", async (t) => {
  const chunked = await raw(
    t,
    () =>
      "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n5\r\ndrain\r\n4;x=y\r\ning!\r\n0\r\n\r\n",
    "hold",
  );
  const c = await get(chunked.port);
  assert.deepEqual([c.status, c.body], [503, "draining!"]);
  const toClose = await raw(t, () => "HTTP/1.0 200 OK\r\n\r\nuntil the end");
  assert.equal((await get(toClose.port)).body, "until the end");
  const long = await raw(t, () => `HTTP/1.1 200 OK\r\n\r\n${"x".repeat(5_000)}`, "hold");
  const l = await get(long.port);
  assert.equal(l.body.length, 64);
  assert.equal(l.truncated, true);
  const partial = decodeChunked(Buffer.from("3\r\nabc\r\n2\r\nd"));
  assert.deepEqual([partial.data.toString(), partial.done], ["abcd", false]);
  // Done only with the empty line after the last chunk, and it says where the answer ends.
  assert.equal(decodeChunked(Buffer.from("1\r\na\r\n0\r\n")).done, false);
  const whole = decodeChunked(Buffer.from("1\r\na\r\n0\r\n\r\nNEXT"));
  assert.deepEqual([whole.data.toString(), whole.done, whole.end], ["a", true, 11]);
});

test("http-get - refused, silent and non-HTTP peers fail with a code and a reason", async (t) => {
  const closed = await raw(t, () => "");
  const port = closed.port;
  const refused = await httpGet({
    host: "127.0.0.1",
    port: 1,
    path: "/",
    timeoutMs: 2_000,
    maxBody: 10,
  }).catch((e: unknown) => e);
  assert.ok(refused instanceof HttpGetError);
  assert.equal(refused.code, "ECONNREFUSED");
  const silent = await raw(t, () => "", "hold");
  const timedOut = await get(silent.port, { timeoutMs: 200 }).catch((e: unknown) => e);
  assert.ok(timedOut instanceof HttpGetError);
  assert.deepEqual([timedOut.code, timedOut.message], ["E_TIMEOUT", "no answer within 200 ms"]);
  const smtp = await raw(t, () => "220 mail.example ESMTP\r\n\r\n");
  const notHttp = await get(smtp.port).catch((e: unknown) => e);
  assert.ok(notHttp instanceof HttpGetError);
  assert.match(notHttp.message, /^not an HTTP answer: "220 mail\.example ESMTP"$/);
  const empty = await get(port).catch((e: unknown) => e);
  assert.ok(empty instanceof HttpGetError);
  assert.equal(empty.message, "the connection closed before an answer");
});

/**
 * A server that answers each request on a connection with `answer(n, path)`
 * (n counts requests over all connections, from 0), and counts connections.
 * An answer of null means: close the connection without answering.
 */
async function keeper(
  t: { after(fn: () => void): void },
  answer: (n: number, path: string) => { text: string; close?: boolean } | null,
): Promise<{ port: number; connections: () => number; paths: string[] }> {
  const paths: string[] = [];
  let connections = 0;
  const port = await serve(t, (s) => {
    connections++;
    let got = "";
    s.on("data", (d) => {
      got += d.toString("latin1");
      for (let end = got.indexOf("\r\n\r\n"); end >= 0; end = got.indexOf("\r\n\r\n")) {
        const request = got.slice(0, end);
        got = got.slice(end + 4);
        const path = /^GET (\S+)/.exec(request)?.[1] ?? "?";
        const a = answer(paths.length, path);
        paths.push(path);
        if (a === null) {
          s.destroy();
          return;
        }
        s.write(a.text);
        if (a.close === true) s.end();
      }
    });
  });
  return { port, connections: () => connections, paths };
}

const ok = (body: string) => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

test("kept connection - requests go one after another on one connection, by length and chunked; an answer that closes it, or a body read to close, makes the next open a new one", async (t) => {
  const s = await keeper(t, (n, path) => {
    if (n === 1)
      return { text: `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n` };
    if (n === 3)
      return {
        text: `HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye`,
        close: true,
      };
    if (n === 5) return { text: "HTTP/1.1 200 OK\r\n\r\nto the end", close: true };
    if (n === 6) return { text: "HTTP/1.1 204 No Content\r\n\r\n" };
    return { text: ok(path) };
  });
  const c = new KeptConnection({ host: "127.0.0.1", port: s.port, timeoutMs: 2_000, maxBody: 100 });
  t.after(() => c.close());
  // Asked all at once: still one at a time, in order.
  const answers = await Promise.all(
    ["/a", "/b", "/c", "/d", "/e", "/f", "/g", "/h"].map((p) => c.get(p)),
  );
  assert.deepEqual(
    answers.map((a) => `${a.status} ${a.body}`),
    ["200 /a", "200 hi", "200 /c", "200 bye", "200 /e", "200 to the end", "204 ", "200 /h"],
  );
  assert.deepEqual(s.paths, ["/a", "/b", "/c", "/d", "/e", "/f", "/g", "/h"]);
  // One connection for /a to /d, a second for /e and /f (read to close), a third for /g and /h.
  assert.equal(s.connections(), 3);
});

test("kept connection - a reused connection the server dropped before answering is retried once on a new one; a fresh one that drops, a timeout or close() fail only their requests", async (t) => {
  let dropNext = true;
  const s = await keeper(t, (n, path) => {
    // The second request on the first connection finds it closed (an idle timeout).
    if (n === 1 && dropNext) {
      dropNext = false;
      return null;
    }
    if (path === "/silent") return { text: "" };
    if (path === "/drop") return null;
    return { text: ok(path) };
  });
  const c = new KeptConnection({ host: "127.0.0.1", port: s.port, timeoutMs: 300, maxBody: 100 });
  t.after(() => c.close());
  assert.equal((await c.get("/one")).body, "/one");
  assert.equal((await c.get("/two")).body, "/two");
  assert.deepEqual(s.paths, ["/one", "/two", "/two"]);
  assert.equal(s.connections(), 2);
  // A fresh connection that closes without an answer is not retried.
  c.close();
  const dropped = await c.get("/drop").catch((e: unknown) => e);
  assert.ok(dropped instanceof HttpGetError);
  assert.equal(dropped.message, "the connection closed before an answer");
  assert.equal(s.paths.filter((p) => p === "/drop").length, 1);
  const silent = await c.get("/silent").catch((e: unknown) => e);
  assert.ok(silent instanceof HttpGetError);
  assert.deepEqual([silent.code, silent.message], ["E_TIMEOUT", "no answer within 300 ms"]);
  assert.equal((await c.get("/after")).body, "/after");
  const queued = [c.get("/silent"), c.get("/never")].map((p) => p.catch((e: unknown) => e));
  c.close();
  for (const e of await Promise.all(queued)) {
    assert.ok(e instanceof HttpGetError);
    assert.equal(e.message, "the connection was closed");
  }
  const refused = await new KeptConnection({
    host: "127.0.0.1",
    port: 1,
    timeoutMs: 300,
    maxBody: 10,
  })
    .get("/")
    .catch((e: unknown) => e);
  assert.ok(refused instanceof HttpGetError);
  assert.equal(refused.code, "ECONNREFUSED");
});
