import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { DecodeError } from "../../src/errors.js";
import { LegacyDecoder, type MessageDecoder, NdjsonDecoder } from "../../src/protocol/codec.js";

interface Vector {
  name: string;
  input?: string;
  hex?: string;
  expect: Array<{ type?: string; re?: number; error?: string; path?: string }>;
}
interface VectorFile {
  maxFrameBytes: number;
  ndjson: Vector[];
  legacy: Vector[];
}

const file = JSON.parse(
  readFileSync(new URL("../../../test/fixtures/codec-vectors.json", import.meta.url), "utf8"),
) as VectorFile;

function bytesOf(v: Vector): Buffer {
  if (v.hex !== undefined) return Buffer.from(v.hex.replaceAll(" ", ""), "hex");
  return Buffer.from(v.input ?? "", "utf8");
}

function summarize(results: Array<unknown>): Vector["expect"] {
  return results.map((r) => {
    if (r instanceof DecodeError)
      return r.path === undefined ? { error: r.code } : { error: r.code, path: r.path };
    const msg = r as { type: string; re?: number };
    return msg.re === undefined ? { type: msg.type } : { type: msg.type, re: msg.re };
  });
}

function check(v: Vector, fresh: () => MessageDecoder<unknown>): void {
  const bytes = bytesOf(v);
  // Vectors list `path` only where it matters; compare just the fields they give.
  const strip = (got: Vector["expect"]) =>
    got.map((g, i) => (v.expect[i]?.path === undefined ? { ...g, path: undefined } : g));
  const want = v.expect.map((e) => ({ ...e, path: e.path }));
  const whole = strip(summarize(fresh().feed(bytes)));
  assert.deepEqual(whole, want, `${v.name}: fed whole`);
  const decoder = fresh();
  const byByte = strip(summarize([...bytes].flatMap((b) => decoder.feed(Uint8Array.of(b)))));
  assert.deepEqual(byByte, want, `${v.name}: fed one byte at a time`);
}

test("codec vectors - every NDJSON vector decodes as documented, whole and byte by byte", () => {
  assert.ok(file.ndjson.length >= 20);
  for (const v of file.ndjson) check(v, () => new NdjsonDecoder(file.maxFrameBytes));
});

test("codec vectors - every legacy vector decodes as documented, whole and byte by byte", () => {
  assert.ok(file.legacy.length >= 5);
  for (const v of file.legacy) check(v, () => new LegacyDecoder(file.maxFrameBytes));
});
