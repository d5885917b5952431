import assert from "node:assert/strict";
import { test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { MessageMap } from "@picluster/common";
import { backoffMs, RECONNECT_BASE_MS } from "../../src/link.js";
import { Outbox } from "../../src/outbox.js";

const SAMPLE = {
  cpu: { total: 1, perCore: [] },
  temps: [],
  memory: { totalBytes: 1, usedBytes: 0, availableBytes: 1 },
  swap: { totalBytes: 0, usedBytes: 0 },
  disks: [],
  net: [],
} as MessageMap["vitals"];

test("outbox - bounded: past capacity the oldest is dropped and counted", () => {
  const box = new Outbox(3);
  const dropped = [1, 2, 3, 4, 5].map((i) => box.push("vitals", SAMPLE, i).droppedOldest);
  assert.deepEqual(dropped, [false, false, false, true, true]);
  assert.equal(box.dropped, 2);
  assert.deepEqual(
    box.pending().map((e) => e.seq),
    [3, 4, 5],
  );
});

test("outbox - acks are cumulative", () => {
  const box = new Outbox(10);
  for (let i = 0; i < 5; i++) box.push("vitals", SAMPLE, i);
  box.ack(3);
  assert.deepEqual(
    box.pending().map((e) => e.seq),
    [4, 5],
  );
  box.ack(2);
  assert.equal(box.size, 2, "an older ack changes nothing");
});

test("outbox - the first welcome continues numbering after the primary's last seq; later welcomes acknowledge", () => {
  const box = new Outbox(10);
  box.push("vitals", SAMPLE, 1);
  box.push("vitals", SAMPLE, 2);
  box.welcome(500);
  assert.deepEqual(
    box.pending().map((e) => e.seq),
    [501, 502],
    "samples taken before the first welcome are renumbered, never mistaken for stored ones",
  );
  assert.equal(box.push("vitals", SAMPLE, 3).entry.seq, 503);
  box.welcome(502);
  assert.deepEqual(
    box.pending().map((e) => e.seq),
    [503],
  );
});

test("outbox - a first welcome behind our numbering (a primary that lost its memory) changes nothing", () => {
  const box = new Outbox(10);
  box.push("vitals", SAMPLE, 1);
  box.welcome(0);
  assert.deepEqual(
    box.pending().map((e) => e.seq),
    [1],
  );
});

test("outbox - a long run stays bounded in memory (the dropped front is reclaimed)", () => {
  const box = new Outbox(100);
  for (let i = 0; i < 50_000; i++) {
    const { entry } = box.push("vitals", SAMPLE, i);
    if (i % 10 === 0) box.ack(entry.seq - 5);
  }
  assert.ok(box.size <= 100);
  assert.ok(
    (box as unknown as { entries: unknown[] }).entries.length < 3_000,
    "the backing array is compacted",
  );
});

// A full collection on demand, for checking what the outbox still holds.
setFlagsFromString("--expose-gc");
const collect = runInNewContext("gc") as () => void;

test("outbox - a sample the primary stored, or one dropped, is released at once, not when the array is compacted", async () => {
  const box = new Outbox(3);
  const refs: Array<WeakRef<object>> = [];
  for (let i = 0; i < 6; i++) {
    // A payload of its own per sample, as the collectors make.
    const payload = { ...SAMPLE, cpu: { total: i, perCore: [] } } as MessageMap["vitals"];
    refs.push(new WeakRef(payload));
    box.push("vitals", payload, i);
  }
  // Samples 1-3 were dropped (capacity 3); 4 and 5 are now stored; 6 is still owed.
  box.ack(5);
  assert.deepEqual(
    box.pending().map((e) => e.seq),
    [6],
  );
  // A WeakRef holds its target until the current job ends.
  await new Promise((resolve) => setImmediate(resolve));
  collect();
  assert.deepEqual(
    refs.map((r) => r.deref() !== undefined),
    [false, false, false, false, false, true],
    "only the sample still owed is held",
  );
});

test("link - reconnect waits use full jitter capped at reconnect_max", () => {
  assert.equal(
    backoffMs(0, 30_000, () => 0),
    0,
  );
  assert.equal(
    backoffMs(0, 30_000, () => 0.999_999),
    RECONNECT_BASE_MS - 1,
  );
  assert.equal(
    backoffMs(3, 30_000, () => 0.5),
    2_000,
  );
  assert.equal(
    backoffMs(20, 30_000, () => 0.999_999),
    29_999,
    "capped",
  );
  assert.equal(
    backoffMs(10_000, 30_000, () => 0.5),
    15_000,
    "no overflow for huge attempt counts",
  );
});

test("dial - a server showing a certificate is refused; a PSK server shows none", async () => {
  const { refuseCertificates } = await import("../../src/dial.js");
  assert.equal(refuseCertificates("primary", {}), undefined);
  assert.equal(refuseCertificates("primary", undefined), undefined);
  assert.match(
    String(refuseCertificates("primary", { subject: { CN: "evil.example" } })),
    /offered a certificate/,
  );
});

test("dial - stopping while a connection hangs in its handshake ends at once", async (t) => {
  const { createServer } = await import("node:net");
  const { dial } = await import("../../src/dial.js");
  // Accepts TCP, never answers TLS.
  const server = createServer(() => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  const ac = new AbortController();
  const started = Date.now();
  const attempt = dial(
    {
      host: "127.0.0.1",
      port,
      credential: { identity: "n-x", key: Buffer.alloc(32) },
      timeoutMs: 10_000,
    },
    ac.signal,
  );
  setImmediate(() => ac.abort());
  await assert.rejects(
    attempt,
    (err: unknown) => err instanceof Error && (err as { code?: string }).code === "E_ABORTED",
  );
  assert.ok(Date.now() - started < 1_000);
});
