import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { type Config, loadConfig, silentLogger } from "@picluster/common";
import { processAlive, scratchDir, waitFor } from "@picluster/common/testing";
import { resolveTask, taskCatalog } from "../../src/tasks/catalog.js";
import { TaskError, TaskExecutor } from "../../src/tasks/executor.js";
import { runProcess } from "../../src/tasks/runner.js";

type Ctx = { after(fn: () => void): void };

function scratch(t: Ctx): string {
  const dir = scratchDir(t, "picluster-task-");
  return dir;
}

function configWith(t: Ctx, ini: string): Config {
  const dir = scratch(t);
  const file = join(dir, "agent.ini");
  writeFileSync(file, ini);
  return loadConfig({ env: {}, configPath: file, paths: { cwd: dir, home: dir, uid: 1000 } })
    .config;
}

const SPAWN_GRANDCHILD = (pidFile: string) => [
  "/bin/sh",
  "-c",
  // A grandchild that would outlive its parent, and a parent that waits.
  `sleep 300 & echo $! > ${pidFile}; wait`,
];

test("tasks runner - a timeout kills the whole process group, grandchildren included", async (t) => {
  const dir = scratch(t);
  const pidFile = join(dir, "grandchild.pid");
  const result = await runProcess(
    {
      argv: SPAWN_GRANDCHILD(pidFile),
      cwd: dir,
      env: { PATH: "/usr/bin:/bin" },
      timeoutMs: 1_000,
      outputLimit: 1024,
    },
    () => {},
  );
  assert.equal(result.stopped, "timeout");
  assert.equal(result.signal, "SIGTERM");
  const grandchild = Number(readFileSync(pidFile, "utf8"));
  await waitFor(() => !processAlive(grandchild), "grandchild gone", 3_000);
});

test("tasks runner - a cancel kills the whole process group", async (t) => {
  const dir = scratch(t);
  const pidFile = join(dir, "grandchild.pid");
  const abort = new AbortController();
  const running = runProcess(
    {
      argv: SPAWN_GRANDCHILD(pidFile),
      cwd: dir,
      env: { PATH: "/usr/bin:/bin" },
      timeoutMs: 60_000,
      outputLimit: 1024,
    },
    () => {},
    abort.signal,
  );
  await waitFor(
    () => existsSync(pidFile) && readFileSync(pidFile, "utf8").trim() !== "",
    "grandchild started",
    5_000,
  );
  abort.abort();
  const result = await running;
  assert.equal(result.stopped, "cancel");
  const grandchild = Number(readFileSync(pidFile, "utf8"));
  await waitFor(() => !processAlive(grandchild), "grandchild gone", 3_000);
});

test("tasks runner - a task's background processes end when it does", async (t) => {
  const dir = scratch(t);
  const pidFile = join(dir, "bg.pid");
  const result = await runProcess(
    {
      argv: ["/bin/sh", "-c", `sleep 300 >/dev/null 2>&1 & echo $! > ${pidFile}; exit 3`],
      cwd: dir,
      env: { PATH: "/usr/bin:/bin" },
      timeoutMs: 10_000,
      outputLimit: 1024,
    },
    () => {},
  );
  assert.equal(result.exitCode, 3);
  assert.equal(result.stopped, undefined);
  const bg = Number(readFileSync(pidFile, "utf8"));
  await waitFor(() => !processAlive(bg), "background process gone", 3_000);
});

test("tasks runner - output arrives in chunks as produced, bounded, with truncation reported", async (t) => {
  const dir = scratch(t);
  const chunks: Array<{ stream: string; data: string; at: number }> = [];
  const t0 = performance.now();
  const result = await runProcess(
    {
      argv: [
        "/bin/sh",
        "-c",
        "echo first; sleep 0.5; echo err >&2; head -c 5000 /dev/zero | tr '\\0' x",
      ],
      cwd: dir,
      env: { PATH: "/usr/bin:/bin" },
      timeoutMs: 10_000,
      outputLimit: 1000,
    },
    (stream, data) => chunks.push({ stream, data, at: performance.now() - t0 }),
  );
  assert.equal(result.exitCode, 0);
  assert.equal(result.truncated, true);
  assert.equal(chunks[0]?.data, "first\n");
  assert.ok(
    (chunks[0]?.at ?? 1e9) < 400,
    `first line came before the sleep ended (${chunks[0]?.at} ms)`,
  );
  assert.ok(chunks.some((c) => c.stream === "stderr" && c.data === "err\n"));
  const total = chunks.reduce((n, c) => n + Buffer.byteLength(c.data), 0);
  assert.equal(total, 1000, "exactly the limit is handed on");
});

