import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadConfig } from "../../src/config/load.js";
import { checkTaskArg } from "../../src/config/tasks.js";
import { ConfigError } from "../../src/errors.js";

function loadText(t: { after(fn: () => void): void }, text: string) {
  const dir = mkdtempSync(join(tmpdir(), "picluster-tasks-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "picluster.ini");
  writeFileSync(file, text);
  return {
    file,
    load: () =>
      loadConfig({ env: {}, configPath: file, paths: { cwd: dir, home: dir, uid: 1000 } }),
  };
}

test("config tasks - a [task.NAME] section becomes an argument vector with declared arguments", (t) => {
  const { load } = loadText(
    t,
    [
      "[tasks]",
      "reboot = on",
      "[task.restart-service]",
      'command = systemctl restart "{service}"',
      "description = Restart one service",
      "timeout = 30s",
      "cwd = /tmp",
      'env = LANG=C.UTF-8 "GREETING=hello there"',
      "arg.service = string [a-z0-9@._-]{1,64}",
      "",
    ].join("\n"),
  );
  const { config } = load();
  assert.equal(config.tasks.reboot, true);
  assert.equal(config.tasks.update, false, "disruptive built-ins are off by default");
  assert.deepEqual(config.task["restart-service"], {
    name: "restart-service",
    command: ["systemctl", "restart", "{service}"],
    timeoutMs: 30_000,
    user: "",
    cwd: "/tmp",
    env: { LANG: "C.UTF-8", GREETING: "hello there" },
    description: "Restart one service",
    args: [{ name: "service", type: "string", pattern: "[a-z0-9@._-]{1,64}" }],
    where: `${config.task["restart-service"]?.where.split(":")[0]}:3`,
  });
});

test("config tasks - mistakes in a task section are reported with file and line", (t) => {
  const { file, load } = loadText(
    t,
    [
      "[task.a]",
      "command = echo {who}",
      "[task.b]",
      "command = echo hello-{who}",
      "arg.who = string",
      "[task.c]",
      "command = echo {n}",
      "arg.n = integer [0-9]+",
      "[task.d]",
      "command = echo 'unclosed",
      "colour = red",
      "[task.e]",
      "description = no command",
      "[task.Bad Name]",
      "command = true",
      "[task.f]",
      "command = true",
      "arg.x = string (",
      "",
    ].join("\n"),
  );
  let problems: string[] = [];
  try {
    load();
    assert.fail("expected a ConfigError");
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    problems = err.problems.map((p) => `${p.where}: ${p.message}`);
  }
  const expect = [
    [2, "[task.a] command uses {who}, which no arg.who declares"],
    [4, "a placeholder must be a whole word"],
    [5, "arg.who is declared but the command does not use {who}"],
    [8, "only string arguments take a pattern"],
    [10, "[task.d] command:"],
    [11, 'unknown key "colour"'],
    [12, "[task.e] has no command"],
    [14, "a task name is lowercase"],
    [18, "arg.x: invalid pattern"],
  ] as const;
  for (const [line, text] of expect) {
    assert.ok(
      problems.some((p) => p.startsWith(`${file}:${line}: `) && p.includes(text)),
      `line ${line}: ${text}\n${problems.join("\n")}`,
    );
  }
});

test("config tasks - argument values are checked by type and pattern; no pattern lets an option or a control character through", () => {
  const s = { name: "s", type: "string" } as const;
  assert.equal(
    checkTaskArg(s, "; rm -rf /"),
    undefined,
    "no shell ever sees it: it stays one argument",
  );
  const loose = { ...s, pattern: "[a-z0-9@._-]{1,64}" };
  for (const [spec, value] of [
    [s, "-rf"],
    [loose, "-Hroot@evil.example"],
    [{ ...s, pattern: "[^/]+" }, "-x"],
    [{ name: "n", type: "integer" }, "-1"],
    [{ name: "x", type: "number" }, "-0.5"],
  ] as const) {
    assert.match(checkTaskArg(spec, value) ?? "", /must not start with '-'/, value);
  }
  for (const value of ["a\nb", "tab\t", "nul\u0000", "c1\u0085", "bidi\u202e", "sep\u2028"]) {
    assert.match(
      checkTaskArg({ ...s, pattern: "[^/]+" }, value) ?? "",
      /control characters/,
      JSON.stringify(value),
    );
  }
  assert.match(checkTaskArg({ ...s, pattern: "[a-z]+" }, "abc; id") ?? "", /does not match/);
  assert.equal(checkTaskArg(loose, "nginx@1.service"), undefined);
  assert.equal(checkTaskArg({ name: "n", type: "integer" }, "42"), undefined);
  assert.match(checkTaskArg({ name: "n", type: "integer" }, "4 2") ?? "", /whole number/);
  assert.equal(checkTaskArg({ name: "x", type: "number" }, "0.25"), undefined);
  assert.equal(checkTaskArg({ name: "b", type: "boolean" }, "true"), undefined);
  assert.match(checkTaskArg({ name: "b", type: "boolean" }, "yes") ?? "", /true or false/);
});
