import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ERRORS, errorMessage, httpStatus, isErrorCode } from "../src/error-codes.js";
import { renderErrorDocs } from "../src/error-docs.js";
import { NodeError } from "../src/errors.js";

const PACKAGES = new URL("../../../", import.meta.url).pathname;

/** Every `"E_…"` literal in the packages' src trees, with where it was first seen. */
function codesInSources(): Map<string, string> {
  const found = new Map<string, string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.tsx?$/.test(name) && !path.endsWith("error-codes.ts")) {
        for (const m of readFileSync(path, "utf8").matchAll(/["'`](E_[A-Z_]+)["'`]/g))
          if (!found.has(m[1] as string)) found.set(m[1] as string, path);
      }
    }
  };
  for (const pkg of readdirSync(PACKAGES)) {
    const src = join(PACKAGES, pkg, "src");
    try {
      if (statSync(src).isDirectory()) walk(src);
    } catch {}
  }
  return found;
}

test("error codes - docs/errors.md is current with the catalogue (regenerate with npm run docs:errors)", () => {
  const onDisk = readFileSync(new URL("../../../../docs/errors.md", import.meta.url), "utf8");
  assert.equal(onDisk, renderErrorDocs());
});

test("error codes - every code the sources use is in the catalogue, and every row is used", () => {
  const used = codesInSources();
  assert.ok(used.size > 50, `found ${used.size} codes: the scan found the sources`);
  for (const [code, where] of used) assert.ok(isErrorCode(code), `${code} (${where}) has a row`);
  for (const code of Object.keys(ERRORS)) assert.ok(used.has(code), `${code} is used somewhere`);
});

test("error codes - statuses come from the table: a missing node 404, a closed store 503, a node's refusal 502", () => {
  assert.equal(httpStatus("E_NO_SUCH_NODE"), 404);
  assert.equal(httpStatus("E_STORE_CLOSED"), 503);
  assert.equal(httpStatus("E_BAD_ARGS"), 502);
  assert.equal(httpStatus("E_UNSUPPORTED"), 501);
  assert.equal(httpStatus("E_SOMETHING_A_NEWER_AGENT_SAYS"), 502);
  assert.equal(httpStatus("ECONNREFUSED"), 500);
  for (const [code, spec] of Object.entries(ERRORS))
    if ("status" in spec) assert.ok(spec.status >= 400 && spec.status < 600, code);
});

test("error codes - a message template is filled in order, and an error class makes one from its code", () => {
  assert.equal(errorMessage("E_NO_SUCH_NODE", "pi-7"), 'no node "pi-7"');
  assert.equal(errorMessage("E_TIMEOUT", "ping"), "ping got no answer within %s ms");
  const err = NodeError.of("E_NO_SUCH_NODE", "pi-7");
  assert.ok(err instanceof NodeError);
  assert.equal(err.code, "E_NO_SUCH_NODE");
  assert.equal(err.message, 'no node "pi-7"');
});
