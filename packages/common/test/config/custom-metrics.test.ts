import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError } from "../../src/errors.js";
import { iniFile } from "../support/ini-file.js";

test("config custom metrics - [metrics.NAME] sections: a program's words or a file, an interval and a timeout", (t) => {
  const { load: read, file } = iniFile(
    t,
    [
      "[agent]",
      "max_custom_series = 20",
      "[metrics.queue]",
      "command = /usr/local/bin/queue-depth --format 'name value'",
      "interval = 15s",
      "timeout = 2s",
      "[metrics.backup]",
      "file = /var/lib/node_exporter/textfile/backup.prom",
      "",
    ].join("\n"),
  );
  const { config } = read();
  assert.equal(config.agent.max_custom_series, 20);
  assert.deepEqual(config.metrics.queue, {
    name: "queue",
    command: ["/usr/local/bin/queue-depth", "--format", "name value"],
    file: "",
    intervalMs: 15_000,
    timeoutMs: 2_000,
    where: `${file}:3`,
  });
  assert.equal(config.metrics.backup?.file, "/var/lib/node_exporter/textfile/backup.prom");
  assert.equal(config.metrics.backup?.intervalMs, 30_000, "the default interval");
  assert.equal(config.metrics.backup?.timeoutMs, 10_000, "the default timeout");
});

test("config custom metrics - every mistake named with its file and line", (t) => {
  const { load: read, file } = iniFile(
    t,
    [
      "[metrics.Bad-Name]",
      "file = /x",
      "[metrics.both]",
      "command = /bin/true",
      "file = /x",
      "[metrics.none]",
      "interval = 10s",
      "[metrics.slow]",
      "command = /bin/true",
      "interval = 5s",
      "timeout = 10s",
      "[metrics.rel]",
      "file = relative/path",
      "shell = yes",
      "",
    ].join("\n"),
  );
  assert.throws(read, (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    const lines = err.problems.map((p) => `${p.where}: ${p.message}`);
    assert.deepEqual(lines, [
      `${file}:1: [metrics.Bad-Name]: a metric name is lowercase letters, digits or '_', starting with a letter (64 at most)`,
      `${file}:3: [metrics.both] sets both command and file: one or the other`,
      `${file}:6: [metrics.none] has neither command nor file`,
      `${file}:11: [metrics.slow] timeout: 10s is longer than the interval (5s)`,
      `${file}:13: [metrics.rel] file: must be an absolute path`,
      `${file}:14: [metrics.rel] unknown key "shell" (a metric has command, file, interval, timeout)`,
    ]);
    return true;
  });
});
