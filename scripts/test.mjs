// Runs every compiled test file with Node's test runner.
// Usage: node scripts/test.mjs [substring…]  (only files whose path contains one)
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const filters = process.argv.slice(2);

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
const result = spawnSync(
  process.execPath,
  ["--enable-source-maps", "--test", "--test-reporter=spec", ...files],
  {
    stdio: "inherit",
    cwd: root,
  },
);
process.exit(result.status ?? 1);
