/**
 * The whole wire contract (protocol v1): one schema per message type, the
 * TypeScript types inferred from them, and one registry both sides use.
 * Append only: a released type or field never changes meaning.
 */
import Type, { type Static, type TSchema } from "typebox";

export { PROTOCOL_VERSION } from "./version.js";

const Uint = Type.Integer({ minimum: 0 });
const Num = Type.Number();
const Text = (maxLength = 1024) => Type.String({ maxLength });
const Id = Type.String({ minLength: 1, maxLength: 128 });
// Keys are checked by pattern, and no other key may appear: JSON Schema's
// `.` does not match a newline, so a looser key pattern would let one through.
const Labels = Type.Record(
  Type.String({ pattern: "^[A-Za-z_][A-Za-z0-9_.-]{0,62}$" }),
  Type.String({ maxLength: 256 }),
  { additionalProperties: false },
);

// ---- handshake ------------------------------------------------------------

export const Hello = Type.Object({
  /** Stable across restarts: /etc/machine-id, else generated once and kept. */
  nodeId: Id,
  name: Type.String({ minLength: 1, maxLength: 253 }),
  /** picluster version of the agent. */
  version: Text(64),
  /** Protocol versions the agent speaks. */
  protocols: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, maxItems: 16 }),
  labels: Labels,
  /** One-time join token, only on a node's first contact. */
  joinToken: Type.Optional(Text(256)),
});

export const Welcome = Type.Object({
  protocol: Type.Integer({ minimum: 1 }),
  heartbeatMs: Type.Integer({ minimum: 1 }),
  vitalsMs: Type.Integer({ minimum: 1 }),
  /** Highest seq of this node already stored; the agent drops older ones. */
  lastSeq: Uint,
  primaryVersion: Text(64),
});

// ---- node → primary -------------------------------------------------------

/** A task this node allows (its own config decides), as the primary shows it. */
export const TaskInfo = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 64 }),
  description: Text(256),
  builtin: Type.Boolean(),
  /** Confirmed first and run in rolling batches. */
  disruptive: Type.Boolean(),
  /** The longest the task may run on this node, all its steps together. */
  timeoutMs: Type.Optional(Uint),
  args: Type.Array(
    Type.Object({
      name: Text(32),
      type: Type.Union([
        Type.Literal("string"),
        Type.Literal("integer"),
        Type.Literal("number"),
        Type.Literal("boolean"),
      ]),
      pattern: Type.Optional(Text(256)),
    }),
    { maxItems: 32 },
  ),
});

export const Details = Type.Object({
  hostname: Text(253),
  os: Type.Object({ name: Text(128), version: Text(128) }),
  kernel: Text(128),
  arch: Text(32),
  cpu: Type.Object({
    model: Text(256),
    cores: Type.Integer({ minimum: 1 }),
    minMhz: Type.Optional(Num),
    maxMhz: Type.Optional(Num),
  }),
  memory: Type.Object({ totalBytes: Uint, swapBytes: Uint }),
  disks: Type.Array(Type.Object({ mount: Text(), fs: Text(64), sizeBytes: Uint }), {
    maxItems: 256,
  }),
  interfaces: Type.Array(
    Type.Object({
      name: Text(64),
      mac: Text(64),
      addresses: Type.Array(Text(64), { maxItems: 64 }),
    }),
    { maxItems: 256 },
  ),
  /** Unix time in ms; absent from tutorial (legacy) nodes. */
  bootTime: Type.Optional(Uint),
  agentVersion: Text(64),
  nodeVersion: Text(64),
  /** Raspberry Pi only: /proc/device-tree/model, serial, revision. */
  board: Type.Optional(Type.Object({ model: Text(256), serial: Text(64), revision: Text(64) })),
  /** The tasks this node allows. */
  tasks: Type.Optional(Type.Array(TaskInfo, { maxItems: 256 })),
  /** Packages that can be upgraded, from the last updates.check (hourly at most). */
  updates: Type.Optional(Type.Object({ available: Uint, checkedAt: Uint })),
  /**
   * `[tasks] max_running`: tasks this node runs at once. A job hands a node
   * no more items than this; older agents leave it out (the primary assumes 4).
   */
  maxRunning: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
});

export const Heartbeat = Type.Object({
  /** Vitals samples dropped from a full outbox since the agent started. */
  dropped: Uint,
});

/**
 * A Raspberry Pi's power and throttling health, decoded from the firmware's
 * get_throttled bits ("now" and "occurred since boot"). Where only the
 * rpi_volt hwmon exists (`source: "hwmon"`), only underVoltage is known and
 * the other flags are false.
 */
