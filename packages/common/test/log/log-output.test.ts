import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  closeSync,
  constants,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createLogger, LOG_FILE_RETRY_MS, LogOutput } from "../../src/log/logger.js";
import { ManualClock } from "../../src/testing/manual-clock.js";
import { scratchDir } from "../../src/testing/scratch.js";
import { fillDisk, mountTmpfs, remount } from "../../src/testing/tmpfs.js";

/** A file standing in for the console (stderr), read back as JSON records. */
function fakeConsole(t: { after(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), "picluster-console-"));
  const path = join(dir, "console");
  const fd = openSync(path, "a");
  t.after(() => {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    fd,
    records: () =>
      readFileSync(path, "utf8")
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** Every line of the log file and its rotations, oldest file first; a torn line stays text. */
function fileLines(dir: string): Array<Record<string, unknown> | string> {
  const files = readdirSync(dir)
    .filter((f) => f.startsWith("primary.log"))
    .sort((a, b) => b.localeCompare(a));
  return files.flatMap((f) =>
    readFileSync(join(dir, f), "utf8")
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return l;
        }
      }),
  );
}

const PAD = "x".repeat(200);

test("log output - a full disk: file lines are dropped and counted, never thrown; the console gets every line; the file is retried every 10 s and then says how many it missed", (t) => {
  const mount = mountTmpfs(t, "1m");
  if ("skip" in mount) return t.skip(mount.skip);
  const dir = join(mount.dir, "log");
  const clock = new ManualClock();
  const cons = fakeConsole(t);
  const output = new LogOutput({
    console: { fd: cons.fd },
    file: { dir, name: "primary.log", maxBytes: 16 * 1024, keep: 2 },
    clock,
  });
  t.after(() => output.close());
  const log = createLogger(output, { level: "info" });
  log.info("before", { n: 0 });
  const filler = join(mount.dir, "filler");
  fillDisk(filler);

  // Far past what the file's last page holds and past its rotation size.
  for (let n = 1; n <= 300; n++) log.info("while full", { n, pad: PAD });
  assert.ok(output.fileLinesDropped > 0, "lines were dropped");
  // Retried after 10 s: still full, so still dropped.
  clock.advance(LOG_FILE_RETRY_MS);
  log.info("while full", { n: 301, pad: PAD });
  const droppedWhileFull = output.fileLinesDropped;
  const onConsole = cons.records();
  assert.equal(onConsole.filter((r) => r.msg === "while full").length, 301, "the console got all");
  const warned = onConsole.filter(
    (r) => r.msg === "the log file cannot be written; logging to the console only",
  );
  assert.equal(warned.length, 1, "the console is told once");
  assert.equal(warned[0]?.code, "ENOSPC");
  assert.equal(warned[0]?.level, "warn");

  rmSync(filler);
  log.info("after", { n: 302 });
  assert.equal(output.fileLinesDropped, droppedWhileFull + 1, "not retried before its time");
  clock.advance(LOG_FILE_RETRY_MS);
  log.info("after", { n: 303 });
  assert.equal(output.fileLinesDropped, droppedWhileFull + 1, "written again");

  const lines = fileLines(dir);
  const records = lines.filter((l): l is Record<string, unknown> => typeof l !== "string");
  assert.ok(lines.length - records.length <= 1, "at most the line cut by the full disk is torn");
  const summary = records.find((r) => r.msg === "log lines were not written to this file");
  assert.ok(summary !== undefined, "the file says it missed lines");
  assert.equal(summary.dropped, droppedWhileFull + 1);
  assert.equal(summary.code, "ENOSPC");
  assert.deepEqual(
    records.slice(-2).map((r) => r.msg),
    ["log lines were not written to this file", "after"],
    "the count first, then the lines again",
  );
  assert.ok(
    cons.records().some((r) => r.msg === "the log file is written again"),
    "the console is told it is back",
  );
});

test("log output - a read-only file system: nothing thrown, the file picks up again once it is writable", (t) => {
  const mount = mountTmpfs(t, "1m");
  if ("skip" in mount) return t.skip(mount.skip);
  const dir = join(mount.dir, "log");
  const clock = new ManualClock();
  const cons = fakeConsole(t);
  const output = new LogOutput({
    console: { fd: cons.fd },
    file: { dir, name: "primary.log", maxBytes: 16 * 1024, keep: 2 },
    clock,
  });
  t.after(() => output.close());
  const log = createLogger(output, { level: "info" });
  log.info("before");
  // Closed, so that the next line has to open it again: on a read-only file system.
  output.close();
  remount(mount.dir, "ro");
  for (let n = 0; n < 200; n++) log.info("read-only", { n, pad: PAD });
  assert.equal(output.fileLinesDropped, 200);
  remount(mount.dir, "rw");
  clock.advance(LOG_FILE_RETRY_MS);
  log.info("writable");
  const records = fileLines(dir).filter((l): l is Record<string, unknown> => typeof l !== "string");
  const summary = records.find((r) => r.msg === "log lines were not written to this file");
  assert.equal(summary?.dropped, 200);
  assert.equal(summary?.code, "EROFS");
  assert.equal(records.at(-1)?.msg, "writable");
  assert.equal(cons.records().filter((r) => r.msg === "read-only").length, 200);
});

test("log output - an error that is not about the disk (a directory where the file should be) still throws", (t) => {
  const dir = scratchDir(t, "picluster-log-");
  mkdirSync(join(dir, "primary.log"));
  const output = new LogOutput({ file: { dir, name: "primary.log", maxBytes: 1024, keep: 1 } });
  assert.throws(() => output.write('{"msg":"x"}\n'), { code: "EISDIR" });
});

test("log output - a console that does not keep up (a full non-blocking pipe: EAGAIN) is waited for once, then its lines are dropped and counted, never thrown; it says how many when it takes lines again", (t) => {
  const dir = scratchDir(t, "picluster-pipe-");
  const fifo = join(dir, "console");
  execFileSync("mkfifo", [fifo]);
  // Read-write and non-blocking: stderr to a slow journal, as Node leaves it.
  const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
  t.after(() => closeSync(fd));
  const chunk = Buffer.alloc(4096, 0x2e);
  for (;;) {
    try {
      writeSync(fd, chunk);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
      break;
    }
  }
  // Whatever room is left is filled by the first lines; from then on the pipe is full.
  const output = new LogOutput({ console: { fd, stallMs: 50 } });
  const log = createLogger(output, { level: "info" });
  const started = Date.now();
  for (let n = 0; n < 100; n++) log.info("while stalled", { n, pad: PAD });
  const tookMs = Date.now() - started;
  assert.ok(output.consoleLinesDropped > 90, `dropped ${output.consoleLinesDropped}`);
  assert.ok(tookMs < 1_000, `waited once, not for every line (${tookMs} ms)`);

  // The reader catches up.
  const buf = Buffer.alloc(65536);
  const drain = () => {
    let text = "";
    for (;;) {
      try {
        const n = readSync(fd, buf);
        if (n === 0) return text;
        text += buf.subarray(0, n).toString();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
        return text;
      }
    }
  };
  drain();
  const dropped = output.consoleLinesDropped;
  log.info("caught up");
  const lines = drain()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    lines.map((r) => r.msg),
    ["log lines were not written to the console", "caught up"],
  );
  assert.equal(lines[0]?.dropped, dropped);
  assert.equal(output.consoleLinesDropped, dropped, "nothing dropped once it keeps up");
});
