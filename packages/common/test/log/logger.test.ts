import assert from "node:assert/strict";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { pino } from "pino";
import { startLiveness } from "../../src/log/liveness.js";
import { createLogger, type LineSink, LogOutput } from "../../src/log/logger.js";
import { ManualClock } from "../../src/testing/manual-clock.js";
import { scratchDir } from "../../src/testing/scratch.js";

function capture(): LineSink & { records(): Array<Record<string, unknown>> } {
  const lines: string[] = [];
  return {
    write: (line) => {
      lines.push(line);
    },
    records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

test("logger - writes one JSON line per call with level word, time, message, bindings and fields", () => {
  const sink = capture();
  const log = createLogger(sink, { level: "info", bindings: { role: "agent" } }).child({
    component: "outbox",
  });
  log.warn("outbox full, dropped oldest", { dropped: 3, capacity: 100 });
  log.debug("below the level");
  const [rec, ...rest] = sink.records();
  assert.equal(rest.length, 0, "debug is below info and not written");
  assert.equal(rec?.level, "warn");
  assert.equal(rec?.msg, "outbox full, dropped oldest");
  assert.equal(rec?.role, "agent");
  assert.equal(rec?.component, "outbox");
  assert.equal(rec?.dropped, 3);
  assert.equal(rec?.capacity, 100);
  assert.equal(rec?.pid, process.pid);
  assert.ok(!Number.isNaN(Date.parse(String(rec?.time))), "time is an ISO timestamp");
});

test("logger - its lines are pino's, key for key and in the same order (the format every log reader expects)", () => {
  const ours: string[] = [];
  const theirs: string[] = [];
  const log = createLogger(
    { write: (l) => ours.push(l) },
    { level: "debug", bindings: { role: "agent" } },
  );
  const p = pino(
    {
      level: "debug",
      base: { pid: process.pid, role: "agent" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    { write: (l: string) => theirs.push(l) },
  );
  const calls: Array<[string, Record<string, unknown> | undefined]> = [
    ["plain", undefined],
    ["with fields", { n: 1, text: 'a "quoted" line\nand a newline', nested: { a: [1, null] } }],
    ["unicode ✓ and nothing", {}],
    ["undefined left out", { gone: undefined, kept: false }],
  ];
  for (const [msg, fields] of calls) {
    log.child({ component: "outbox" }).info(msg, fields);
    p.child({ component: "outbox" }).info(fields ?? {}, msg);
  }
  log.trace("below the level");
  assert.equal(ours.length, theirs.length);
  const withoutTime = (l: string) => l.replace(/"time":"[^"]+"/, '"time":"T"');
  assert.deepEqual(ours.map(withoutTime), theirs.map(withoutTime));
});

test("logger - a field it cannot write as JSON does not throw: errors, bigints and cycles", () => {
  const sink = capture();
  const log = createLogger(sink, { level: "info" });
  const cycle: Record<string, unknown> = { name: "loop" };
  cycle.self = cycle;
  log.error("odd fields", { err: new TypeError("bad"), big: 10n ** 20n, cycle });
  const [rec] = sink.records();
  assert.ok(rec !== undefined);
  const err = rec.err as { type: string; message: string; stack: string };
  assert.equal(err.type, "TypeError");
  assert.equal(err.message, "bad");
  assert.match(err.stack, /TypeError: bad/);
  assert.equal(rec?.big, "100000000000000000000");
  assert.deepEqual(rec?.cycle, { name: "loop", self: "[Circular]" });
});

test("liveness - one alive record per interval with a rising counter, stopped by the signal", () => {
  const sink = capture();
  const clock = new ManualClock();
  const ac = new AbortController();
  startLiveness({
    log: createLogger(sink, { level: "info" }),
    clock,
    intervalMs: 10_000,
    signal: ac.signal,
    rss: () => 42 * 1024 * 1024,
    uptime: () => 12.4,
  });
  clock.advance(9_999);
  assert.equal(sink.records().length, 0, "nothing before the first interval");
  clock.advance(1);
  clock.advance(20_000);
  const records = sink.records();
  assert.deepEqual(
    records.map((r) => [r.msg, r.count]),
    [
      ["alive", 1],
      ["alive", 2],
      ["alive", 3],
    ],
  );
  assert.equal(records[0]?.rss_bytes, 42 * 1024 * 1024);
  assert.equal(records[0]?.uptime_s, 12);
  assert.equal(records[0]?.pid, process.pid);
  ac.abort();
  clock.advance(60_000);
  assert.equal(sink.records().length, 3, "no record after abort");
  assert.equal(clock.pending, 0, "no timer left behind");
});

test("log output - the console takes lines from its level up and routine lines only when asked; the file takes all", (t) => {
  const dir = scratchDir(t, "picluster-log-output-");
  const consolePath = join(dir, "console");
  const read = (path: string) =>
    readFileSync(path, "utf8")
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => (JSON.parse(l) as { msg: string }).msg);
  for (const routine of [false, true]) {
    const fd = openSync(consolePath, "w");
    const output = new LogOutput({
      console: { fd, level: "warn", routine },
      file: { dir, name: `role-${routine}.log`, maxBytes: 1024 * 1024, keep: 1 },
    });
    const log = createLogger(output, { level: "info" });
    log.info("listening");
    log.warn("disk nearly full");
    createLogger(output.routine, { level: "info" }).info("alive");
    output.close();
    closeSync(fd);
    assert.deepEqual(read(consolePath), ["disk nearly full", ...(routine ? ["alive"] : [])]);
    assert.deepEqual(read(join(dir, `role-${routine}.log`)), [
      "listening",
      "disk nearly full",
      "alive",
    ]);
  }
});
