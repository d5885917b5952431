import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { scratchDir } from "@picluster/common/testing";
import { nodeOsFacts } from "../../src/collectors/index.js";
import { topProcesses } from "../../src/collectors/processes.js";
import { tailLines } from "../../src/log-tail.js";

type Ctx = { after(fn: () => void): void };

function scratch(t: Ctx): string {
  const dir = scratchDir(t, "picluster-req-");
  return dir;
}

test("processes.top - a busy process tops the CPU list, read from this machine's /proc", async (t) => {
  const busy = spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" });
  t.after(() => busy.kill("SIGKILL"));
  await new Promise((resolve) => busy.once("spawn", resolve));
  const top = await topProcesses({ root: "/", os: nodeOsFacts() }, 5, 500);
  assert.ok(top.sampledMs >= 450, `sampled ${top.sampledMs} ms`);
  const mine = top.byCpu.find((p) => p.pid === busy.pid);
  assert.ok(
    mine,
    `the busy child is in the top 5: ${JSON.stringify(top.byCpu.map((p) => [p.pid, p.cpuPct]))}`,
  );
  // A spinning process, measured: well above an idle one's 0 %, though a
  // loaded machine (CI's neighbours) may give it far less than a whole core.
  assert.ok(mine.cpuPct > 10, `${mine.cpuPct}% of a core`);
  assert.match(mine.command, /for \(;;\) \{\}/);
  assert.equal(top.byMemory.length, 5);
  for (let i = 1; i < top.byMemory.length; i++)
    assert.ok(
      (top.byMemory[i - 1]?.rssBytes ?? 0) >= (top.byMemory[i]?.rssBytes ?? 0),
      "sorted by memory",
    );
});

test("processes.top - names with spaces and parentheses, users from passwd, vanished processes left out", async (t) => {
  const root = scratch(t);
  const proc = (pid: number, comm: string, ticks: number, rssKb: number, uid: number) => {
    mkdirSync(join(root, "proc", String(pid)), { recursive: true });
    const rest = Array.from({ length: 40 }, (_, i) =>
      i === 11 ? String(ticks) : i === 12 ? "0" : "0",
    );
    writeFileSync(
      join(root, "proc", String(pid), "stat"),
      `${pid} (${comm}) S ${rest.join(" ")}\n`,
    );
    writeFileSync(
      join(root, "proc", String(pid), "status"),
      `Name:\t${comm}\nUid:\t${uid}\t${uid}\t${uid}\t${uid}\nVmRSS:\t  ${rssKb} kB\n`,
    );
    writeFileSync(
      join(root, "proc", String(pid), "cmdline"),
      `/usr/bin/${comm.replaceAll(" ", "_")}\0--flag\0`,
    );
  };
  proc(10, "my (odd) name", 5, 2048, 1000);
  proc(11, "kworker/0:1", 1, 0, 0);
  // A process that ended between the directory listing and the read: no stat left.
  mkdirSync(join(root, "proc", "12"));
  mkdirSync(join(root, "etc"));
  writeFileSync(
    join(root, "etc", "passwd"),
    "root:x:0:0::/root:/bin/sh\npi:x:1000:1000::/home/pi:/bin/bash\n",
  );
  const top = await topProcesses({ root, os: nodeOsFacts() }, 10, 100);
  assert.deepEqual(
    top.byMemory.map((p) => [p.pid, p.name, p.user, p.rssBytes, p.command]),
    [
      [10, "my (odd) name", "pi", 2048 * 1024, "/usr/bin/my_(odd)_name --flag"],
      [11, "kworker/0:1", "root", 0, "/usr/bin/kworker/0:1 --flag"],
    ],
  );
  assert.equal(top.byCpu[0]?.cpuPct, 0, "no ticks between the two readings");
});

test("logs.tail - the last lines of a file, however long, with partial lines at the cut dropped", (t) => {
  const dir = scratch(t);
  const file = join(dir, "agent.log");
  const lines = Array.from(
    { length: 20_000 },
    (_, i) => `{"n":${i},"pad":"${"x".repeat(i % 50)}"}`,
  );
  writeFileSync(file, `${lines.join("\n")}\n`);
  assert.deepEqual(tailLines(file, 3), lines.slice(-3));
  assert.deepEqual(tailLines(file, 5_000), lines.slice(-5_000), "more than the first read brings");
  // Long lines: the reply keeps the newest that fit in one frame.
  const long = Array.from({ length: 1_000 }, (_, i) => `${i}:${"y".repeat(3_000)}`);
  writeFileSync(file, `${long.join("\n")}\n`);
  const fitted = tailLines(file, 1_000);
  assert.ok(fitted.length < 1_000 && fitted.length > 100, `${fitted.length} lines`);
  assert.equal(fitted.at(-1), long.at(-1));
  assert.ok(JSON.stringify(fitted).length < 600 * 1024);
  writeFileSync(file, "only\n");
  assert.deepEqual(tailLines(file, 10), ["only"]);
  writeFileSync(file, "");
  assert.deepEqual(tailLines(file, 10), []);
});
