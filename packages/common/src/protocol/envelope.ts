/**
 * The envelope around every message, and the one function that turns an
 * untrusted parsed JSON value into a typed, validated envelope.
 *
 * This module loads no schema library: `parseEnvelope` checks payloads
 * against the plain JSON schemas in wire-schemas.ts (json-check.ts), which
 * keeps the agent small. The primary uses `parseEnvelopeCompiled`
 * (compiled.ts, TypeBox), the same checks compiled for speed.
 */
import { DecodeError } from "../errors.js";
import { firstFailure, type SchemaFailure } from "./json-check.js";
import type { MessageMap, MessageType, RequestType, ResponseMap } from "./messages.js";
import { PROTOCOL_VERSION } from "./version.js";
import { WIRE_ERROR_SCHEMA, WIRE_SCHEMAS } from "./wire-schemas.js";

/** A message: an event, or a request when it carries `id`. */
export type Message<T extends MessageType = MessageType> = {
  [K in T]: {
    v: 1;
    type: K;
    ts: number;
    payload: MessageMap[K];
    /** Request id; the response carries it as `re`. */
    id?: number;
    /** Sequence number of a message the sender needs acknowledged. */
    seq?: number;
  };
}[T];

export type WireError = MessageMap["error"];

/** The answer to a request: its payload, or an error. */
export type Response<T extends RequestType = RequestType> = {
  [K in T]:
    | { v: 1; type: K; ts: number; re: number; payload: ResponseMap[K] }
    | { v: 1; type: K; ts: number; re: number; error: WireError };
}[T];

export type Envelope = Message | Response;

export function isResponse(env: Envelope): env is Response {
  return "re" in env;
}

/** Checks a payload; returns the first failure under `prefix`, or undefined. */
export type PayloadCheck = (value: unknown, prefix: string) => SchemaFailure | undefined;

/** Where an envelope parser gets its payload checks from. */
export interface PayloadChecks {
  payload(type: MessageType): PayloadCheck;
  /** Undefined for types that are not requests. */
  response(type: MessageType): PayloadCheck | undefined;
  error(): PayloadCheck;
}

export function isMessageType(type: string): type is MessageType {
  return Object.hasOwn(WIRE_SCHEMAS, type);
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

const jsonChecks: PayloadChecks = {
  payload: (type) => (v, prefix) => firstFailure(WIRE_SCHEMAS[type].payload, v, prefix),
  response: (type) => {
    const schema = WIRE_SCHEMAS[type].response;
    return schema === undefined ? undefined : (v, prefix) => firstFailure(schema, v, prefix);
  },
  error: () => (v, prefix) => firstFailure(WIRE_ERROR_SCHEMA, v, prefix),
};

/**
 * Check an untrusted value (usually `JSON.parse` output) against the envelope
 * and the schema of its type. Throws DecodeError naming the failing field.
 */
export const parseEnvelope = createEnvelopeParser(jsonChecks);

/** An envelope parser that checks payloads with `checks`. */
export function createEnvelopeParser(checks: PayloadChecks): (value: unknown) => Envelope {
  return (value) => parseWith(checks, value);
}

function parseWith(checks: PayloadChecks, value: unknown): Envelope {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new DecodeError(
      "E_NOT_OBJECT",
      `expected a JSON object, got ${Array.isArray(value) ? "an array" : typeof value}`,
    );
  }
  const env = value as Record<string, unknown>;
  const id = isCount(env.id) ? env.id : undefined;
  const type = typeof env.type === "string" ? env.type : undefined;
  const details = { id, type };
  if (env.v !== PROTOCOL_VERSION) {
    throw new DecodeError(
      "E_UNSUPPORTED_VERSION",
      `protocol version ${JSON.stringify(env.v)} is not supported; this side speaks v${PROTOCOL_VERSION}`,
      {
        ...details,
        path: "/v",
      },
    );
  }
  if (type === undefined)
    throw new DecodeError("E_INVALID_PAYLOAD", "type: expected a string", {
      ...details,
      path: "/type",
    });
  if (!isMessageType(type))
    throw new DecodeError("E_UNKNOWN_TYPE", `unknown message type "${type.slice(0, 64)}"`, {
      ...details,
      path: "/type",
    });
  if (!isCount(env.ts))
    throw new DecodeError("E_INVALID_PAYLOAD", "ts: expected a Unix time in milliseconds", {
      ...details,
      path: "/ts",
    });
  for (const field of ["id", "re", "seq"] as const) {
    if (env[field] !== undefined && !isCount(env[field])) {
      throw new DecodeError("E_INVALID_PAYLOAD", `${field}: expected a non-negative integer`, {
        ...details,
        path: `/${field}`,
      });
    }
  }

  if (env.re !== undefined) {
    if (env.id !== undefined)
      throw new DecodeError("E_INVALID_PAYLOAD", "a message cannot carry both id and re", {
        ...details,
        path: "/re",
      });
    const check = checks.response(type);
    if (check === undefined) {
      throw new DecodeError(
        "E_INVALID_PAYLOAD",
        `"${type}" is not a request type and has no response`,
        { ...details, path: "/re" },
      );
    }
    if (env.error !== undefined) {
      if (env.payload !== undefined)
        throw new DecodeError(
          "E_INVALID_PAYLOAD",
          "a response carries payload or error, not both",
          { ...details, path: "/error" },
        );
      const f = checks.error()(env.error, "/error");
      if (f !== undefined) {
        throw new DecodeError("E_INVALID_PAYLOAD", `${f.path}: ${f.message}`, {
          ...details,
          path: f.path,
        });
      }
      return value as Envelope;
    }
    const f = check(env.payload, "/payload");
    if (f !== undefined) {
      throw new DecodeError("E_INVALID_PAYLOAD", `${f.path}: ${f.message}`, {
        ...details,
        path: f.path,
      });
    }
    return value as Envelope;
  }

  const f = checks.payload(type)(env.payload, "/payload");
  if (f !== undefined) {
    throw new DecodeError("E_INVALID_PAYLOAD", `${f.path}: ${f.message}`, {
      ...details,
      path: f.path,
    });
  }
  return value as Envelope;
}
