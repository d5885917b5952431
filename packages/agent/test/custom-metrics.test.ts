import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { type CustomMetricDef, createLogger } from "@picluster/common";
import { ManualClock, scratchDir } from "@picluster/common/testing";
import { CustomMetrics } from "../src/custom-metrics.js";

function def(name: string, over: Partial<CustomMetricDef>): CustomMetricDef {
  return {
    name,
    command: [],
    file: "",
    intervalMs: 10_000,
    timeoutMs: 2_000,
    where: "test:1",
    ...over,
  };
}

function setup(t: { after(fn: () => void): void }, defs: CustomMetricDef[], maxSeries = 100) {
  const dir = scratchDir(t, "picluster-custom-agent-");
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger({ write: (l) => lines.push(JSON.parse(l)) }, { level: "debug" });
  const clock = new ManualClock();
  const custom = new CustomMetrics({ defs, maxSeries, clock, log, cwd: dir });
  return { dir, lines, clock, custom };
}

test("custom metrics (agent) - real programs and files, each failure said once, stale values not sent", async (t) => {
  const dir = scratchDir(t, "picluster-custom-src-");
  const file = join(dir, "value.prom");
  writeFileSync(file, 'disk_wear{disk="mmcblk0"} 7\n');
  const { lines, clock, custom } = setup(t, [
    def("queue", { command: ["/usr/bin/printf", "queue_depth %d\\n", "42"] }),
    def("wear", { file }),
    def("bare", { command: ["/bin/echo", "3.5"], intervalMs: 60_000 }),
    def("broken", { command: ["/bin/sh", "-c", "echo cannot reach the queue >&2; exit 4"] }),
    def("slow", { command: ["/bin/sleep", "5"], timeoutMs: 300 }),
    def("missing", { file: join(dir, "absent.prom") }),
  ]);
  await custom.collectAll();
  assert.deepEqual(custom.current(), [
    { series: "queue_depth", value: 42 },
    { series: 'disk_wear{disk="mmcblk0"}', value: 7 },
    { series: "bare", value: 3.5 },
  ]);
  const failed = lines.filter((l) => l.msg === "custom metric failed");
  assert.deepEqual(failed.map((l) => [l.metric, l.err]).sort(), [
    ["broken", "exit status 4: cannot reach the queue"],
    ["missing", `ENOENT: no such file or directory, open '${join(dir, "absent.prom")}'`],
    ["slow", "timed out after 300 ms"],
  ]);
  // Failing again says nothing new; working again says so once.
  await custom.collectAll();
  assert.equal(lines.filter((l) => l.msg === "custom metric failed").length, 3);
  writeFileSync(join(dir, "absent.prom"), "found 1\n");
  await custom.collectAll();
  assert.ok(lines.some((l) => l.msg === "custom metric collected again" && l.metric === "missing"));
  assert.ok(custom.current().some((c) => c.series === "found"));

  // Two intervals (and the timeout) without a fresh value: no longer sent.
  clock.advance(2 * 10_000 + 2_000 + 1);
  assert.deepEqual(custom.current(), [{ series: "bare", value: 3.5 }]);
});

test("custom metrics (agent) - at most max_custom_series sent, in section order, the rest logged once", async (t) => {
  const { lines, custom } = setup(
    t,
    [
      def("a", { command: ["/usr/bin/printf", "a1 1\\na2 2\\n"] }),
      def("b", { command: ["/usr/bin/printf", "b1 1\\nb2 2\\n"] }),
    ],
    3,
  );
  await custom.collectAll();
  assert.deepEqual(
    custom.current().map((c) => c.series),
    ["a1", "a2", "b1"],
  );
  custom.current();
  const over = lines.filter((l) => String(l.msg).startsWith("more custom series"));
  assert.equal(over.length, 1);
  assert.equal(over[0]?.dropped, 1);
});
