import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { test } from "node:test";
import {
  type Envelope,
  type MessageMap,
  NdjsonDecoder,
  silentLogger,
  systemClock,
} from "@picluster/common";
import { waitFor } from "@picluster/common/testing";
import { dial } from "../../src/dial.js";
import { AgentLink } from "../../src/link.js";
import { Outbox } from "../../src/outbox.js";

/** A primary played by hand over plain TCP: records every frame, lets the test answer. */
async function scriptedPrimary(t: { after(fn: () => void | Promise<void>): void }) {
  const received: Envelope[] = [];
  /** Every frame as parsed JSON, those our decoder refuses (unknown types) included. */
  const raw: Array<Record<string, unknown>> = [];
  let socket: Socket | undefined;
  const waiters = new Set<() => void>();
  const server = createServer((s) => {
    socket = s;
    const decoder = new NdjsonDecoder();
    const lines = new NdjsonDecoder(1024 * 1024, (v) => v as Envelope);
    s.on("data", (chunk: Buffer) => {
      for (const m of decoder.feed(chunk)) if (!(m instanceof Error)) received.push(m);
      for (const m of lines.feed(chunk))
        if (!(m instanceof Error)) raw.push(m as unknown as Record<string, unknown>);
      for (const w of waiters) w();
    });
    s.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        // A failed assertion can leave the agent's socket open: never wait on it.
        socket?.destroy();
        server.close(() => resolve());
      }),
  );
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    port,
    received,
    raw,
    send(env: Envelope | Record<string, unknown>) {
      socket?.write(`${JSON.stringify(env)}\n`);
    },
    /** Wait for the frame answering request `id`. */
    async answer(id: number, within = 1_000): Promise<Record<string, unknown>> {
      await waitFor(() => raw.some((e) => e.re === id), `an answer to request ${id}`, within);
      return raw.find((e) => e.re === id) as Record<string, unknown>;
    },
    /** Wait until `count` frames of `type` have arrived. */
    async frames(type: string, count: number, within = 2_000): Promise<Envelope[]> {
      const got = () => received.filter((e) => e.type === type);
      if (got().length >= count) return got();
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(`only ${got().length} of ${count} "${type}" frames within ${within} ms`),
            ),
          within,
        );
        const check = () => {
          if (got().length >= count) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve();
          }
        };
        waiters.add(check);
      });
      return got();
    },
  };
}

const DETAILS = {
  hostname: "n1",
  os: { name: "Debian", version: "12" },
  kernel: "6.6",
  arch: "arm64",
  cpu: { model: "Cortex-A72", cores: 4 },
  memory: { totalBytes: 1, swapBytes: 0 },
  disks: [],
  interfaces: [],
  bootTime: 1,
  agentVersion: "0.1.0",
  nodeVersion: "v20",
} satisfies MessageMap["details"];

test("link - hello, welcome, details, heartbeats at the primary's interval, requests answered, details resent only when changed, bye on stop", async (t) => {
  const primary = await scriptedPrimary(t);
  let details: MessageMap["details"] = DETAILS;
  const outbox = new Outbox(100);
  const link = new AgentLink({
    clock: systemClock,
    log: silentLogger(),
    outbox,
    target: () => ({
      host: "127.0.0.1",
      port: primary.port,
      credential: undefined,
      timeoutMs: 2_000,
    }),
    dial,
    hello: () => ({ nodeId: "n1", name: "n1", version: "0.1.0", protocols: [1], labels: {} }),
    details: async () => details,
    onCredential: () => {},
    onWelcome: () => {},
    reconnectMaxMs: 1_000,
    maxFrameBytes: 1024 * 1024,
  });
  link.start();
  t.after(() => link.stop());
  const [hello] = await primary.frames("hello", 1);
  assert.equal(hello?.type === "hello" ? hello.payload.nodeId : "", "n1");

  link.enqueueVitals({
    cpu: { total: 3, perCore: [] },
    temps: [],
    memory: { totalBytes: 1, usedBytes: 0, availableBytes: 1 },
    swap: { totalBytes: 0, usedBytes: 0 },
    disks: [],
    net: [],
  });
  primary.send({
    v: 1,
    type: "welcome",
    ts: Date.now(),
    payload: { protocol: 1, heartbeatMs: 50, vitalsMs: 1_000, lastSeq: 0, primaryVersion: "x" },
  });
  await primary.frames("details", 1);
  const [queued] = await primary.frames("vitals", 1);
  assert.equal(
    queued?.type === "vitals" ? queued.seq : undefined,
    1,
    "a sample taken before welcome is sent after it",
  );
  await primary.frames("heartbeat", 3);
  primary.send({ v: 1, type: "ack", ts: Date.now(), payload: { seq: 1 } });

  link.refreshDetails();
  details = {
    ...DETAILS,
    interfaces: [{ name: "eth0", mac: "aa:bb", addresses: ["10.0.0.2/24"] }],
  };
  link.refreshDetails();
  const all = await primary.frames("details", 2);
  assert.deepEqual(
    all[1]?.type === "details" ? all[1].payload.interfaces.length : -1,
    1,
    "changed details are sent again",
  );

  primary.send({ v: 1, type: "ping", ts: Date.now(), id: 7, payload: {} });
  primary.send({
    v: 1,
    type: "task.run",
    ts: Date.now(),
    id: 8,
    payload: { task: "reboot", args: {} },
  });
  await primary.frames("task.run", 1);
  const pong = primary.received.find((e) => e.type === "ping" && "re" in e);
  assert.ok(
    pong !== undefined &&
      "payload" in pong &&
      typeof (pong.payload as { time: number }).time === "number",
  );
  const refused = primary.received.find((e) => e.type === "task.run");
  assert.equal(refused && "error" in refused ? refused.error.code : "", "E_NOT_ALLOWED");
  assert.equal(outbox.size, 0, "the ack emptied the outbox");

  await link.stop("test done");
  const [bye] = await primary.frames("bye", 1);
  assert.equal(bye?.type === "bye" ? bye.payload.reason : "", "test done");
  assert.equal(
    primary.received.filter((e) => e.type === "details").length,
    2,
    "unchanged details were not sent twice",
  );
});

