// Runs every compiled test file with Node's test runner, one file at a time
// (as `node --test` would on this 2-core machine), each under a time limit: a
// file still running past it (a test that left a server or a child process
// behind, so its process never exits) is killed with everything it started
// and counted as failed, instead of holding the whole run until CI gives up.
// Usage: node scripts/test.mjs [substring…]  (only files whose path contains one)
// PICLUSTER_TEST_FILE_TIMEOUT: seconds per file (600).
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const filters = process.argv.slice(2);
const limitS = Number(process.env.PICLUSTER_TEST_FILE_TIMEOUT ?? 600);
if (!Number.isFinite(limitS) || limitS <= 0) {
  console.error(
    `PICLUSTER_TEST_FILE_TIMEOUT must be a number of seconds above 0, not ${process.env.PICLUSTER_TEST_FILE_TIMEOUT}`,
  );
  process.exit(2);
}

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...walk(path));
    else if (name.endsWith(".test.js")) out.push(path);
  }
  return out;
}

const files = readdirSync(join(root, "packages"))
  .map((pkg) => join(root, "packages", pkg, "dist", "test"))
  .filter((dir) => {
    try {
      return statSync(dir).isDirectory();
    } catch {
      return false; // a package without tests yet
    }
  })
  .flatMap(walk)
  .filter((f) => filters.length === 0 || filters.some((s) => relative(root, f).includes(s)))
  .sort();

if (files.length === 0) {
  console.error(`no test files matched ${filters.join(" ") || "(all)"}; did the build run?`);
  process.exit(1);
}

const countsDir = mkdtempSync(join(tmpdir(), "picluster-test-counts-"));
const reporter = join(root, "scripts", "count-reporter.mjs");
let current;
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    if (current !== undefined) killGroup(current);
    rmSync(countsDir, { recursive: true, force: true });
    process.exit(130);
  });
}

function killGroup(child) {
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}

const total = { tests: 0, pass: 0, fail: 0, skipped: 0, todo: 0 };
const failures = [];
const started = Date.now();
for (const [i, file] of files.entries()) {
  const name = relative(root, file);
  const countsFile = join(countsDir, `${i}.json`);
  // Its own process group, so that a timeout takes whatever the file started too.
  const child = spawn(
    process.execPath,
    [
      "--enable-source-maps",
      "--test",
      "--test-reporter=spec",
      "--test-reporter-destination=stdout",
      `--test-reporter=${reporter}`,
      `--test-reporter-destination=${countsFile}`,
      file,
    ],
    { stdio: "inherit", cwd: root, detached: true },
  );
  current = child;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(child);
  }, limitS * 1000);
  const code = await new Promise((resolve) => child.once("exit", (c, s) => resolve(c ?? s)));
  clearTimeout(timer);
  current = undefined;
  let counts;
  try {
    counts = JSON.parse(readFileSync(countsFile, "utf8"));
  } catch {
    counts = undefined; // killed before its reporter finished
  }
  if (counts !== undefined) {
    for (const key of Object.keys(total)) total[key] += counts[key];
    for (const [k, test] of counts.failed.entries()) {
      failures.push(`${name}: ${test}`);
      for (const line of counts.errors?.[k] ?? []) failures.push(`    ${line}`);
    }
  }
  if (timedOut) {
    failures.push(
      `${name}: still running after ${limitS} s, killed with what it started (a test left something running)`,
    );
    console.log(`✖ ${name} still running after ${limitS} s: killed`);
  } else if (code !== 0 && (counts === undefined || counts.fail === 0)) {
    failures.push(
      `${name}: exited with ${code} without a failing test (a crash before or between tests)`,
    );
  }
}
rmSync(countsDir, { recursive: true, force: true });

const minutes = ((Date.now() - started) / 60_000).toFixed(1);
console.log(
  `\n${files.length} files, ${total.tests} tests: ${total.pass} passed, ${total.fail} failed, ${total.skipped} skipped, ${total.todo} todo, in ${minutes} min`,
);
if (failures.length > 0) {
  console.log("failed:");
  for (const f of failures) console.log(f.startsWith("    ") ? `  ${f}` : `  ✖ ${f}`);
  process.exit(1);
}
