import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { test } from "node:test";
import { decodeChunked, HttpGetError, httpGet } from "../src/http-get.js";

/** A TCP server that answers each connection with `reply` (raw bytes), then does what `after` says. */
async function raw(
  t: { after(fn: () => void): void },
  reply: (request: string) => string,
  after: "close" | "hold" = "close",
): Promise<{ port: number; requests: string[] }> {
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    let got = "";
    s.on("data", (d) => {
      got += d.toString("latin1");
      if (!got.includes("\r\n\r\n")) return;
      requests.push(got);
      s.write(reply(got));
      if (after === "close") s.end();
    });
    s.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const address = server.address();
  return { port: typeof address === "object" && address !== null ? address.port : 0, requests };
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
  assert.deepEqual(decodeChunked(Buffer.from("3\r\nabc\r\n2\r\nd")), {
    data: Buffer.from("abcd"),
    done: false,
  });
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
