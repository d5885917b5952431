import assert from "node:assert/strict";
import { test } from "node:test";
import { ago, bytes, duration, pct, rate } from "../src/format.js";

test("format - bytes: binary units, a decimal under 10, the same on the terminal and the page", () => {
  assert.equal(bytes(512), "512 B");
  assert.equal(bytes(1536), "1.5 KiB");
  assert.equal(bytes(15.3 * 1024 ** 2), "15 MiB");
  assert.equal(bytes(153 * 1024 ** 3), "153 GiB");
  assert.equal(bytes(null), "–");
  assert.equal(rate(2048), "2.0 KiB/s");
  assert.equal(pct(undefined), "–");
});

test("format - durations in their two largest units, and no 0m in front of seconds", () => {
  assert.equal(duration(45), "45s");
  assert.equal(duration(12 * 60 + 5), "12m 5s");
  assert.equal(duration(3 * 3600 + 5 * 60 + 9), "3h 5m");
  assert.equal(duration(2 * 86_400 + 3 * 3600), "2d 3h");
  assert.equal(ago(1_000, 61_500), "1m 0s");
  assert.equal(ago(5_000, 1_000), "0s", "a time in the future is now");
});
