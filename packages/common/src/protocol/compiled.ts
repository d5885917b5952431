/**
 * The envelope parser with TypeBox-compiled payload checks: the same rules
 * as `parseEnvelope`, faster, for the primary's hot path (every frame of
 * every agent). The agent does not load this module (see json-check.ts).
 */
import type { TSchema } from "typebox";
import { Compile, type Validator } from "typebox/compile";
import { createEnvelopeParser, type PayloadCheck } from "./envelope.js";
import type { SchemaFailure } from "./json-check.js";
import { ErrorPayload, MESSAGES, type MessageType } from "./messages.js";

/** The first failure of `validator` on `value`, as a JSON pointer under `prefix` and a message. */
function firstFailure(validator: Validator, value: unknown, prefix: string): SchemaFailure {
  const [first] = validator.Errors(value);
  if (first === undefined) return { path: prefix, message: "invalid" };
  let path = prefix + first.instancePath;
  const params = first.params as { requiredProperties?: unknown };
  if (first.keyword === "required" && Array.isArray(params.requiredProperties)) {
    const [missing] = params.requiredProperties as unknown[];
    if (typeof missing === "string") return { path: `${path}/${missing}`, message: "is required" };
  }
  if (path === "") path = "/";
  return { path, message: first.message };
}

function compile(schema: TSchema): PayloadCheck {
  const validator: Validator = Compile(schema);
  return (value, prefix) =>
    validator.Check(value) ? undefined : firstFailure(validator, value, prefix);
}

// Compiled once per type, on first use.
const payloadChecks = new Map<MessageType, PayloadCheck>();
const responseChecks = new Map<MessageType, PayloadCheck | null>();
let errorCheck: PayloadCheck | undefined;

export const parseEnvelopeCompiled = createEnvelopeParser({
  payload(type) {
    let check = payloadChecks.get(type);
    if (check === undefined) {
      check = compile(MESSAGES[type].payload);
      payloadChecks.set(type, check);
    }
    return check;
  },
  response(type) {
    let check = responseChecks.get(type);
    if (check === undefined) {
      const spec = MESSAGES[type];
      check = "response" in spec ? compile(spec.response) : null;
      responseChecks.set(type, check);
    }
    return check ?? undefined;
  },
  error() {
    errorCheck ??= compile(ErrorPayload);
    return errorCheck;
  },
});
