import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { DecodeError, FrameTooLargeError } from "../../src/errors.js";
import {
  FrameSplitter,
  LegacyDecoder,
  LegacyEncoder,
  type LegacyMessage,
  NdjsonDecoder,
  NdjsonEncoder,
} from "../../src/protocol/codec.js";
import type { Envelope, Message } from "../../src/protocol/envelope.js";
import { parseEnvelope } from "../../src/protocol/envelope.js";

const count = fc.nat({ max: 2 ** 40 });
const text = fc.string({ unit: "binary", maxLength: 40 });
const pct = fc.double({ min: 0, max: 100, noNaN: true });

const heartbeat = fc
  .record({ dropped: count })
  .map((payload) => ({ type: "heartbeat" as const, payload }));
const log = fc
  .record({ level: fc.constantFrom("info" as const, "warn" as const), msg: text })
  .map((payload) => ({ type: "log" as const, payload }));
const vitals = fc
  .record({
    cpu: fc.record({ total: pct, perCore: fc.array(pct, { maxLength: 8 }) }),
    load: fc.tuple(
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.double({ min: 0, max: 64, noNaN: true }),
      fc.double({ min: 0, max: 64, noNaN: true }),
    ),
    temps: fc.array(
      fc.record({
        zone: text,
        type: text,
        celsius: fc.double({ min: -40, max: 125, noNaN: true }),
      }),
      { maxLength: 3 },
    ),
    rebootRequired: fc.boolean(),
    memory: fc.record({ totalBytes: count, usedBytes: count, availableBytes: count }),
    swap: fc.record({ totalBytes: count, usedBytes: count }),
    disks: fc.array(fc.record({ mount: text, usedBytes: count, sizeBytes: count }), {
      maxLength: 3,
    }),
    diskIo: fc.record({
      readBps: fc.double({ min: 0, max: 1e9, noNaN: true }),
      writeBps: fc.double({ min: 0, max: 1e9, noNaN: true }),
    }),
    net: fc.array(
      fc.record({
        iface: text,
        rxBps: fc.double({ min: 0, max: 1e9, noNaN: true }),
        txBps: fc.double({ min: 0, max: 1e9, noNaN: true }),
      }),
      { maxLength: 3 },
    ),
    uptimeS: count,
    procs: count,
  })
  .map((payload) => ({ type: "vitals" as const, payload }));

const message: fc.Arbitrary<Message> = fc
  .tuple(fc.oneof(heartbeat, log, vitals), count, fc.option(count, { nil: undefined }))
  .map(
    ([body, ts, seq]) => ({ v: 1, ts, ...(seq === undefined ? {} : { seq }), ...body }) as Message,
  );

/** Cut `bytes` at the given offsets (any order, duplicates allowed). */
function cut(bytes: Buffer, offsets: number[]): Buffer[] {
  const points = [...new Set(offsets.map((o) => o % (bytes.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    parts.push(bytes.subarray(prev, p));
    prev = p;
  }
  return parts;
}

/** What JSON would make of a message: -0 becomes 0, and so on. */
function normalize(m: unknown): unknown {
  return JSON.parse(JSON.stringify(m));
}

test("codec - random messages, encoded and cut at random offsets, decode to the same list", () => {
  const encoder = new NdjsonEncoder();
  fc.assert(
    fc.property(
      fc.array(message, { maxLength: 12 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      (messages, offsets) => {
        const bytes = Buffer.concat(messages.map((m) => encoder.encode(m)));
        const decoder = new NdjsonDecoder();
        const out = cut(bytes, offsets).flatMap((chunk) => decoder.feed(chunk));
        assert.deepEqual(out, normalize(messages));
        assert.equal(decoder.buffered, 0);
      },
    ),
    { numRuns: 300 },
  );
});

test("codec - any split decodes the same: every byte boundary, including inside multi-byte characters", () => {
  const encoder = new NdjsonEncoder();
  const messages: Envelope[] = [
    { v: 1, type: "log", ts: 1, payload: { level: "info", msg: "52 °C ✓ 🍓 naïve" } },
    { v: 1, type: "heartbeat", ts: 2, seq: 1, payload: { dropped: 0 } },
  ];
  const bytes = Buffer.concat(messages.map((m) => encoder.encode(m)));
  for (let at = 0; at <= bytes.length; at++) {
    const decoder = new NdjsonDecoder();
    const out = [...decoder.feed(bytes.subarray(0, at)), ...decoder.feed(bytes.subarray(at))];
    assert.deepEqual(out, messages, `split at byte ${at}`);
  }
  const decoder = new NdjsonDecoder();
  assert.deepEqual(
    [...bytes].flatMap((b) => decoder.feed(Uint8Array.of(b))),
    messages,
    "fed one byte at a time",
  );
});

test("codec - the encoder never emits a raw newline inside a frame", () => {
  const encoder = new NdjsonEncoder();
  fc.assert(
    fc.property(fc.string({ unit: "binary" }), (msg) => {
      const frame = encoder.encode({ v: 1, type: "log", ts: 0, payload: { level: "info", msg } });
      assert.equal(frame.indexOf(0x0a), frame.length - 1, "the only newline ends the frame");
      assert.equal(frame.indexOf(0x0d), -1, "no carriage return either");
    }),
    { numRuns: 500 },
  );
});

test("codec - an oversized frame gives FrameTooLargeError naming the limit, holds no more than the limit, and the next frame decodes", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 64, max: 4096 }),
      fc.integer({ min: 1, max: 3 }),
      fc.array(fc.nat(), { maxLength: 10 }),
      (limit, times, offsets) => {
        const big = Buffer.from(
          `{"v":1,"type":"log","ts":1,"payload":{"level":"info","msg":"${"x".repeat(limit * times)}"}}\n`,
        );
        const ok = Buffer.from('{"v":1,"type":"ack","ts":1,"payload":{"seq":5}}\n');
        const decoder = new NdjsonDecoder(limit);
        const out: Array<unknown> = [];
        for (const chunk of cut(Buffer.concat([big, ok]), offsets)) {
          out.push(...decoder.feed(chunk));
          assert.ok(
            decoder.buffered <= limit,
            `held ${decoder.buffered} bytes with a limit of ${limit}`,
          );
        }
        assert.equal(out.length, 2);
        assert.ok(out[0] instanceof FrameTooLargeError);
        assert.equal(out[0].limit, limit);
        assert.match(out[0].message, new RegExp(`max_frame_bytes \\(${limit} bytes\\)`));
        assert.deepEqual(out[1], { v: 1, type: "ack", ts: 1, payload: { seq: 5 } });
      },
    ),
    { numRuns: 200 },
  );
});

