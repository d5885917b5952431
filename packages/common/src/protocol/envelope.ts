/**
 * The envelope around every message, and the one function that turns an
 * untrusted parsed JSON value into a typed, validated envelope.
 */
import { Compile, type Validator } from "typebox/compile";
import { DecodeError } from "../errors.js";
import {
  ErrorPayload,
  isMessageType,
  MESSAGES,
  type MessageMap,
  type MessageType,
  PROTOCOL_VERSION,
  type RequestType,
  type ResponseMap,
} from "./messages.js";

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

// Compiled once per type, on first use: validation is on the hot path of
// every frame, and an agent only ever receives a few types, so it does not
// pay memory for validators of the others.
const payloadValidators = new Map<string, Validator>();
const responseValidators = new Map<string, Validator | null>();
let errorValidatorCache: Validator | undefined;

function payloadValidator(type: MessageType): Validator {
  let v = payloadValidators.get(type);
  if (v === undefined) {
    v = Compile(MESSAGES[type].payload);
    payloadValidators.set(type, v);
  }
  return v;
}

function responseValidator(type: MessageType): Validator | undefined {
  let v = responseValidators.get(type);
  if (v === undefined) {
    const spec = MESSAGES[type];
    v = "response" in spec ? Compile(spec.response) : null;
    responseValidators.set(type, v);
  }
  return v ?? undefined;
}

function errorValidator(): Validator {
  errorValidatorCache ??= Compile(ErrorPayload);
  return errorValidatorCache;
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** The first failure of `validator` on `value`, as a JSON pointer under `prefix` and a message. */
function firstFailure(
  validator: Validator,
  value: unknown,
  prefix: string,
): { path: string; message: string } {
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

/**
 * Check an untrusted value (usually `JSON.parse` output) against the envelope
 * and the schema of its type. Throws DecodeError naming the failing field.
 */
export function parseEnvelope(value: unknown): Envelope {
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
    const validator = responseValidator(type);
    if (validator === undefined) {
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
      if (!errorValidator().Check(env.error)) {
        const f = firstFailure(errorValidator(), env.error, "/error");
        throw new DecodeError("E_INVALID_PAYLOAD", `${f.path}: ${f.message}`, {
          ...details,
          path: f.path,
        });
      }
      return value as Envelope;
    }
    if (!validator.Check(env.payload)) {
      const f = firstFailure(validator, env.payload, "/payload");
      throw new DecodeError("E_INVALID_PAYLOAD", `${f.path}: ${f.message}`, {
        ...details,
        path: f.path,
      });
    }
    return value as Envelope;
  }

  const validator = payloadValidator(type);
  if (!validator.Check(env.payload)) {
    const f = firstFailure(validator, env.payload, "/payload");
    throw new DecodeError("E_INVALID_PAYLOAD", `${f.path}: ${f.message}`, {
      ...details,
      path: f.path,
    });
  }
  return value as Envelope;
}