export const Throttling = Type.Object({
  source: Type.Union([Type.Literal("firmware"), Type.Literal("hwmon")]),
  underVoltage: Type.Boolean(),
  freqCapped: Type.Boolean(),
  throttled: Type.Boolean(),
  softTempLimit: Type.Boolean(),
  underVoltageOccurred: Type.Boolean(),
  freqCappedOccurred: Type.Boolean(),
  throttledOccurred: Type.Boolean(),
  softTempLimitOccurred: Type.Boolean(),
});

export const Vitals = Type.Object({
  cpu: Type.Object({
    /** Percent busy over the last interval, 0–100. */
    total: Type.Number({ minimum: 0, maximum: 100 }),
    perCore: Type.Array(Type.Number({ minimum: 0, maximum: 100 }), { maxItems: 1024 }),
  }),
  // Fields marked optional are always sent by our agent; tutorial (legacy)
  // nodes report less, and what they do not report stays absent, not zero.
  load: Type.Optional(Type.Tuple([Num, Num, Num])),
  freqMhz: Type.Optional(Num),
  temps: Type.Array(Type.Object({ zone: Text(64), type: Text(64), celsius: Num }), {
    maxItems: 64,
  }),
  throttling: Type.Optional(Throttling),
  rebootRequired: Type.Optional(Type.Boolean()),
  memory: Type.Object({ totalBytes: Uint, usedBytes: Uint, availableBytes: Uint }),
  swap: Type.Object({ totalBytes: Uint, usedBytes: Uint }),
  disks: Type.Array(Type.Object({ mount: Text(), usedBytes: Uint, sizeBytes: Uint }), {
    maxItems: 256,
  }),
  diskIo: Type.Optional(Type.Object({ readBps: Num, writeBps: Num })),
  net: Type.Array(Type.Object({ iface: Text(64), rxBps: Num, txBps: Num }), { maxItems: 256 }),
  uptimeS: Type.Optional(Uint),
  procs: Type.Optional(Uint),
  /**
   * The node's own numbers (`[metrics.NAME]` sections), their current values:
   * `series` is a Prometheus series in canonical form, `name` or
   * `name{a="x",b="y"}` with labels sorted by name (custom-series.ts).
   */
  custom: Type.Optional(
    Type.Array(
      Type.Object({
        series: Type.String({
          minLength: 1,
          maxLength: 256,
          pattern: "^[A-Za-z_:][A-Za-z0-9_:]*(\\{[^\\n]*\\})?$",
        }),
        value: Num,
      }),
      { maxItems: 1_000 },
    ),
  ),
  /** The node's checks (`[check.NAME]` sections), each check's latest result. */
  checks: Type.Optional(
    Type.Array(
      Type.Object({
        name: Type.String({ minLength: 1, maxLength: 64 }),
        kind: Type.Union([
          Type.Literal("unit"),
          Type.Literal("http"),
          Type.Literal("tcp"),
          Type.Literal("ping"),
        ]),
        target: Text(1024),
        up: Type.Boolean(),
        reason: Text(256),
        /** When the current state (up or down) began, Unix ms. */
        since: Uint,
        /** When it was last checked, Unix ms. */
        at: Uint,
        latencyMs: Type.Optional(Num),
        /** https: when the certificate expires, Unix ms. */
        certExpiresAt: Type.Optional(Uint),
      }),
      { maxItems: 256 },
    ),
  ),
  /**
   * The node's containers, from its Docker or Podman API (`[containers]`):
   * state, health and restarts, and for running ones CPU (% of one core),
   * memory and network rates since the previous sample.
   */
  containers: Type.Optional(
    Type.Array(
      Type.Object({
        id: Type.String({ minLength: 1, maxLength: 64 }),
        name: Text(256),
        image: Text(512),
        /** created, running, paused, restarting, removing, exited, dead (as the API says). */
        state: Text(32),
        health: Type.Optional(Text(32)),
        restarts: Uint,
        /** Restarts in the last 10 minutes, as the agent saw the count grow. */
        recentRestarts: Type.Optional(Uint),
        exitCode: Type.Optional(Type.Integer()),
        cpuPct: Type.Optional(Num),
        memBytes: Type.Optional(Uint),
        memLimitBytes: Type.Optional(Uint),
        rxBps: Type.Optional(Num),
        txBps: Type.Optional(Num),
      }),
      { maxItems: 200 },
    ),
  ),
});

export const LogRecord = Type.Object({
  level: Type.Union([
    Type.Literal("trace"),
    Type.Literal("debug"),
    Type.Literal("info"),
    Type.Literal("warn"),
    Type.Literal("error"),
    Type.Literal("fatal"),
  ]),
  msg: Text(4096),
  fields: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});

export const Bye = Type.Object({ reason: Text(256) });

// ---- primary → node -------------------------------------------------------

export const Ack = Type.Object({ seq: Uint });

export const ErrorPayload = Type.Object({
  code: Text(64),
  message: Text(4096),
  /** JSON pointer of the failing field, when one failed. */
  path: Type.Optional(Text(256)),
});