test("tasks executor - only tasks in the node's own config run; others are refused before anything starts", async (t) => {
  const config = configWith(t, "[tasks]\nversion = off\n[task.hello]\ncommand = /bin/echo hello\n");
  const catalog = taskCatalog(config, "9.9.9");
  assert.deepEqual([...catalog.keys()].sort(), ["hello", "time", "updates.check"]);
  const exec = new TaskExecutor({
    catalog,
    maxRunning: 1,
    outputLimit: 4096,
    defaultCwd: tmpdir(),
    log: silentLogger(),
    onPowerAction: () => assert.fail("no power action"),
  });
  for (const task of ["reboot", "version", "rm", "hello;reboot"]) {
    await assert.rejects(
      exec.run(1, { task, args: {} }, () => {}),
      (err: unknown) => err instanceof TaskError && err.code === "E_NOT_ALLOWED",
      task,
    );
  }
  let out = "";
  const result = await exec.run(2, { task: "hello", args: {} }, (_s, d) => {
    out += d;
  });
  assert.equal(result.exitCode, 0);
  assert.equal(out, "hello\n");
  await assert.rejects(
    exec.run(3, { task: "hello", args: { extra: "x" } }, () => {}),
    (err: unknown) =>
      err instanceof TaskError && err.code === "E_BAD_ARGS" && err.path === "/payload/args/extra",
  );
});

test("tasks executor - injection attempts fail validation or reach the program as one literal argument", async (t) => {
  const config = configWith(
    t,
    [
      "[task.say]",
      "command = /usr/bin/printf '[%%s]' {msg}",
      "arg.msg = string",
      "[task.strict]",
      "command = /usr/bin/printf '[%%s]' {name}",
      "arg.name = string [a-z]{1,16}",
      "",
    ].join("\n"),
  );
  const exec = new TaskExecutor({
    catalog: taskCatalog(config, "9.9.9"),
    maxRunning: 4,
    outputLimit: 4096,
    defaultCwd: tmpdir(),
    log: silentLogger(),
    onPowerAction: () => {},
  });
  const run = async (task: string, args: Record<string, string>) => {
    let out = "";
    await exec.run(7, { task, args }, (_s, d) => {
      out += d;
    });
    return out;
  };
  for (const literal of [
    "; rm -rf /",
    "$(id)",
    "`id`",
    "a b  c",
    "'quoted' \"double\"",
    "*",
    "~root",
    "x && reboot",
  ]) {
    assert.equal(
      await run("say", { msg: literal }),
      `[${literal}]`,
      `one literal argument: ${literal}`,
    );
  }
  for (const refused of ["-rf", "--help", "line\nbreak", "tab\there", "nul\u0000"]) {
    await assert.rejects(
      run("say", { msg: refused }),
      (err: unknown) => err instanceof TaskError && err.code === "E_BAD_ARGS",
      JSON.stringify(refused),
    );
  }
  for (const refused of ["abc; id", "$(id)", "ABC", ""]) {
    await assert.rejects(
      run("strict", { name: refused }),
      (err: unknown) => err instanceof TaskError && err.code === "E_BAD_ARGS",
      refused,
    );
  }
  assert.equal(await run("strict", { name: "web" }), "[web]");
});

test("tasks executor - at most max_running at once, and a cancel by request id stops one", async (t) => {
  const config = configWith(t, "[task.wait]\ncommand = /bin/sleep 30\n");
  const exec = new TaskExecutor({
    catalog: taskCatalog(config, "9.9.9"),
    maxRunning: 1,
    outputLimit: 4096,
    defaultCwd: tmpdir(),
    log: silentLogger(),
    onPowerAction: () => {},
  });
  const first = exec.run(1, { task: "wait", args: {} }, () => {});
  await assert.rejects(
    exec.run(2, { task: "wait", args: {} }, () => {}),
    (err: unknown) => err instanceof TaskError && err.code === "E_BUSY",
  );
  assert.equal(exec.cancel(1), true);
  const result = await first;
  assert.equal(result.signal, "SIGTERM");
  assert.equal(exec.size, 0);
});

