/**
 * Every `E_` code picluster uses, declared once: where it is met, the HTTP
 * status it gets when it reaches the API, and a message template (`%s`
 * filled in order, as fastify's createError does). Error classes take a
 * code from this table (the compiler checks it), the HTTP layer takes its
 * status from here, and docs/errors.md is generated from it
 * (`npm run docs:errors`; a test fails when the page is stale).
 *
 * To add a code: add a row here, use it, run `npm run docs:errors`.
 */

/** Where a code is met; the sections of docs/errors.md. */
export type ErrorScope =
  | "api" // an HTTP API answer
  | "wire" // an `error` message on the agent link
  | "agent" // the agent's own log and exit
  | "join" // joining, credentials and revocation
  | "store" // the primary's store
  | "jobs" // the job service and its queue
  | "cli" // the command line's own checks
  | "config"; // loading configuration

export interface ErrorSpec {
  readonly scope: ErrorScope;
  /** The HTTP status when the code reaches the API; absent: it never does (500 if it did). */
  readonly status?: number;
  /** The message, `%s` filled from arguments in order. Specific sites may say more. */
  readonly message: string;
}

export const ERRORS = {
  // The HTTP API: a client's request could not be served as asked.
  E_BAD_REQUEST: { scope: "api", status: 400, message: "%s: %s" },
  E_BAD_JSON: { scope: "wire", status: 400, message: "not valid JSON: %s" },
  E_BAD_CONTENT_LENGTH: {
    scope: "api",
    status: 400,
    message: "content-length does not match the body",
  },
  E_BODY_TOO_LARGE: {
    scope: "api",
    status: 413,
    message: "request body is larger than [http] body_limit",
  },
  E_UNSUPPORTED_MEDIA_TYPE: {
    scope: "api",
    status: 415,
    message: "content-type %s is not accepted here",
  },
  E_REQUEST_TIMEOUT: {
    scope: "api",
    status: 408,
    message: "the request did not arrive within [http] request_timeout",
  },
  E_BAD_HOST: {
    scope: "api",
    status: 421,
    message:
      'this server does not answer to the host name "%s"; add it to [http] allowed_hosts if it is this machine',
  },
  E_UNAUTHORIZED: {
    scope: "api",
    status: 401,
    message: "a valid bearer token is needed for this call",
  },
  E_FORBIDDEN: {
    scope: "api",
    status: 403,
    message: "the token %s may not do this: %s",
  },
  E_OUT_OF_SCOPE: {
    scope: "api",
    status: 403,
    message: "the token %s may act only on %s: %s",
  },
  E_RATE_LIMITED: {
    scope: "api",
    status: 429,
    message: "too many requests with the token %s: try again in %s s",
  },
  E_TOKEN_EXISTS: { scope: "cli", status: 409, message: "a token named %s exists" },
  E_BAD_TOKEN_NAME: { scope: "cli", status: 400, message: "%s is not a token name" },
  E_BAD_ROLE: { scope: "cli", status: 400, message: "%s: expected viewer, operator or admin" },
  E_NO_TOKEN_CONFIGURED: {
    scope: "api",
    status: 403,
    message: "calls that change state are off until [http] token is set",
  },
  E_NOT_FOUND: { scope: "api", status: 404, message: "no %s" },
  E_NO_SUCH_NODE: { scope: "api", status: 404, message: 'no node "%s"' },
  E_AMBIGUOUS_NODE: {
    scope: "api",
    status: 409,
    message: 'several nodes are called "%s"; use an id',
  },
  E_NODE_CONNECTED: {
    scope: "api",
    status: 409,
    message: 'node "%s" is connected and nothing would keep it out once removed',
  },
  E_NO_SUCH_CHANNEL: { scope: "api", status: 404, message: 'no channel "%s"' },
  E_NO_BUNDLE: {
    scope: "api",
    status: 404,
    message: "this primary has no agent bundle to serve (run `npm run build`)",
  },
  E_NO_TLS: { scope: "api", status: 409, message: "this primary runs without TLS: %s" },
  E_FINISHED: { scope: "api", status: 409, message: "%s has already ended (%s)" },
  E_TOO_MANY_STREAMS: { scope: "api", status: 429, message: "too many open streams: %s" },
  E_TOO_MANY_CONNECTIONS: { scope: "api", status: 429, message: "too many open connections: %s" },
  E_BAD_METRIC: { scope: "api", status: 400, message: 'no metric "%s"' },
  E_BAD_SELECTOR: { scope: "api", status: 400, message: "on: %s" },
  E_BAD_TASK: { scope: "api", status: 400, message: '"%s" is not a task name' },
  E_TASK_NOT_ALLOWED: { scope: "api", status: 400, message: 'task "%s" is not allowed on %s' },
  E_NOT_CONNECTED: { scope: "api", status: 409, message: 'node "%s" is not connected' },
  E_NOT_STARTED: {
    scope: "api",
    status: 503,
    message: "%s are available once the primary has started",
  },
  E_INTERNAL: { scope: "api", status: 500, message: "internal error" },

  // The agent link: what either side answers a message with. A status here is
  // what the API answers when a node answered a request with the code: 502
  // (the node refused or failed), 501 (its agent does not do that: update
  // it), 504 (it did not answer in time).
  E_FRAME_TOO_LARGE: { scope: "wire", message: "frame exceeds max_frame_bytes (%s bytes)" },
  E_NOT_OBJECT: { scope: "wire", message: "frame is not a JSON object" },
  E_UNSUPPORTED_VERSION: { scope: "wire", message: "protocol version %s is not supported" },
  E_UNKNOWN_TYPE: { scope: "wire", status: 501, message: 'unknown message type "%s"' },
  E_INVALID_PAYLOAD: { scope: "wire", status: 502, message: "%s: %s" },
  E_HANDSHAKE_REQUIRED: { scope: "wire", message: "send hello first" },
  E_WRONG_DIRECTION: { scope: "wire", message: '"%s" is sent by the primary, not to it' },
  E_UNSUPPORTED: { scope: "wire", status: 501, message: "this agent does not do %s (update it)" },
  E_DISCONNECTED: { scope: "wire", status: 502, message: "%s: the node is not connected" },
  E_TIMEOUT: { scope: "wire", status: 504, message: "%s got no answer within %s ms" },
  E_BUSY: {
    scope: "wire",
    status: 502,
    message: "the node already runs [tasks] max_running tasks",
  },
  E_DUPLICATE: { scope: "wire", status: 502, message: "request %s is already running" },
  E_NOT_ALLOWED: { scope: "wire", status: 502, message: 'task "%s" is not allowed on this node' },
  E_BAD_ARGS: { scope: "wire", status: 502, message: "%s: %s" },
  E_TASK_CONFIG: { scope: "wire", status: 502, message: "task %s is not usable on this node: %s" },
  E_TASK_START: { scope: "wire", status: 502, message: "task %s could not start: %s" },
  E_TASK: { scope: "wire", status: 502, message: "task failed on the node: %s" },
  E_COLLECT: { scope: "wire", status: 502, message: "the node could not collect its details: %s" },
  E_NO_LOG_FILE: {
    scope: "wire",
    status: 502,
    message: "the agent writes no log file ([log] file is off)",
  },
  E_FAILED: { scope: "wire", status: 502, message: "the node could not answer %s: %s" },
  E_REVOKED: { scope: "wire", message: "this node's credential was revoked" },
  E_REMOVED: { scope: "wire", message: "this node was removed from the cluster" },
  E_HEARTBEAT_HTTP: { scope: "wire", message: "tutorial heartbeat: HTTP %s" },
  E_HEARTBEAT_TIMEOUT: { scope: "wire", message: "tutorial heartbeat: no answer within %s ms" },
  E_HEARTBEAT_SEND: { scope: "wire", message: "tutorial heartbeat: %s" },

  // Joining and credentials.
  E_BAD_NAME: { scope: "join", status: 400, message: 'node name "%s": %s' },
  E_NODE_EXISTS: { scope: "join", status: 409, message: 'a node called "%s" already exists' },
  E_NODE_ID_TAKEN: { scope: "join", status: 409, message: "node id %s belongs to another node" },
  E_TOKEN_INVALID: { scope: "join", status: 401, message: "join token unknown or expired" },
  E_TOKEN_USED: { scope: "join", status: 401, message: "join token was already used" },
  E_BAD_TOKEN: { scope: "join", status: 400, message: "%s" },
  E_BAD_CREDENTIAL: { scope: "join", message: "credential file %s: %s" },
  E_BAD_CREDENTIALS_FILE: { scope: "join", message: "credential file %s is not valid JSON" },
  E_JOIN_TOKEN_FILE: { scope: "join", message: "join token file %s: %s" },
  E_NO_CREDENTIAL: {
    scope: "agent",
    message: "this node has no credential: join it with the line `picluster node add` prints",
  },

  // The store.
  E_STORE_CLOSED: { scope: "store", status: 503, message: "the store is not open" },
  E_STORE_OPEN: { scope: "store", status: 503, message: "cannot open the store %s: %s" },
  E_STORE_VERSION: {
    scope: "store",
    status: 503,
    message: "the store %s was written by a newer picluster",
  },
  E_STORE_FULL: { scope: "store", status: 503, message: "the disk is full: %s" },
  E_STORE_READONLY: { scope: "store", status: 503, message: "the store is read-only: %s" },
  E_STORE_IO: { scope: "store", status: 503, message: "the store could not be written: %s" },
  E_STORE_BUSY: {
    scope: "store",
    status: 503,
    message: "the store is locked by another process: %s",
  },
  E_STORE_WRITE: { scope: "store", status: 503, message: "the store refused a write: %s" },
  E_CLUSTER_UNAVAILABLE: {
    scope: "store",
    status: 503,
    message: "the other primaries cannot be told (NATS JetStream): %s",
  },

  // Jobs.
  E_BAD_ITEMS: { scope: "jobs", status: 400, message: "items: %s" },
  E_BAD_ITEM: { scope: "jobs", status: 400, message: "item %s: %s" },
  E_BAD_OPTION: { scope: "jobs", status: 400, message: "%s: expected %s–%s, got %s" },
  E_NO_NODES: { scope: "jobs", status: 400, message: 'selector "%s" matches no node' },
  E_NOT_RUNNING: { scope: "jobs", status: 503, message: "the job service is not running" },
  E_NO_QUEUE: { scope: "jobs", status: 404, message: "no queue for job %s" },
  E_JOB_CANCELLED: { scope: "jobs", status: 409, message: "job %s was cancelled: no more items" },
  E_QUEUE_CLOSED: { scope: "jobs", status: 503, message: "the job queue is closed" },
  E_QUEUE_WRITE: { scope: "jobs", status: 503, message: "the job queue could not be written: %s" },

  // The agent's own failures.
  E_COLLECTOR: { scope: "agent", message: "%s: %s" },
  E_CONNECT: { scope: "agent", message: "cannot connect to %s: %s" },
  E_CONNECT_TIMEOUT: { scope: "agent", message: "no connection to %s within %s ms" },
  E_ABORTED: { scope: "agent", message: "stopped before connecting" },

  // Configuration and the data directory.
  E_CONFIG: { scope: "config", message: "%s" },
  E_DATA_DIR_READONLY: {
    scope: "config",
    message: "the data directory %s is on a read-only file system",
  },
  E_DATA_DIR_ACCESS: {
    scope: "config",
    message: "the data directory %s cannot be written by this user",
  },

  // The command line.
  E_NO_PRIMARY: { scope: "cli", message: "no primary answers at %s" },
  E_HTTP: { scope: "cli", message: "%s from %s" },
  E_USAGE: { scope: "cli", message: "%s" },
} as const satisfies Record<`E_${string}`, ErrorSpec>;

/** A code from the table. */
export type ErrorCode = keyof typeof ERRORS;

declare const foreign: unique symbol;
/**
 * A code picluster did not choose: one a node or a primary of another
 * version sent, or an operating system's (`ECONNREFUSED`). Made only by
 * `foreignCode()`, so a typo in our own code is still a compile error.
 */
export type ForeignCode = string & { readonly [foreign]: true };

/** Mark a code received from elsewhere. */
export function foreignCode(code: string): ForeignCode | ErrorCode {
  return code as ForeignCode;
}

/** Whether a string is one of our codes. */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERRORS, code);
}

/** The HTTP status for a code: the table's, 502 for a code a node sent we do not know, else 500. */
export function httpStatus(code: string): number {
  if (!isErrorCode(code)) return code.startsWith("E_") ? 502 : 500;
  const spec: ErrorSpec = ERRORS[code];
  return spec.status ?? 500;
}

/** A code's message with its `%s` filled in order (missing arguments stay `%s`). */
export function errorMessage(code: ErrorCode, ...args: ReadonlyArray<string | number>): string {
  let i = 0;
  return ERRORS[code].message.replace(/%s/g, () => (i < args.length ? String(args[i++]) : "%s"));
}
