import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  durationWords,
  isoTime,
  localTime,
  monotonicMs,
  utcOffset,
  zoneLabel,
} from "../src/time.js";

test("time - durations in words, two units at most", () => {
  assert.equal(durationWords(850), "850 ms");
  assert.equal(durationWords(42_000), "42 s");
  assert.equal(durationWords(66_455), "1 min 6 s");
  assert.equal(durationWords(120_000), "2 min");
  assert.equal(durationWords(3 * 3_600_000 + 2 * 60_000 + 5_000), "3 h 2 min");
  assert.equal(durationWords(2 * 86_400_000 + 4 * 3_600_000), "2 d 4 h");
  assert.equal(durationWords(-5), "0 ms");
});

test("time - local times and the zone they are in, summer and winter", () => {
  const winter = Date.UTC(2026, 0, 15, 12, 30, 5);
  const summer = Date.UTC(2026, 6, 15, 12, 30, 5);
  assert.equal(localTime(winter, "Europe/Paris"), "2026-01-15 13:30:05");
  assert.equal(localTime(summer, "Europe/Paris"), "2026-07-15 14:30:05");
  assert.equal(utcOffset(winter, "Europe/Paris"), "UTC+01:00");
  assert.equal(utcOffset(summer, "America/New_York"), "UTC-04:00");
  assert.equal(zoneLabel(winter, "Europe/Paris"), "UTC+01:00 (Europe/Paris)");
  assert.equal(zoneLabel(winter, "UTC"), "UTC");
  assert.equal(localTime(winter, "UTC"), "2026-01-15 12:30:05");
});

test("time - isoTime writes what toISOString writes, for any time of years 0 to 9999", () => {
  assert.equal(isoTime(0), "1970-01-01T00:00:00.000Z");
  assert.equal(isoTime(Date.UTC(2026, 11, 7, 1, 2, 3, 45)), "2026-12-07T01:02:03.045Z");
  assert.match(isoTime(), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  const from = new Date(0).setUTCFullYear(0, 0, 1);
  const to = new Date(0).setUTCFullYear(9999, 11, 31);
  fc.assert(
    fc.property(
      fc.integer({ min: from, max: to }),
      (ms) => isoTime(ms) === new Date(ms).toISOString(),
    ),
    { numRuns: 2_000 },
  );
});

test("time - monotonicMs counts milliseconds as performance.now does, and never goes back", async () => {
  const m0 = monotonicMs();
  const p0 = performance.now();
  let last = m0;
  for (let i = 0; i < 10_000; i++) {
    const now = monotonicMs();
    assert.ok(now >= last, `went back from ${last} to ${now}`);
    last = now;
  }
  await new Promise((r) => setTimeout(r, 50));
  const elapsedM = monotonicMs() - m0;
  const elapsedP = performance.now() - p0;
  assert.ok(elapsedM >= 49, `${elapsedM} ms after a 50 ms timer`);
  assert.ok(
    Math.abs(elapsedM - elapsedP) < 5,
    `monotonicMs ${elapsedM} vs performance ${elapsedP}`,
  );
});
