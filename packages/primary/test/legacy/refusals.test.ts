/** Refused tutorial nodes are logged by the count, on a manual clock. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { createLogger, type LineSink } from "@picluster/common";
import { ManualClock } from "@picluster/common/testing";
import { REFUSAL_LOG_WINDOW_MS, RefusalLog } from "../../src/legacy/refusals.js";

function setup() {
  const clock = new ManualClock();
  const records: Array<Record<string, unknown>> = [];
  const sink: LineSink = {
    write: (line) => records.push(JSON.parse(line) as Record<string, unknown>),
  };
  const log = new RefusalLog(clock, createLogger(sink, { level: "info" }));
  const refuse = (host: string, address = "10.0.0.9") =>
    log.refused({ reason: "too_many_new", host, address, limit: 8 });
  return { clock, records, log, refuse };
}

test("legacy refusals - the first is logged at once, the rest of the minute as one counted line, then a line a minute while they go on", () => {
  const { clock, records, log, refuse } = setup();
  refuse("h-0");
  assert.deepEqual(
    records.map((r) => [r.msg, r.refused, r.host, r.limit, r.key]),
    [
      [
        "tutorial node refused: too many new tutorial nodes from one address",
        1,
        "h-0",
        8,
        "[legacy] new_nodes_per_minute",
      ],
    ],
  );
  for (let i = 1; i <= 1000; i++) refuse(`h-${i}`, `10.0.0.${i % 20}`);
  assert.equal(records.length, 1, "a thousand more are counted, not logged");
  clock.advance(REFUSAL_LOG_WINDOW_MS);
  assert.equal(records.length, 2);
  assert.equal(records[1]?.refused, 1000);
  assert.equal(records[1]?.overMs, REFUSAL_LOG_WINDOW_MS);
  assert.equal(
    (records[1]?.addresses as string[] | undefined)?.length,
    10,
    "a few addresses, not all",
  );
  refuse("h-late");
  clock.advance(REFUSAL_LOG_WINDOW_MS);
  assert.deepEqual(
    records.slice(2).map((r) => [r.refused, r.hosts]),
    [[1, ["h-late"]]],
  );
  // A quiet minute ends the counting: no timer is left, and the next refusal is logged at once.
  clock.advance(REFUSAL_LOG_WINDOW_MS);
  assert.equal(records.length, 3);
  assert.equal(clock.pending, 0, "no timer while nothing is refused");
  refuse("h-next");
  assert.equal(records.length, 4);
  assert.equal(records[3]?.host, "h-next");
  assert.equal(log.totals.too_many_new, 1003);
  // Closing logs what is counted and leaves no timer.
  refuse("h-last");
  log.close();
  assert.equal(records[4]?.refused, 1);
  assert.equal(clock.pending, 0);
});
