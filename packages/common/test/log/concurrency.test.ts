import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { MessageChannel, Worker } from "node:worker_threads";
import { createLogger, LogOutput, receivePortLines } from "../../src/log/logger.js";
import { scratchDir } from "../../src/testing/scratch.js";

const WORKERS = 8;
const LINES = 10_000;
const ASYNC_TASKS = 8;
const ASYNC_LINES = 500;

/** Every line of `name` and its rotated files, oldest first. */
function readAllLines(dir: string, name: string): string[] {
  const files = readdirSync(dir)
    .filter((f) => f === name || f.startsWith(`${name}.`))
    .sort((a, b) => Number(b.slice(name.length + 1) || 0) - Number(a.slice(name.length + 1) || 0));
  return files.flatMap((f) =>
    readFileSync(join(dir, f), "utf8")
      .split("\n")
      .filter((l) => l !== ""),
  );
}

test("log - 8 workers and async tasks logging at once never tear, lose or reorder a line, across rotations", async (t) => {
  const dir = scratchDir(t, "picluster-log-");
  const output = new LogOutput({
    file: { dir, name: "test.log", maxBytes: 512 * 1024, keep: 100 },
  });
  t.after(() => output.close());

  let finished = 0;
  let allDone: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    allDone = resolve;
  });
  // Per-port order is preserved, so a worker's "last" line means all of its lines are written.
  const sink = {
    write(line: string) {
      output.write(line);
      if (line.includes('"msg":"last"') && ++finished === WORKERS) allDone();
    },
  };

  const workers: Worker[] = [];
  for (let w = 0; w < WORKERS; w++) {
    const { port1, port2 } = new MessageChannel();
    receivePortLines(port1, sink);
    const worker = new Worker(new URL("../support/log-worker.js", import.meta.url), {
      workerData: { port: port2, worker: w, lines: LINES },
      transferList: [port2],
    });
    // Closed only at the end: closing on the worker's exit would drop lines still queued.
    t.after(() => port1.close());
    t.after(() => worker.terminate());
    workers.push(worker);
  }

  const main = createLogger(output, { level: "info", bindings: { worker: "main" } });
  await Promise.all(
    Array.from({ length: ASYNC_TASKS }, async (_, task) => {
      for (let n = 0; n < ASYNC_LINES; n++) {
        main.info("async", { task, n });
        if (n % 50 === 0) await new Promise((r) => setImmediate(r));
      }
    }),
  );

  const timeout = setTimeout(() => allDone(), 60_000);
  await done;
  clearTimeout(timeout);
  assert.equal(finished, WORKERS, "every worker's last line arrived within 60 s");

  const lines = readAllLines(dir, "test.log");
  const seen = new Map<string, number[]>();
  for (const line of lines) {
    const rec = JSON.parse(line) as {
      worker: number | string;
      n: number;
      msg: string;
      task?: number;
      level: string;
    };
    assert.equal(rec.level, "info");
    if (rec.msg === "last") continue;
    const key = rec.msg === "async" ? `task${rec.task}` : `worker${rec.worker}`;
    const list = seen.get(key) ?? [];
    list.push(rec.n);
    seen.set(key, list);
  }
  for (let w = 0; w < WORKERS; w++) {
    const got = seen.get(`worker${w}`) ?? [];
    assert.equal(got.length, LINES, `worker ${w} wrote every line`);
    assert.deepEqual(
      got,
      Array.from({ length: LINES }, (_, i) => i),
      `worker ${w}'s lines are in order`,
    );
  }
  for (let task = 0; task < ASYNC_TASKS; task++) {
    assert.equal(
      seen.get(`task${task}`)?.length,
      ASYNC_LINES,
      `async task ${task} wrote every line`,
    );
  }
  const files = readdirSync(dir).filter((f) => f.startsWith("test.log"));
  assert.ok(files.length >= 5, `several rotations happened (files: ${files.length})`);
});
