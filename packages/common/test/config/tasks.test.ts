import assert from "node:assert/strict";
import { test } from "node:test";
import { checkTaskArg, patternNames } from "../../src/config/tasks.js";
import { ConfigError } from "../../src/errors.js";
import { iniFile } from "../support/ini-file.js";

test("config tasks - a [task.NAME] section becomes an argument vector with declared arguments", (t) => {
  const { load } = iniFile(
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
  const { file, load } = iniFile(
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

test("config tasks - invisible characters (zero-width, BOM, other format characters, odd spaces) are refused unless the pattern names them", () => {
  const s = { name: "s", type: "string" } as const;
  const loose = { ...s, pattern: "[^/]+" };
  for (const value of [
    "ngin\u200bx", // zero-width space
    "\ufeffnginx", // byte order mark
    "a\u200db", // zero-width joiner
    "a\u2060b", // word joiner
    "a\u00adb", // soft hyphen
    "tag\u{e0041}", // a tag character
    "nbsp\u00a0x", // a space that is not U+0020
    "fill\u3164er", // Hangul filler
    "priv\ue000", // private use
    "lone\ud800", // a lone surrogate
  ]) {
    for (const spec of [s, loose] as Array<{ name: string; type: "string"; pattern?: string }>) {
      assert.match(
        checkTaskArg(spec, value) ?? "",
        /must not hold invisible characters \(U\+[0-9A-F]{4,5}\)/,
        `${JSON.stringify(value)} with ${spec.pattern ?? "no pattern"}`,
      );
    }
  }
  assert.match(checkTaskArg(s, "a\u200bb\ufeff") ?? "", /\(U\+200B, U\+FEFF\)/, "every one named");
  // Named by the pattern: the character itself, its escape, or its category.
  assert.equal(checkTaskArg({ ...s, pattern: "[a-z\u200d]+" }, "a\u200db"), undefined);
  assert.equal(checkTaskArg({ ...s, pattern: "[a-z\\u200d]+" }, "a\u200db"), undefined);
  assert.equal(checkTaskArg({ ...s, pattern: "[a-z\\u{200D}]+" }, "a\u200db"), undefined);
  assert.equal(checkTaskArg({ ...s, pattern: "[a-z\\p{Cf}]+" }, "a\u200bb"), undefined);
  assert.equal(
    checkTaskArg({ ...s, pattern: "[a-z\\p{General_Category=Format}]+" }, "a\ufeffb"),
    undefined,
  );
  assert.equal(checkTaskArg({ ...s, pattern: "[a-z\\xa0]+" }, "a\u00a0b"), undefined);
  // Naming one is not naming another, and a range that spans it does not name it.
  assert.match(
    checkTaskArg({ ...s, pattern: "[a-z\\u200d\\u200b]+" }, "a\ufeffb") ?? "",
    /U\+FEFF/,
  );
  assert.match(checkTaskArg({ ...s, pattern: "[\\u0000-\\uffff]+" }, "a\u200bb") ?? "", /U\+200B/);
  assert.match(checkTaskArg({ ...s, pattern: "[\\p{L}\\p{Cc}]+" }, "a\u200bb") ?? "", /U\+200B/);
  // An escaped backslash followed by text is not an escape.
  assert.equal(patternNames("[a-z\\\\u200b]+", "\u200b"), false);
  assert.equal(patternNames("[a-z\\\\\\u200b]+", "\u200b"), true);
  // Controls, separators and bidirectional controls stay refused, whatever the pattern names.
  for (const [pattern, value] of [
    ["[a-z\\n]+", "a\nb"],
    ["[a-z\\u2028]+", "a\u2028b"],
    ["[a-z\\u202e\\p{Cf}]+", "a\u202eb"],
  ] as const)
    assert.match(checkTaskArg({ ...s, pattern }, value) ?? "", /control characters/, pattern);
  // Visible text is untouched: a plain space, accents, other scripts.
  assert.equal(checkTaskArg({ ...s, pattern: "[\\p{L} ]+" }, "café crème 東京"), undefined);
});