test("link - a request this agent cannot answer is refused at once, under its own id: a type it does not know, one it has no handler for, a payload it cannot read", async (t) => {
  const primary = await scriptedPrimary(t);
  const link = new AgentLink({
    clock: systemClock,
    log: silentLogger(),
    outbox: new Outbox(100),
    target: () => ({
      host: "127.0.0.1",
      port: primary.port,
      credential: undefined,
      timeoutMs: 2_000,
    }),
    dial,
    hello: () => ({ nodeId: "n1", name: "n1", version: "0.1.0", protocols: [1], labels: {} }),
    details: async () => DETAILS,
    onCredential: () => {},
    onWelcome: () => {},
    // No processesTop: an agent built without that handler.
    reconnectMaxMs: 1_000,
    maxFrameBytes: 1024 * 1024,
  });
  link.start();
  t.after(() => link.stop());
  await primary.frames("hello", 1);
  primary.send({
    v: 1,
    type: "welcome",
    ts: Date.now(),
    payload: { protocol: 1, heartbeatMs: 1_000, vitalsMs: 1_000, lastSeq: 0, primaryVersion: "x" },
  });
  await primary.frames("details", 1);

  // What a newer primary sends an older agent: a type its protocol lacks.
  primary.send({ v: 1, type: "jobs.claim", ts: Date.now(), id: 21, payload: {} });
  const unknown = await primary.answer(21);
  assert.equal(unknown.type, "jobs.claim");
  assert.equal((unknown.error as { code: string }).code, "E_UNKNOWN_TYPE");
  assert.match(
    (unknown.error as { message: string }).message,
    /picluster 0\.1\.0\) does not know "jobs\.claim"; update picluster on this node/,
  );

  primary.send({ v: 1, type: "processes.top", ts: Date.now(), id: 22, payload: { n: 5 } });
  const unhandled = await primary.answer(22);
  assert.equal(unhandled.type, "processes.top");
  assert.equal((unhandled.error as { code: string }).code, "E_UNSUPPORTED");
  assert.match(
    (unhandled.error as { message: string }).message,
    /does not answer "processes\.top"/,
  );

  primary.send({ v: 1, type: "task.run", ts: Date.now(), id: 23, payload: { task: 7, args: {} } });
  const unreadable = await primary.answer(23);
  assert.equal((unreadable.error as { code: string }).code, "E_INVALID_PAYLOAD");
  assert.equal((unreadable.error as { path?: string }).path, "/payload/task");

  // A bad frame that is not a request gets no answer: nothing waits for one.
  primary.send({ v: 1, type: "jobs.done", ts: Date.now(), payload: {} });
  primary.send({ v: 1, type: "ping", ts: Date.now(), id: 24, payload: {} });
  await primary.answer(24);
  assert.equal(
    primary.raw.filter((e) => e.type === "jobs.done").length,
    0,
    "no answer to a message that was not a request",
  );
});