test("tasks catalog - a disruptive built-in stays off unless switched on, even when a section redefines it", (t) => {
  const off = taskCatalog(configWith(t, "[task.reboot]\ncommand = /bin/true\n"), "1");
  assert.equal(off.has("reboot"), false);
  const on = taskCatalog(
    configWith(t, "[tasks]\nreboot = on\n[task.reboot]\ncommand = /bin/true\n"),
    "1",
  );
  assert.equal(on.get("reboot")?.effect, "reboot");
  assert.deepEqual(resolveTask(on, "reboot", {}), {
    task: on.get("reboot"),
    argvs: [["/bin/true"]],
  });
});

test("tasks runner - a process that escaped the group and holds the pipes does not keep the run open", async (t) => {
  const dir = scratch(t);
  const pidFile = join(dir, "escaped.pid");
  t.after(() => {
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, "utf8")) : 0;
    if (pid > 0 && processAlive(pid)) process.kill(pid, "SIGKILL");
  });
  const started = performance.now();
  const result = await runProcess(
    {
      argv: [
        "/bin/sh",
        "-c",
        // Exit only once the escaped process runs in its own session.
        `setsid sh -c 'echo $$ > ${pidFile}; exec sleep 30' & while [ ! -s ${pidFile} ]; do sleep 0.05; done; echo started`,
      ],
      cwd: dir,
      env: { PATH: "/usr/bin:/bin" },
      timeoutMs: 20_000,
      outputLimit: 1024,
    },
    () => {},
  );
  assert.equal(result.exitCode, 0);
  const pid = Number(readFileSync(pidFile, "utf8"));
  assert.ok(processAlive(pid), "the escaped process still holds the pipes");
  assert.ok(performance.now() - started < 5_000, `ended after ${performance.now() - started} ms`);
});

test("tasks catalog - a refusal names the fix: the [tasks] switch for a built-in, a [task.NAME] section for one of your own", (t) => {
  const catalog = taskCatalog(configWith(t, "[tasks]\nversion = off\n"), "1");
  const refusal = (name: string) => {
    const r = resolveTask(catalog, name, {});
    assert.ok("code" in r && r.code === "E_NOT_ALLOWED", name);
    return r.message;
  };
  assert.equal(
    refusal("reboot"),
    'task "reboot" is not allowed on this node: set `[tasks] reboot = on` in this node\'s picluster.ini (its config allows: updates.check, time)',
  );
  assert.match(refusal("version"), /: set `\[tasks\] version = on` in this node's picluster\.ini/);
  assert.match(
    refusal("restart-web"),
    /: add a \[task\.restart-web\] section \(its command\) to this node's picluster\.ini \(its config allows/,
  );
  assert.equal(
    refusal("hello;reboot"),
    'task "hello;reboot" is not allowed on this node (its config allows: updates.check, time)',
  );
});

test("tasks executor - a task's user is looked up under the injected root, and the version task names that root's system", async (t) => {
  const root = scratch(t);
  const etc = join(root, "etc");
  const { mkdirSync } = await import("node:fs");
  mkdirSync(etc);
  // A user only the fixture tree knows, with the uid of whoever runs the test.
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  writeFileSync(
    join(etc, "passwd"),
    `root:x:0:0:root:/root:/bin/sh\nfixture-only:x:${uid}:${gid}::${root}:/bin/sh\n`,
  );
  writeFileSync(join(etc, "os-release"), 'PRETTY_NAME="Fixture OS 1 (test)"\n');
  const config = configWith(
    t,
    "[task.whoami]\ncommand = /bin/sh -c 'id -u; echo \"$HOME\"'\nuser = fixture-only\n",
  );
  const catalog = taskCatalog(config, "9.9.9", root);
  const exec = new TaskExecutor({
    catalog,
    maxRunning: 2,
    outputLimit: 4096,
    defaultCwd: tmpdir(),
    root,
    log: silentLogger(),
    onPowerAction: () => assert.fail("no power action"),
  });
  if (uid !== 0) {
    // Not root: switching user is refused, after the fixture's passwd named the user.
    await assert.rejects(
      exec.run(1, { task: "whoami", args: {} }, () => {}),
      (err: unknown) => err instanceof TaskError && err.code === "E_TASK_CONFIG",
    );
    return;
  }
  let out = "";
  const result = await exec.run(1, { task: "whoami", args: {} }, (_s, d) => {
    out += d;
  });
  assert.equal(result.exitCode, 0, out);
  assert.equal(out, `${uid}\n${root}\n`, "the uid and home came from the fixture's passwd");
  let version = "";
  await exec.run(2, { task: "version", args: {} }, (_s, d) => {
    version += d;
  });
  assert.match(version, /^Fixture OS 1 \(test\) \(/m);
});
