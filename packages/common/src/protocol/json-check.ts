/**
 * A checker for the small subset of JSON Schema that our message schemas
 * compile to, working on the plain schema objects in wire-schemas.ts.
 *
 * Written by hand because of a measured budget: loading TypeBox costs an
 * agent ~20 MiB of RSS (`node -e "await import('typebox/type')"`: 39 → 60
 * MiB) against a 45 MiB budget for the whole agent. The primary keeps the
 * TypeBox compiled validators (faster on its hot path); a test checks that
 * both agree on every message type, on valid and on broken values.
 */

export type JsonSchema = { readonly [keyword: string]: unknown };

export interface SchemaFailure {
  /** JSON pointer of the failing value. */
  path: string;
  message: string;
}

const KNOWN = new Set([
  "type",
  "required",
  "properties",
  "patternProperties",
  "additionalProperties",
  "items",
  "additionalItems",
  "minItems",
  "maxItems",
  "minLength",
  "maxLength",
  "pattern",
  "minimum",
  "maximum",
  "anyOf",
  "const",
]);

const patterns = new Map<string, RegExp>();
function regexp(pattern: string): RegExp {
  let re = patterns.get(pattern);
  if (re === undefined) {
    // The `u` flag, as TypeBox and JSON Schema use.
    re = new RegExp(pattern, "u");
    patterns.set(pattern, re);
  }
  return re;
}

/** Length in Unicode code points (a surrogate pair counts once), as JSON Schema counts. */
function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function pointer(path: string, key: string | number): string {
  return `${path}/${String(key).replaceAll("~", "~0").replaceAll("/", "~1")}`;
}

function typeOk(type: string, v: unknown): boolean {
  switch (type) {
    case "object":
      return isObject(v);
    case "array":
      return Array.isArray(v);
    case "string":
      return typeof v === "string";
    case "number":
      return Number.isFinite(v);
    case "integer":
      return Number.isInteger(v);
    case "boolean":
      return typeof v === "boolean";
    case "null":
      return v === null;
    default:
      throw new Error(`json-check: unsupported type "${type}"`);
  }
}

/** Throw if a schema uses a keyword this checker does not implement. */
export function assertSupported(schema: JsonSchema, where = "#"): void {
  for (const [keyword, sub] of Object.entries(schema)) {
    if (!KNOWN.has(keyword))
      throw new Error(`json-check: unsupported keyword "${keyword}" at ${where}`);
    if (keyword === "properties" || keyword === "patternProperties") {
      for (const [k, s] of Object.entries(sub as Record<string, JsonSchema>))
        assertSupported(s, `${where}/${keyword}/${k}`);
    } else if (keyword === "items" || keyword === "anyOf") {
      const list = Array.isArray(sub) ? (sub as JsonSchema[]) : [sub as JsonSchema];
      list.forEach((s, i) => {
        assertSupported(s, `${where}/${keyword}/${i}`);
      });
    } else if (keyword === "additionalProperties" || keyword === "additionalItems") {
      if (sub !== false)
        throw new Error(`json-check: only ${keyword}: false is supported, at ${where}`);
    }
  }
}

/** The first place where `value` breaks `schema`, or undefined when it conforms. */
export function firstFailure(
  schema: JsonSchema,
  value: unknown,
  path = "",
): SchemaFailure | undefined {
  const fail = (message: string, at = path): SchemaFailure => ({ path: at || "/", message });

  if (schema.anyOf !== undefined) {
    const branches = schema.anyOf as JsonSchema[];
    if (!branches.some((b) => firstFailure(b, value, path) === undefined)) {
      const allowed = branches.map((b) =>
        b.const !== undefined ? JSON.stringify(b.const) : b.type,
      );
      return fail(`must be one of ${allowed.join(", ")}`);
    }
  }
  if (typeof schema.type === "string" && !typeOk(schema.type, value))
    return fail(`must be ${schema.type}`);
  if (schema.const !== undefined && value !== schema.const)
    return fail(`must be ${JSON.stringify(schema.const)}`);

  if (typeof value === "string") {
    const n =
      schema.minLength !== undefined || schema.maxLength !== undefined ? codePoints(value) : 0;
    if (typeof schema.minLength === "number" && n < schema.minLength)
      return fail(`must not have fewer than ${schema.minLength} characters`);
    if (typeof schema.maxLength === "number" && n > schema.maxLength)
      return fail(`must not have more than ${schema.maxLength} characters`);
    if (typeof schema.pattern === "string" && !regexp(schema.pattern).test(value))
      return fail(`must match pattern ${schema.pattern}`);
  } else if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum)
      return fail(`must be >= ${schema.minimum}`);
    if (typeof schema.maximum === "number" && value > schema.maximum)
      return fail(`must be <= ${schema.maximum}`);
  } else if (Array.isArray(value)) {
    if (typeof schema.minItems === "number" && value.length < schema.minItems)
      return fail(`must not have fewer than ${schema.minItems} items`);
    if (typeof schema.maxItems === "number" && value.length > schema.maxItems)
      return fail(`must not have more than ${schema.maxItems} items`);
    const items = schema.items as JsonSchema | JsonSchema[] | undefined;
    if (Array.isArray(items)) {
      for (let i = 0; i < items.length && i < value.length; i++) {
        const f = firstFailure(items[i] as JsonSchema, value[i], pointer(path, i));
        if (f !== undefined) return f;
      }
      if (schema.additionalItems === false && value.length > items.length)
        return fail(`must not have more than ${items.length} items`);
    } else if (items !== undefined) {
      for (let i = 0; i < value.length; i++) {
        const f = firstFailure(items, value[i], pointer(path, i));
        if (f !== undefined) return f;
      }
    }
  } else if (isObject(value)) {
    for (const key of (schema.required as string[] | undefined) ?? []) {
      if (!Object.hasOwn(value, key)) return fail("is required", pointer(path, key));
    }
    const properties = schema.properties as Record<string, JsonSchema> | undefined;
    if (properties !== undefined) {
      for (const [key, sub] of Object.entries(properties)) {
        if (!Object.hasOwn(value, key)) continue;
        const f = firstFailure(sub, value[key], pointer(path, key));
        if (f !== undefined) return f;
      }
    }
    const patternProperties = schema.patternProperties as Record<string, JsonSchema> | undefined;
    // Keys no schema allows before the values of pattern-matched keys: the order
    // TypeBox's compiled checks report them in (a test compares the two).
    if (schema.additionalProperties === false) {
      for (const key of Object.keys(value)) {
        const known =
          (properties !== undefined && Object.hasOwn(properties, key)) ||
          (patternProperties !== undefined &&
            Object.keys(patternProperties).some((p) => regexp(p).test(key)));
        if (!known) return fail("is not allowed", pointer(path, key));
      }
    }
    if (patternProperties !== undefined) {
      for (const [pattern, sub] of Object.entries(patternProperties)) {
        const re = regexp(pattern);
        for (const [key, v] of Object.entries(value)) {
          if (!re.test(key)) continue;
          const f = firstFailure(sub, v, pointer(path, key));
          if (f !== undefined) return f;
        }
      }
    }
  }
  return undefined;
}

/** One message type's schemas, as plain JSON (see wire-schemas.ts). */
export interface WireSpec {
  from: "agent" | "primary";
  payload: JsonSchema;
  response?: JsonSchema;
}
