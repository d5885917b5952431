import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { waitFor } from "@picluster/common/testing";
import { alertFiring, httpPort, scratchDir, startAgent, startPrimary } from "./support/cluster.js";

/** A node_exporter textfile, as a backup script would leave it. */
const TEXTFILE = [
  "# HELP backup_last_success_timestamp_seconds When the last backup finished.",
  "# TYPE backup_last_success_timestamp_seconds gauge",
  'backup_last_success_timestamp_seconds{job="nightly"} 1.7650944e+09',
  "# TYPE backup_size_bytes gauge",
  'backup_size_bytes{target="nas",job="nightly"} 123456',
  'backup_size_bytes{job="nightly",target="usb"} NaN',
  "",
].join("\n");

test("custom metrics - a node's own series from a program and a file: current values, stored series, /metrics with the node's labels, an alert rule on one", async (t) => {
  const dir = scratchDir(t, "picluster-custom-");
  const queueFile = join(dir, "queue.txt");
  writeFileSync(queueFile, "queue_depth 42\n");
  const textfile = join(dir, "backup.prom");
  writeFileSync(textfile, TEXTFILE);
  const primaryIni = [
    "[alert.queue_high]",
    "when = custom.queue_depth > 100",
    "severity = warning",
    "",
  ].join("\n");
  const p = await startPrimary(
    t,
    { "primary.vitals_interval": "1s" },
    undefined,
    undefined,
    primaryIni,
  );
  const agentIni = [
    // A real program (no shell: /bin/cat and its argument), its output read as `name value` lines.
    "[metrics.queue]",
    `command = /bin/cat ${queueFile}`,
    "interval = 1s",
    "timeout = 1s",
    "[metrics.backup]",
    `file = ${textfile}`,
    "interval = 1s",
    // Fails at every interval: said once in the log, the other sections go on.
    "[metrics.broken]",
    "command = /bin/sh -c 'echo no such queue >&2; exit 3'",
    "interval = 1s",
    "",
  ].join("\n");
  const agent = startAgent(t, p, "pi-custom", {}, "pi4", agentIni);
  const base = `http://127.0.0.1:${httpPort(p)}`;
  const node = () => p.primary.registry.list().find((n) => n.name === "pi-custom");
  await waitFor(
    () => (node()?.vitals?.custom?.length ?? 0) >= 3,
    "a vitals sample with the custom series",
    15_000,
  );
  const id = node()?.id ?? "";

  // The current series, canonical (labels sorted), the NaN left out.
  const list = (await (await fetch(`${base}/api/nodes/${id}/custom`)).json()) as {
    series: Array<{ series: string; value: number | null; at: number | null }>;
  };
  assert.deepEqual(
    list.series.map((s) => [s.series, s.value]),
    [
      ['backup_last_success_timestamp_seconds{job="nightly"}', 1.7650944e9],
      ['backup_size_bytes{job="nightly",target="nas"}', 123456],
      ["queue_depth", 42],
    ],
  );
  assert.ok(list.series.every((s) => typeof s.at === "number"));

  // Exported with the node's labels, a family per series name.
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, /^# TYPE picluster_custom_queue_depth gauge$/m);
  assert.match(
    metrics,
    new RegExp(`^picluster_custom_queue_depth\\{node_id="${id}",name="pi-custom"[^}]*\\} 42$`, "m"),
  );
  assert.match(
    metrics,
    /^picluster_custom_backup_size_bytes\{node_id="[^"]+",name="pi-custom",[^}]*job="nightly",target="nas"\} 123456$/m,
  );
  assert.doesNotMatch(metrics, /target="usb"/);

  // The failing section: one warning naming it, however many intervals failed.
  await waitFor(
    () => agent.records.some((r) => r.msg === "custom metric failed" && r.metric === "broken"),
    "the broken section's warning",
    5_000,
  );
  const warning = agent.records.find((r) => r.msg === "custom metric failed");
  assert.match(String(warning?.err), /exit status 3: no such queue/);

  // The queue grows: the rule on custom.queue_depth fires.
  writeFileSync(queueFile, "queue_depth 150\n");
  await waitFor(
    () => alertFiring(base, "queue_high", "pi-custom", 150),
    "queue_high firing on pi-custom",
    10_000,
    200,
  );
  assert.equal(
    agent.records.filter((r) => r.msg === "custom metric failed" && r.metric === "broken").length,
    1,
  );

  // Stored: the series as the charts ask for it, 42 then 150.
  const series = (await (
    await fetch(
      `${base}/api/nodes/${id}/vitals?metric=${encodeURIComponent("custom.queue_depth")}&from=${Date.now() - 600_000}`,
    )
  ).json()) as { resolution: string; points: Array<{ min: number | null; max: number | null }> };
  assert.equal(series.resolution, "raw");
  const values = series.points.flatMap((pt) => [pt.min, pt.max]).filter((v) => v !== null);
  assert.ok(values.includes(42) && values.includes(150), `stored ${values.join(", ")}`);
  const labelled = (await (
    await fetch(
      `${base}/api/nodes/${id}/vitals?metric=${encodeURIComponent('custom.backup_size_bytes{job="nightly",target="nas"}')}&from=${Date.now() - 600_000}`,
    )
  ).json()) as { points: Array<{ avg: number | null }> };
  assert.ok(labelled.points.some((pt) => pt.avg === 123456));
  const bad = await fetch(`${base}/api/nodes/${id}/vitals?metric=custom.bad%20name`);
  assert.equal(bad.status, 400);
});
