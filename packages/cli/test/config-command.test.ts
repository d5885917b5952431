import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { scratchDir } from "@picluster/common/testing";

const BIN = new URL("../../bin/picluster.js", import.meta.url).pathname;
const TUTORIAL_CFG = new URL("../../../common/test/fixtures/rpicluster.cfg", import.meta.url)
  .pathname;

/** Run the real CLI in a scratch directory with a clean PICLUSTER_* environment. */
function run(args: string[], cwd: string, env: Record<string, string> = {}) {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("PICLUSTER_")),
  );
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    env: { ...clean, ...env },
    encoding: "utf8",
    timeout: 20_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function scratch(t: { after(fn: () => void): void }, files: Record<string, string> = {}): string {
  const dir = scratchDir(t, "picluster-cli-");
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

function assertNoStack(text: string): void {
  assert.doesNotMatch(text, /^\s+at /m, "no stack trace");
}

test("cli config check - a typo'd value prints file:line and exits 2 with no stack trace", (t) => {
  const cwd = scratch(t, { "picluster.ini": "[primary]\nprot = 1\nport = 12x45\n" });
  const r = run(["config", "check"], cwd);
  assert.equal(r.code, 2);
  assert.match(
    r.err,
    new RegExp(
      `error: ${join(cwd, "picluster.ini")}:3: \\[primary\\] port: expected an integer from 0 to 65535, got "12x45"`,
    ),
  );
  assert.match(
    r.err,
    /warning: .*picluster\.ini:2: unknown key "prot" in \[primary\], ignored \(did you mean \[primary\] port\?\)/,
  );
  assertNoStack(r.err);
  assert.equal(r.out, "");
});

test("cli config check - the tutorial's rpicluster.cfg passes with one deprecation line per old key", (t) => {
  const r = run(["config", "check", "--config", TUTORIAL_CFG], scratch(t));
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, `ok: ${TUTORIAL_CFG}\n`);
  const lines = r.err.trim().split("\n");
  assert.equal(lines.length, 10);
  assert.ok(lines.every((l) => l.startsWith("deprecated: ")));
});

test("cli config check --json - reports problems as data and still exits 2", (t) => {
  const cwd = scratch(t, { "bad.ini": "[log]\nlevel = loud\n" });
  const r = run(["config", "check", "--json", "--config", "bad.ini"], cwd);
  assert.equal(r.code, 2);
  assert.deepEqual(JSON.parse(r.out), { ok: false, file: null, notices: [] });
  assert.match(r.err, /bad\.ini:2: \[log\] level: expected one of trace/);
});

test("cli config show --json - every value with its source; env and flags override; secrets redacted", (t) => {
  const cwd = scratch(t, { "picluster.ini": "[http]\ntoken = hunter2\nport = 9000\n" });
  const r = run(["config", "show", "--json", "--primary-port", "4000"], cwd, {
    PICLUSTER_HTTP_PORT: "9001",
  });
  assert.equal(r.code, 0, r.err);
  const shown = JSON.parse(r.out) as {
    file: string;
    values: Array<{ section: string; key: string; value: string; source: string }>;
  };
  const get = (section: string, key: string) =>
    shown.values.find((v) => v.section === section && v.key === key);
  assert.equal(shown.file, join(cwd, "picluster.ini"));
  assert.deepEqual(get("http", "token"), {
    section: "http",
    key: "token",
    value: "(redacted)",
    source: `${join(cwd, "picluster.ini")}:2`,
  });
  assert.deepEqual(get("http", "port"), {
    section: "http",
    key: "port",
    value: "9001",
    source: "env PICLUSTER_HTTP_PORT",
  });
  assert.deepEqual(get("primary", "port"), {
    section: "primary",
    key: "port",
    value: "4000",
    source: "flag --primary-port",
  });
  assert.equal(get("log", "level")?.source, "default");
  assert.ok(!r.out.includes("hunter2") && !r.err.includes("hunter2"));
});

test("cli - bad usage exits 2 with one clear line and no stack trace", (t) => {
  const cwd = scratch(t);
  const r = run(["config", "frobnicate"], cwd);
  assert.equal(r.code, 2);
  assert.match(r.err, /unknown command 'frobnicate'/);
  assertNoStack(r.err);
  const v = run(["--version"], cwd);
  assert.equal(v.code, 0);
  assert.match(v.out, /^\d+\.\d+\.\d+\n$/);
});
