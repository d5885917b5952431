/**
 * Renders wire-schemas.ts: the message schemas as plain JSON Schema, so the
 * agent can check what it receives without loading TypeBox (see
 * json-check.ts). `npm run gen:wire` writes it; a test checks it is current.
 */
import { ErrorPayload, MESSAGES } from "./messages.js";

/** Every message type's schemas as plain JSON values, and the error payload's. */
export function wireSchemas(): { specs: Record<string, unknown>; error: unknown } {
  const specs: Record<string, unknown> = {};
  for (const [type, spec] of Object.entries(MESSAGES)) {
    specs[type] = {
      from: spec.from,
      payload: spec.payload,
      ...("response" in spec ? { response: spec.response } : {}),
    };
  }
  // Through JSON: plain objects only, as the generated file holds them.
  return JSON.parse(JSON.stringify({ specs, error: ErrorPayload })) as {
    specs: Record<string, unknown>;
    error: unknown;
  };
}

export function renderWireSchemas(): string {
  const { specs, error } = wireSchemas();
  return [
    "// Generated from messages.ts by `npm run gen:wire`; do not edit by hand.",
    "// Plain JSON Schema of every message type, checked by json-check.ts.",
    'import type { WireSpec } from "./json-check.js";',
    'import type { MessageType } from "./messages.js";',
    "",
    `export const WIRE_SCHEMAS: Record<MessageType, WireSpec> = ${JSON.stringify(specs, null, 2)};`,
    "",
    `export const WIRE_ERROR_SCHEMA: WireSpec["payload"] = ${JSON.stringify(error, null, 2)};`,
    "",
  ].join("\n");
}