test("codec - a frame of exactly the limit passes and one byte more does not", () => {
  const splitter = new FrameSplitter(0x0a, 10);
  assert.deepEqual(
    splitter.feed(Buffer.from("0123456789\n")).map((f) => Buffer.from(f as Uint8Array).toString()),
    ["0123456789"],
  );
  const [err] = splitter.feed(Buffer.from("0123456789A\n"));
  assert.ok(err instanceof FrameTooLargeError);
});

test("codec - the encoder refuses a frame over the limit instead of sending it", () => {
  const encoder = new NdjsonEncoder(100);
  assert.throws(
    () =>
      encoder.encode({
        v: 1,
        type: "log",
        ts: 1,
        payload: { level: "info", msg: "x".repeat(200) },
      }),
    (err: unknown) => err instanceof FrameTooLargeError && err.limit === 100,
  );
});

const VALID_VITALS = {
  cpu: { total: 12.5, perCore: [10, 15] },
  load: [0.5, 0.4, 0.3],
  temps: [{ zone: "thermal_zone0", type: "cpu-thermal", celsius: 48.2 }],
  rebootRequired: false,
  memory: { totalBytes: 4e9, usedBytes: 1e9, availableBytes: 3e9 },
  swap: { totalBytes: 1e8, usedBytes: 0 },
  disks: [{ mount: "/", usedBytes: 5e9, sizeBytes: 3e10 }],
  diskIo: { readBps: 0, writeBps: 4096 },
  net: [{ iface: "eth0", rxBps: 100, txBps: 200 }],
  uptimeS: 3600,
  procs: 120,
};

test("codec - an invalid payload names the failing field's path and keeps the request id", () => {
  assert.equal(
    parseEnvelope({ v: 1, type: "vitals", ts: 1, payload: VALID_VITALS }).type,
    "vitals",
  );
  const cases: Array<[unknown, string, string]> = [
    [
      {
        v: 1,
        type: "vitals",
        ts: 1,
        payload: { ...VALID_VITALS, cpu: { total: "high", perCore: [] } },
      },
      "E_INVALID_PAYLOAD",
      "/payload/cpu/total",
    ],
    [
      { v: 1, type: "vitals", ts: 1, payload: { ...VALID_VITALS, memory: undefined } },
      "E_INVALID_PAYLOAD",
      "/payload/memory",
    ],
    [
      {
        v: 1,
        type: "vitals",
        ts: 1,
        payload: { ...VALID_VITALS, net: [{ iface: "eth0", rxBps: -1, txBps: "x" }] },
      },
      "E_INVALID_PAYLOAD",
      "/payload/net/0/txBps",
    ],
    [
      { v: 1, type: "task.run", ts: 1, id: 12, payload: { task: "Bad Name", args: {} } },
      "E_INVALID_PAYLOAD",
      "/payload/task",
    ],
    [
      {
        v: 1,
        type: "hello",
        ts: 1,
        payload: { nodeId: "a", name: "n", version: "1", protocols: [], labels: {} },
      },
      "E_INVALID_PAYLOAD",
      "/payload/protocols",
    ],
  ];
  for (const [value, code, path] of cases) {
    assert.throws(
      () => parseEnvelope(value),
      (err: unknown) => err instanceof DecodeError && err.code === code && err.path === path,
      `${JSON.stringify(value)} → ${code} at ${path}`,
    );
  }
  try {
    parseEnvelope({
      v: 1,
      type: "task.run",
      ts: 1,
      id: 12,
      payload: { task: "Bad Name", args: {} },
    });
    assert.fail("a bad task name must not parse");
  } catch (err) {
    assert.ok(err instanceof DecodeError);
    assert.equal(err.id, 12, "the request id is kept so the error reply can reference it");
    assert.equal(err.messageType, "task.run");
  }
});

test("codec - legacy messages round-trip through any chunking", () => {
  const encoder = new LegacyEncoder();
  const legacy: fc.Arbitrary<LegacyMessage> = fc.record({
    type: fc.constantFrom("message", "machine_details", "node_baseinfo", "vitals", "info"),
    payload: fc.jsonValue().map((v) => normalize(v)),
  });
  fc.assert(
    fc.property(
      fc.array(legacy, { maxLength: 8 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      (messages, offsets) => {
        const bytes = Buffer.concat(messages.map((m) => encoder.encode(m)));
        const decoder = new LegacyDecoder();
        const out = cut(bytes, offsets).flatMap((c) => decoder.feed(c));
        assert.deepEqual(out, normalize(messages));
      },
    ),
    { numRuns: 200 },
  );
});
