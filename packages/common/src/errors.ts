import { type ErrorCode, errorMessage, type ForeignCode } from "./error-codes.js";

/**
 * Every error picluster raises on purpose. Each class has a stable `code`
 * from the catalogue (error-codes.ts), the same in wire `error.code`, HTTP
 * bodies, logs and CLI output.
 */
export class PiclusterError extends Error {
  readonly code: ErrorCode | ForeignCode;
  constructor(code: ErrorCode | ForeignCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }

  /** An error of this class with the catalogue's message for `code`, filled from `args`. */
  static of<T>(
    this: new (
      code: ErrorCode,
      message: string,
    ) => T,
    code: ErrorCode,
    ...args: ReadonlyArray<string | number>
  ): T {
    return new this(code, errorMessage(code, ...args));
  }
}

/** One thing wrong in a configuration source, with where it was found. */
export interface ConfigProblem {
  /** `file:line`, `env PICLUSTER_X_Y`, `flag --x-y`, or a plain label. */
  where: string;
  message: string;
}

/** The configuration could not be used; `problems` lists every reason at once. */
export class ConfigError extends PiclusterError {
  readonly problems: readonly ConfigProblem[];
  /** Warnings found along the way (unknown keys, old names), worth printing too. */
  readonly warnings: readonly ConfigProblem[];
  constructor(problems: readonly ConfigProblem[], warnings: readonly ConfigProblem[] = []) {
    super(
      "E_CONFIG",
      problems.map((p) => (p.where ? `${p.where}: ${p.message}` : p.message)).join("\n"),
    );
    this.problems = problems;
    this.warnings = warnings;
  }
}

/** Codes of everything that can be wrong with one received frame. */
export type DecodeErrorCode =
  | "E_FRAME_TOO_LARGE"
  | "E_BAD_JSON"
  | "E_NOT_OBJECT"
  | "E_UNSUPPORTED_VERSION"
  | "E_UNKNOWN_TYPE"
  | "E_INVALID_PAYLOAD";

/**
 * A frame that could not become a message. `path` names the failing field
 * (JSON pointer, e.g. `/payload/cpu/total`); `id` is the request id when the
 * frame carried one, so the reply can reference it.
 */
export class DecodeError extends PiclusterError {
  declare readonly code: DecodeErrorCode;
  readonly path: string | undefined;
  readonly id: number | undefined;
  readonly messageType: string | undefined;
  constructor(
    code: DecodeErrorCode,
    message: string,
    details: { path?: string; id?: number; type?: string; cause?: unknown } = {},
  ) {
    super(code, message, { cause: details.cause });
    this.path = details.path;
    this.id = details.id;
    this.messageType = details.type;
  }
}

/** A frame longer than the limit; the bytes up to its end are discarded. */
export class FrameTooLargeError extends DecodeError {
  readonly limit: number;
  constructor(limit: number) {
    super("E_FRAME_TOO_LARGE", `frame exceeds max_frame_bytes (${limit} bytes)`);
    this.limit = limit;
  }
}

/** A file the agent's collectors need could not be read or made sense of. */
export class CollectorError extends PiclusterError {
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super("E_COLLECTOR", `${path}: ${message}`, options);
    this.path = path;
  }
}

/**
 * Something asked of a node that cannot be done as asked: no such node
 * (`E_NO_SUCH_NODE`), a name that several nodes share (`E_AMBIGUOUS_NODE`),
 * a connected node nothing could keep out once removed (`E_NODE_CONNECTED`).
 */
export class NodeError extends PiclusterError {}

/**
 * The data directory cannot be written: a read-only mount
 * (`E_DATA_DIR_READONLY`) or another user's directory (`E_DATA_DIR_ACCESS`).
 * The message is one sentence for the person at the terminal.
 */
export class DataDirError extends PiclusterError {
  readonly dir: string;
  constructor(code: "E_DATA_DIR_READONLY" | "E_DATA_DIR_ACCESS", dir: string, message: string) {
    super(code, message);
    this.dir = dir;
  }
}

/** Narrow a caught `unknown` to a message for logs, keeping codes when present. */
export function describeError(err: unknown): string {
  if (err instanceof PiclusterError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** The end of a `switch` over a union: a compile error when a case is missing. */
export function assertNever(value: never): never {
  throw new Error(`unexpected value: ${JSON.stringify(value)}`);
}
