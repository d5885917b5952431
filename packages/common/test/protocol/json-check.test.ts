import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import fc from "fast-check";
import { DecodeError } from "../../src/errors.js";
import { parseEnvelopeCompiled } from "../../src/protocol/compiled.js";
import { type Envelope, parseEnvelope } from "../../src/protocol/envelope.js";
import { assertSupported, firstFailure } from "../../src/protocol/json-check.js";
import { wireSchemas } from "../../src/protocol/wire-render.js";
import { WIRE_ERROR_SCHEMA, WIRE_SCHEMAS } from "../../src/protocol/wire-schemas.js";

const root = new URL("../../../../../", import.meta.url);

test("wire schemas - wire-schemas.ts is current with messages.ts (regenerate with npm run gen:wire)", () => {
  const expected = wireSchemas();
  assert.deepEqual(WIRE_SCHEMAS, expected.specs);
  assert.deepEqual(WIRE_ERROR_SCHEMA, expected.error);
});

test("wire schemas - every schema uses only keywords json-check implements", () => {
  for (const [type, spec] of Object.entries(WIRE_SCHEMAS)) {
    assertSupported(spec.payload, `${type}/payload`);
    if (spec.response !== undefined) assertSupported(spec.response, `${type}/response`);
  }
  assertSupported(WIRE_ERROR_SCHEMA);
  assert.throws(() => assertSupported({ type: "string", format: "email" }), /format/);
});

test("json-check - names the failing field", () => {
  const schema = WIRE_SCHEMAS.welcome.payload;
  const ok = { protocol: 1, heartbeatMs: 1000, vitalsMs: 5000, lastSeq: 0, primaryVersion: "1" };
  assert.equal(firstFailure(schema, ok), undefined);
  assert.deepEqual(firstFailure(schema, { ...ok, lastSeq: -1 }, "/payload"), {
    path: "/payload/lastSeq",
    message: "must be >= 0",
  });
  const { vitalsMs: _, ...missing } = ok;
  assert.deepEqual(firstFailure(schema, missing, "/payload")?.path, "/payload/vitalsMs");
  // Code points, not UTF-16 units: 64 emoji fit a 64-character field.
  assert.equal(firstFailure(schema, { ...ok, primaryVersion: "😀".repeat(64) }), undefined);
  assert.equal(
    firstFailure(schema, { ...ok, primaryVersion: "😀".repeat(65) })?.path,
    "/primaryVersion",
  );
});

/** Every example frame of docs/protocol.md, as parsed JSON: valid starting points. */
function examples(): Record<string, unknown>[] {
  const doc = readFileSync(new URL("docs/protocol.md", root), "utf8");
  return [...doc.matchAll(/```json frame\n([\s\S]*?)\n```/g)].map(
    (m) => JSON.parse(m[1] ?? "") as Record<string, unknown>,
  );
}

function outcome(parse: (v: unknown) => Envelope, value: unknown): string {
  try {
    parse(value);
    return "ok";
  } catch (err) {
    if (err instanceof DecodeError) return `${err.code} at ${err.path}`;
    throw err;
  }
}

/** A copy of `value` with the node at a random path replaced, removed, or given a new key. */
function mutate(value: unknown, choices: number[], replacement: unknown): unknown {
  const copy = structuredClone(value);
  let node: unknown = copy;
  for (const choice of choices) {
    if (typeof node !== "object" || node === null) break;
    const keys = Object.keys(node);
    if (keys.length === 0) break;
    const key = keys[choice % keys.length] as string;
    const child = (node as Record<string, unknown>)[key];
    const last = typeof child !== "object" || child === null || choice % 7 === 0;
    if (last) {
      if (choice % 5 === 0 && !Array.isArray(node)) delete (node as Record<string, unknown>)[key];
      else if (choice % 5 === 1 && !Array.isArray(node))
        (node as Record<string, unknown>)[`x${choice}`] = replacement;
      else (node as Record<string, unknown>)[key] = replacement;
      return copy;
    }
    node = child;
  }
  return copy;
}

test("json-check - agrees with the TypeBox-compiled checks on valid and broken frames", () => {
  const frames = examples();
  assert.ok(frames.length >= 8);
  for (const frame of frames) {
    assert.equal(outcome(parseEnvelope, frame), "ok");
    assert.equal(outcome(parseEnvelopeCompiled, frame), "ok");
  }
  // Found by the property below: a key no pattern allows and a bad value beside it.
  const hello = frames.find((f) => f.type === "hello");
  assert.ok(hello, "docs/protocol.md has a hello frame");
  const twoFaults = structuredClone(hello) as { payload: { labels: unknown } };
  twoFaults.payload.labels = { "": [], A: false };
  assert.equal(outcome(parseEnvelope, twoFaults), "E_INVALID_PAYLOAD at /payload/labels/");
  assert.equal(outcome(parseEnvelopeCompiled, twoFaults), "E_INVALID_PAYLOAD at /payload/labels/");
  const interesting = fc.oneof(
    fc.jsonValue(),
    fc.integer({ min: -2, max: 2 }),
    fc.double(),
    fc.string({ unit: "grapheme", maxLength: 300 }),
    fc.constantFrom(-1, 0, 1.5, 100, 101, "", "x".repeat(65), "x".repeat(257), null, [], {}, true),
  );
  const verdicts = new Map<string, number>();
  fc.assert(
    fc.property(
      fc.nat({ max: frames.length - 1 }),
      fc.array(fc.nat(), { minLength: 1, maxLength: 6 }),
      interesting,
      (i, choices, replacement) => {
        const value = mutate(frames[i], choices, replacement);
        const fast = outcome(parseEnvelopeCompiled, value);
        const lite = outcome(parseEnvelope, value);
        assert.equal(lite, fast, `same verdict for ${JSON.stringify(value).slice(0, 400)}`);
        const kind = lite === "ok" ? "ok" : "refused";
        verdicts.set(kind, (verdicts.get(kind) ?? 0) + 1);
      },
    ),
    { numRuns: 3000 },
  );
  // The mutations reach both sides of the line often enough to mean something.
  assert.ok((verdicts.get("ok") ?? 0) > 300, `accepted: ${verdicts.get("ok")}`);
  assert.ok((verdicts.get("refused") ?? 0) > 300, `refused: ${verdicts.get("refused")}`);
});
