import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { editDistance, suggestion } from "../../src/config/suggest.js";

test("suggest - edit distance counts insertions, deletions and substitutions", () => {
  assert.equal(editDistance("", ""), 0);
  assert.equal(editDistance("kitten", "sitting"), 3);
  assert.equal(editDistance("interval", "intervall"), 1);
  assert.equal(editDistance("port", "prot"), 2);
  assert.equal(editDistance("", "abc"), 3);
  fc.assert(
    fc.property(fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }), (a, b) => {
      const d = editDistance(a, b);
      return (
        d === editDistance(b, a) &&
        d <= Math.max(a.length, b.length) &&
        d >= Math.abs(a.length - b.length) &&
        (d === 0) === (a === b)
      );
    }),
  );
});

test("suggest - the first closest candidate within a third of the name, else nothing", () => {
  assert.equal(suggestion("intervall", ["timeout", "interval"]), " (did you mean interval?)");
  assert.equal(
    suggestion("prot", ["port", "host"], (c) => `[${c}]`),
    " (did you mean [port]?)",
  );
  assert.equal(suggestion("abcd", ["abce", "abcf"]), " (did you mean abce?)");
  assert.equal(suggestion("colour", ["weight", "height"]), "");
  assert.equal(suggestion("x", []), "");
});
