import assert from "node:assert/strict";
import { test } from "node:test";
import { parseSeriesText, seriesKey, splitSeriesKey } from "../src/custom-series.js";

test("custom series - Prometheus text: labels sorted into one key, comments and timestamps skipped, NaN and Inf left out", () => {
  const text = [
    "# HELP node_textfile_example An example.",
    "# TYPE node_textfile_example gauge",
    'apt_upgrades_pending{origin="Debian:bookworm/stable",arch="arm64"} 3',
    'smart_temp{disk="sda"} 38 1765094400000',
    "backup_age_seconds +Inf",
    "ratio 1.5e-3",
    'quoted{msg="a \\"b\\" \\\\ c\\nd"} 1',
    "",
  ].join("\n");
  const { values, problems } = parseSeriesText(text, "unused");
  assert.deepEqual(problems, []);
  assert.deepEqual(
    [...values],
    [
      ['apt_upgrades_pending{arch="arm64",origin="Debian:bookworm/stable"}', 3],
      ['smart_temp{disk="sda"}', 38],
      ["ratio", 0.0015],
      ['quoted{msg="a \\"b\\" \\\\ c\\nd"}', 1],
    ],
  );
  assert.deepEqual(splitSeriesKey('quoted{msg="a \\"b\\" \\\\ c\\nd"}'), {
    name: "quoted",
    labels: [["msg", 'a "b" \\ c\nd']],
  });
  assert.equal(
    seriesKey("x", [
      ["b", "2"],
      ["a", "1"],
    ]),
    'x{a="1",b="2"}',
  );
});

test("custom series - a bare number is the section's series; `name value` lines", () => {
  assert.deepEqual([...parseSeriesText("42\n", "queue").values], [["queue", 42]]);
  assert.deepEqual([...parseSeriesText(" 17.5 ", "temp").values], [["temp", 17.5]]);
  assert.deepEqual(
    [...parseSeriesText("jobs_waiting 4\njobs_running 2\n", "x").values],
    [
      ["jobs_waiting", 4],
      ["jobs_running", 2],
    ],
  );
});

test("custom series - what cannot be read is a problem with its line; the rest still counts", () => {
  const { values, problems } = parseSeriesText(
    [
      "good 1",
      "bad-name 2",
      'lab{a="1" 3',
      'lab{__x="1"} 3',
      "novalue",
      "words are not numbers",
      "good 5",
      'many{a="1",b="1",c="1",d="1",e="1",f="1",g="1",h="1",i="1"} 1',
      "notnum abc",
    ].join("\n"),
    "x",
  );
  assert.deepEqual([...values], [["good", 1]]);
  assert.deepEqual(problems, [
    'line 2: "bad-name 2" is not a series: expected NAME VALUE, NAME{LABELS} VALUE or a number',
    "line 3: expected , or } after label a",
    'line 4: label names starting with "__" are reserved ("__x")',
    "line 5: novalue: expected a value (and at most a timestamp) after the series",
    "line 6: words: expected a value (and at most a timestamp) after the series",
    "line 7: good is given twice; the first value counts",
    "line 8: many: 8 labels at most",
    'line 9: notnum: "abc" is not a number',
  ]);
});