/**
 * Sent once to a node that joined with a one-time token: its own credential
 * (a TLS pre-shared key and its identity), to store and use from then on.
 */
export const Credential = Type.Object({
  identity: Type.String({ minLength: 1, maxLength: 128 }),
  /** 32 random bytes, base64url. */
  key: Type.String({ minLength: 43, maxLength: 43, pattern: "^[A-Za-z0-9_-]+$" }),
  /** The name the primary knows this node by. */
  name: Type.String({ minLength: 1, maxLength: 253 }),
});

export const Empty = Type.Object({});

/** Stop working on request `id` (a task.run, a logs.tail follow); its response still comes. */
export const Cancel = Type.Object({ id: Uint });

export const Pong = Type.Object({
  /** The agent's clock (Unix ms) when it answered, for the clock offset. */
  time: Uint,
});

export const TaskRun = Type.Object({
  task: Type.String({ minLength: 1, maxLength: 64, pattern: "^[a-z][a-z0-9._-]*$" }),
  args: Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 4096 })),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 1 })),
});

export const TaskResult = Type.Object({
  exitCode: Type.Union([Type.Integer(), Type.Null()]),
  signal: Type.Union([Text(16), Type.Null()]),
  durationMs: Uint,
  /** True when output past the limit was dropped. */
  truncated: Type.Boolean(),
  /**
   * True when the node killed the task at its timeout (the task's own or
   * the request's): a job queues such an item again instead of failing it.
   */
  timedOut: Type.Optional(Type.Boolean()),
});

export const TaskOutput = Type.Object({
  /** The `id` of the task.run request this output belongs to. */
  run: Uint,
  stream: Type.Union([Type.Literal("stdout"), Type.Literal("stderr")]),
  data: Text(64 * 1024),
});

export const ProcessesTop = Type.Object({
  /** How many processes in each list. */
  n: Type.Integer({ minimum: 1, maximum: 100 }),
  /** CPU is measured over this long. */
  sampleMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 5_000 })),
});

const ProcessInfo = Type.Object({
  pid: Uint,
  user: Text(64),
  name: Text(64),
  command: Text(512),
  /** Percent of one core over the sample. */
  cpuPct: Type.Number({ minimum: 0 }),
  rssBytes: Uint,
});

export const ProcessList = Type.Object({
  sampledMs: Uint,
  byCpu: Type.Array(ProcessInfo, { maxItems: 100 }),
  byMemory: Type.Array(ProcessInfo, { maxItems: 100 }),
});

export const LogsTail = Type.Object({
  lines: Type.Integer({ minimum: 1, maximum: 10_000 }),
  /**
   * Keep the request open and send each new line as `task.output` (run = this
   * request's id) until `cancel`; the response then carries no lines.
   */
  follow: Type.Optional(Type.Boolean()),
});
export const LogLines = Type.Object({ lines: Type.Array(Type.String()) });

// ---- the registry -----------------------------------------------------------

/** Who may send a type: the agent, the primary, or (for requests) either side. */
export type Sender = "agent" | "primary";

export interface MessageSpec {
  from: Sender;
  payload: TSchema;
  /** Present for request types: the schema of a successful response. */
  response?: TSchema;
}

export const MESSAGES = {
  hello: { from: "agent", payload: Hello },
  welcome: { from: "primary", payload: Welcome },
  details: { from: "agent", payload: Details },
  heartbeat: { from: "agent", payload: Heartbeat },
  vitals: { from: "agent", payload: Vitals },
  log: { from: "agent", payload: LogRecord },
  bye: { from: "agent", payload: Bye },
  ack: { from: "primary", payload: Ack },
  error: { from: "primary", payload: ErrorPayload },
  credential: { from: "primary", payload: Credential },
  cancel: { from: "primary", payload: Cancel },
  ping: { from: "primary", payload: Empty, response: Pong },
  "details.get": { from: "primary", payload: Empty, response: Details },
  "task.run": { from: "primary", payload: TaskRun, response: TaskResult },
  "task.output": { from: "agent", payload: TaskOutput },
  "logs.tail": { from: "primary", payload: LogsTail, response: LogLines },
  "processes.top": { from: "primary", payload: ProcessesTop, response: ProcessList },
} as const satisfies Record<string, MessageSpec>;

export type MessageType = keyof typeof MESSAGES;

/** Payload type of each message type. */
export type MessageMap = { [K in MessageType]: Static<(typeof MESSAGES)[K]["payload"]> };

type RequestTypes = {
  [K in MessageType]: (typeof MESSAGES)[K] extends { response: TSchema } ? K : never;
}[MessageType];
export type RequestType = RequestTypes;
/** Response payload type of each request type. */
export type ResponseMap = {
  [K in RequestType]: (typeof MESSAGES)[K] extends { response: infer R extends TSchema }
    ? Static<R>
    : never;
};
