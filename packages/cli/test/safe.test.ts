import assert from "node:assert/strict";
import { test } from "node:test";
import { nodeName, safeJson, safeLine, safeText } from "../src/safe.js";

test("cli safe - one line: every control, format and separator character is shown escaped", () => {
  assert.equal(
    safeLine("a\u001b]0;t\u0007b\u001b[31mc\nd\te\u009bf\u007fg\u200bh\u202ei\u2028j\u{e0041}"),
    "a\\x1b]0;t\\x07b\\x1b[31mc\\x0ad\\x09e\\x9bf\\x7fg\\u200bh\\u202ei\\u2028j\\u{e0041}",
  );
  assert.equal(safeLine("pi-01 café 東京 ✓"), "pi-01 café 東京 ✓", "visible text untouched");
});

test("cli safe - many lines: newlines, tabs and line-ending CRs kept, every other control escaped", () => {
  assert.equal(safeText("one\ttab\r\ntwo\rover\u001b[2J\n"), "one\ttab\r\ntwo\\x0dover\\x1b[2J\n");
});

test("cli safe - JSON: C1, DEL and format characters escaped too, and it parses back to the same value", () => {
  const value = { name: "x\u001b\u009b\u007f\u202e\u2028\u{e0041}y", n: 1 };
  const text = safeJson(value);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is looked for
  assert.doesNotMatch(text, /[\u0000-\u001f\u007f-\u009f\u202e\u2028\u{e0041}]/u);
  assert.deepEqual(JSON.parse(text), value);
});

test("cli safe - a tutorial node's name says so", () => {
  assert.equal(nodeName("pi-01", true), "pi-01 (tutorial)");
  assert.equal(nodeName("pi-01"), "pi-01");
  assert.equal(nodeName("a\u001bb", true), "a\\x1bb (tutorial)");
});
