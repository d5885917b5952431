import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { renderConfigDocs } from "../../src/config/render.js";
import { ALIASES, schemaKeys } from "../../src/config/schema.js";

test("config docs - docs/configuration.md is current with the schema (regenerate with npm run docs:config)", () => {
  const onDisk = readFileSync(
    new URL("../../../../../docs/configuration.md", import.meta.url),
    "utf8",
  );
  assert.equal(onDisk, renderConfigDocs());
});

test("config docs - every key and every old name is documented with its variable and flag", () => {
  const doc = renderConfigDocs();
  for (const { section, key } of schemaKeys()) {
    assert.ok(doc.includes(`| \`${key}\` |`), `${section}.${key} has a row`);
    assert.ok(
      doc.includes(`PICLUSTER_${section.toUpperCase()}_${key.toUpperCase()}`),
      `${section}.${key} names its variable`,
    );
  }
  for (const a of ALIASES)
    assert.ok(doc.includes(`[${a.section}] ${a.key}`), `alias ${a.section}.${a.key} documented`);
});
