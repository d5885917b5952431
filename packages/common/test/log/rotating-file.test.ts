import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { RotatingFile } from "../../src/log/rotating-file.js";
import { scratchDir } from "../../src/testing/scratch.js";

function scratch(t: { after(fn: () => void): void }): string {
  const dir = scratchDir(t, "picluster-rot-");
  return dir;
}

test("rotating file - rotates before a write would pass the size and keeps only `keep` old files", (t) => {
  const dir = scratch(t);
  const file = new RotatingFile({ dir, name: "a.log", maxBytes: 100, keep: 2 });
  t.after(() => file.close());
  const line = `${"x".repeat(39)}\n`; // 40 bytes: two fit, the third rotates
  for (let i = 0; i < 9; i++) file.write(line);
  assert.deepEqual(readdirSync(dir).sort(), ["a.log", "a.log.1", "a.log.2"]);
  for (const f of ["a.log", "a.log.1", "a.log.2"]) {
    assert.ok(statSync(join(dir, f)).size <= 100, `${f} stays within the limit`);
  }
  assert.equal(readFileSync(join(dir, "a.log"), "utf8"), line.repeat(1));
});

test("rotating file - appends to an existing file and counts its size", (t) => {
  const dir = scratch(t);
  writeFileSync(join(dir, "a.log"), "y".repeat(90));
  const file = new RotatingFile({ dir, name: "a.log", maxBytes: 100, keep: 1 });
  t.after(() => file.close());
  file.write("0123456789abcdef\n");
  assert.equal(readFileSync(join(dir, "a.log.1"), "utf8"), "y".repeat(90));
  assert.equal(readFileSync(join(dir, "a.log"), "utf8"), "0123456789abcdef\n");
});

test("rotating file - a line longer than the limit is written whole into a file of its own", (t) => {
  const dir = scratch(t);
  const file = new RotatingFile({ dir, name: "a.log", maxBytes: 10, keep: 3 });
  t.after(() => file.close());
  file.write("short\n");
  file.write(`${"z".repeat(50)}\n`);
  file.write("next\n");
  assert.equal(readFileSync(join(dir, "a.log.1"), "utf8"), `${"z".repeat(50)}\n`);
  assert.equal(readFileSync(join(dir, "a.log.2"), "utf8"), "short\n");
  assert.equal(readFileSync(join(dir, "a.log"), "utf8"), "next\n");
});
