import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { booleanType, durationType, labelsType, sizeType } from "../../src/config/types.js";

test("config types - durations take ms, s, m, h, d and keep their range", () => {
  const d = durationType(100, 86_400_000);
  const ok = (raw: string) => {
    const r = d.parse(raw);
    return r.ok ? r.value : r.expected;
  };
  assert.equal(ok("500ms"), 500);
  assert.equal(ok("10s"), 10_000);
  assert.equal(ok("1.5m"), 90_000);
  assert.equal(ok("2H"), 7_200_000);
  assert.equal(ok("1d"), 86_400_000);
  assert.match(String(ok("10")), /with a unit/);
  assert.match(String(ok("50ms")), /from 100ms to 1d/);
  assert.match(String(ok("-1s")), /with a unit/);
});

test("config types - sizes are binary multiples; 10MB is 10 MiB", () => {
  const s = sizeType(1, 2 ** 40);
  const v = (raw: string) => {
    const r = s.parse(raw);
    return r.ok ? r.value : undefined;
  };
  assert.equal(v("512"), 512);
  assert.equal(v("64KB"), 65_536);
  assert.equal(v("10MB"), 10 * 1024 * 1024);
  assert.equal(v("1 GiB"), 1024 ** 3);
  assert.equal(v("1.5k"), 1536);
  assert.equal(v("3 parsecs"), undefined);
});

test("config types - booleans accept ConfigParser's words in any case", () => {
  for (const w of ["1", "yes", "TRUE", "On"])
    assert.deepEqual(booleanType.parse(w), { ok: true, value: true });
  for (const w of ["0", "no", "false", "OFF"])
    assert.deepEqual(booleanType.parse(w), { ok: true, value: false });
  assert.equal(booleanType.parse("maybe").ok, false);
});

test("config types - labels parse from key=value lists and format back to the same", () => {
  assert.deepEqual(labelsType.parse(" rack = a , role=web,gpu"), {
    ok: true,
    value: { rack: "a", role: "web", gpu: "true" },
  });
  assert.equal(labelsType.parse("a=1,a=2").ok, false);
  fc.assert(
    fc.property(
      fc.dictionary(
        fc.stringMatching(/^[a-z][a-z0-9_.-]{0,10}$/),
        fc.stringMatching(/^[A-Za-z0-9_./:-]{0,12}$/),
      ),
      (labels) => {
        const back = labelsType.parse(labelsType.format(labels));
        assert.deepEqual(back, { ok: true, value: { ...labels } });
      },
    ),
  );
});

test("config types - every formatted duration and size parses back to the same value", () => {
  const d = durationType(1, 10 * 86_400_000);
  const s = sizeType(1, 2 ** 40);
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 10 * 86_400_000 }),
      fc.integer({ min: 1, max: 2 ** 40 }),
      (ms, bytes) => {
        assert.deepEqual(d.parse(d.format(ms)), { ok: true, value: ms });
        assert.deepEqual(s.parse(s.format(bytes)), { ok: true, value: bytes });
      },
    ),
  );
});
