import assert from "node:assert/strict";
import { test } from "node:test";
import {
  checkItemShape,
  checkItemsAgainst,
  itemChunks,
  JobRequestError,
  MAX_JOB_ITEMS,
  parseRange,
  renderArgs,
} from "../../src/jobs/items.js";

const N = [{ name: "n", type: "integer" as const }];

test("job items - a range is read from FROM..TO and cut into pieces numbered from 0", () => {
  assert.deepEqual(parseRange("1..10000"), { kind: "range", from: 1, to: 10_000 });
  assert.deepEqual(parseRange(" -3 .. 3 "), { kind: "range", from: -3, to: 3 });
  assert.throws(() => parseRange("1-10"), /not a range: write FROM\.\.TO/);
  const chunks = [...itemChunks({ kind: "range", from: 5, to: 9 }, 2)];
  assert.deepEqual(chunks, [
    [
      { index: 0, value: 5 },
      { index: 1, value: 6 },
    ],
    [
      { index: 2, value: 7 },
      { index: 3, value: 8 },
    ],
    [{ index: 4, value: 9 }],
  ]);
});

test("job items - malformed items are refused whatever the task", () => {
  const code = (f: () => void) => {
    try {
      f();
    } catch (err) {
      return err instanceof JobRequestError ? `${err.code}: ${err.message}` : String(err);
    }
    return "accepted";
  };
  assert.match(
    code(() => checkItemShape({ kind: "range", from: 3, to: 2 })),
    /E_BAD_ITEMS.*empty/,
  );
  assert.match(
    code(() => checkItemShape({ kind: "range", from: 0.5, to: 2 })),
    /whole numbers/,
  );
  assert.match(
    code(() => checkItemShape({ kind: "list", values: [] })),
    /E_BAD_ITEMS.*empty/,
  );
  assert.match(
    code(() => checkItemShape({ kind: "range", from: 1, to: MAX_JOB_ITEMS + 1 })),
    /at most 1000000/,
  );
  assert.equal(
    code(() => checkItemShape({ kind: "range", from: 1, to: MAX_JOB_ITEMS })),
    "accepted",
  );
});

test("job items - templates fill {item} and {item.KEY}; an object's keys fill arguments by name", () => {
  assert.deepEqual(renderArgs({ n: "{item}", label: "run-{item}" }, 7), { n: "7", label: "run-7" });
  assert.deepEqual(renderArgs({}, { host: "pi-a", port: 22 }), { host: "pi-a", port: "22" });
  assert.deepEqual(renderArgs({ target: "{item.host}:{item.port}" }, { host: "pi-a", port: 22 }), {
    host: "pi-a",
    port: "22",
    target: "pi-a:22",
  });
  assert.deepEqual(renderArgs({ on: "{item}" }, true), { on: "true" });
  assert.throws(() => renderArgs({ n: "{item}" }, { a: 1 }), /the item is an object/);
  assert.throws(() => renderArgs({ n: "{item.a}" }, 5), /\{item\.a\} needs an object item/);
  assert.throws(() => renderArgs({}, { a: [1] }), /field "a" is a list/);
  assert.throws(() => renderArgs({ n: "{item}" }, null), /the item is null/);
});

test("job items - items are checked against the task's declared arguments, the first problems named", () => {
  assert.deepEqual(
    checkItemsAgainst({ kind: "range", from: 1, to: 100 }, { n: "{item}" }, N, "square"),
    [],
  );
  assert.deepEqual(
    checkItemsAgainst({ kind: "list", values: [{ n: 1 }, { n: 2, x: 3 }, {}] }, {}, N, "square"),
    [
      'item 1 ({"n":2,"x":3}): task "square" has no argument "x" (it takes n)',
      'item 2 ({}): no value for argument "n" (give a template such as n={item}, or the key in each item)',
    ],
  );
  const many = checkItemsAgainst({ kind: "range", from: 1, to: 20 }, { n: "x{item}" }, N, "square");
  assert.equal(many.length, 6);
  assert.match(many[0] ?? "", /^item 0 \(1\): argument "n" = "x1": expected a whole number/);
  assert.equal(many[5], "and 15 more");
  assert.deepEqual(
    checkItemsAgainst({ kind: "range", from: 1, to: 2 }, { "N-1": "{item}" }, N, "square"),
    ['"N-1" is not an argument name (lowercase letters, digits and _)'],
  );
  assert.deepEqual(
    checkItemsAgainst({ kind: "range", from: 1, to: 2 }, {}, [], "version"),
    [],
    "a task without arguments takes items that fill none",
  );
});
