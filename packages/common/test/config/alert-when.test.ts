import assert from "node:assert/strict";
import { test } from "node:test";
import { parseWhen } from "../../src/config/alerts.js";

test("alert when - a threshold may carry its unit: %, °C (with or without a space) or C; another unit is refused", () => {
  for (const text of ["temp > 80", "temp > 80°C", "temp > 80 °C", "temp>80C"])
    assert.deepEqual(parseWhen(text), { metric: "temp", op: ">", threshold: 80 }, text);
  assert.deepEqual(parseWhen("cpu >= 90%"), { metric: "cpu", op: ">=", threshold: 90 });
  assert.equal(typeof parseWhen("temp > 80 F"), "string");
});
