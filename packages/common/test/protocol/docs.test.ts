import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { parseEnvelope } from "../../src/protocol/envelope.js";
import { MESSAGES } from "../../src/protocol/messages.js";

const doc = readFileSync(new URL("../../../../../docs/protocol.md", import.meta.url), "utf8");

test("protocol docs - every example frame in docs/protocol.md is a valid v1 envelope", () => {
  const frames = [...doc.matchAll(/```json frame\n([\s\S]*?)\n```/g)].map((m) => m[1] ?? "");
  assert.ok(frames.length >= 8, `found ${frames.length} example frames`);
  for (const frame of frames) {
    assert.doesNotThrow(
      () => parseEnvelope(JSON.parse(frame)),
      `example is valid: ${frame.slice(0, 80)}`,
    );
  }
});

test("protocol docs - every message type is documented", () => {
  for (const type of Object.keys(MESSAGES)) {
    const row = new RegExp(`^\\|\\s*\`${type.replace(".", "\\.")}\`\\s*\\|`, "m");
    assert.match(doc, row, `docs/protocol.md has a row for ${type}`);
  }
});
